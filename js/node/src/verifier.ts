import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { errors as joseErrors, jwtVerify } from "jose";
import { readClaims, type Claims } from "./claims.js";
import { DPoPChecker, UseNonceError, type DPoPOptions } from "./dpop.js";
import {
  CODE_INVALID_DPOP_PROOF,
  CODE_INVALID_TOKEN,
  CODE_USE_DPOP_NONCE,
  VerifierError,
  badRequest,
  invalidToken,
  noToken,
  revoked,
  unavailable,
} from "./errors.js";
import { Follower } from "./follower.js";
import { getJSON, StatusError } from "./http.js";
import { RemoteKeySet, parseKeySet, type KeySet, type Logger, type VerificationKey } from "./keyset.js";
import { RevocationSet } from "./revocation.js";
import { parseObject, splitToken } from "./strict.js";

/** Defaults of VerifierConfig, the Go verifier's. */
export const DEFAULT_LEEWAY_S = 30;
/** The largest leeway allowed: revocation entries last the token lifetime plus 30 s. */
export const MAX_LEEWAY_S = 30;
export const DEFAULT_TYPE = "at+jwt";
export const DEFAULT_CACHE_SIZE = 10_000;
/** Tokens longer than this are never cached. */
const MAX_CACHED_TOKEN = 4 << 10;
const EVICT_SCAN = 8;

export interface VerifierConfig {
  /** The auth server's issuer URL; tokens must carry it as iss. Discovery finds the JWKS and the feed. */
  issuer: string;
  /** If set, must be among the token's aud. */
  audience?: string;
  /** Override what discovery finds; with jwksUrl set discovery is skipped and feedUrl is needed too. */
  jwksUrl?: string;
  feedUrl?: string;
  streamUrl?: string;
  /** The service client's credentials, to read the revocation feed (HTTP Basic). */
  clientId?: string;
  clientSecret?: string;
  /** Verify without following the revocation feed: for tests and tools, never a service. */
  noRevocationFeed?: boolean;
  /** Restricts the accepted alg values; the key's own algorithm must match as well. */
  algorithms?: string[];
  /** Leeway for exp, nbf and iat in seconds: 30 when undefined, at most 30; 0 or less: none. */
  leewaySeconds?: number;
  /** The required typ header: "at+jwt" by default; "-" accepts any. */
  type?: string;
  /** How long the feed may be unreachable before every token is refused with 503 (default 2 minutes). */
  maxFeedOutageMs?: number;
  /** Keep accepting tokens through a longer outage. */
  failOpen?: boolean;
  /** Verification cache size in tokens: 10,000 by default; 0 or less disables it. */
  cacheSize?: number;
  /** A JWK Set document to use instead of the remote key set (tests; services holding the keys). */
  keys?: string | object;
  /** DPoP proof checking (RFC 9449 section 7). */
  dpop?: DPoPOptions;
  /** Scheme and host (and prefix) under which clients reach this service, for DPoP's htu. */
  publicUrl?: string;
  /** Options of the remote key set (refresh bounds, refetch interval, wait). */
  keySet?: { minRefreshMs?: number; maxRefreshMs?: number; refetchIntervalMs?: number; maxWaitMs?: number };
  logger?: Logger;
  /** The clock in milliseconds; Date.now by default. */
  now?: () => number;
}

/** Where, besides Authorization, a request's token may be. Never the query string. */
export interface Sources {
  /** A cookie holding the token, usually ACCESS_COOKIE. */
  cookie?: string;
  /** Accept the token in Sec-WebSocket-Protocol ("keycard.bearer.<token>") on WebSocket upgrades. */
  webSocket?: boolean;
}

/** The auth server's access-token cookie in cookie mode. */
export const ACCESS_COOKIE = "__Host-keycard_access";
export const WEBSOCKET_PROTOCOL_PREFIX = "keycard.bearer.";

/** The parts of an HTTP request the verifier reads: node:http, Express and Fastify requests all fit. */
export interface RequestLike {
  method?: string;
  /** The path and query, as received. */
  url?: string;
  headers: IncomingHttpHeaders;
  /** Node's raw headers, to count repeated Authorization and DPoP headers (Node keeps only the first Authorization). */
  rawHeaders?: string[];
  socket?: object | null;
}

const SCHEME_BEARER = 0;
const SCHEME_DPOP = 1;

interface CacheEntry {
  claims: Claims;
  until: number; // ms
}

/**
 * Verifier verifies the access tokens of one issuer locally, as the Go
 * verifier does: signature against the issuer's published keys (panva's
 * jose, with the algorithm allow-list, typ, issuer, audience and clock
 * tolerance pinned), the claims, revocation against an in-memory set that
 * follows the revocation feed, and DPoP bindings.
 */
export class Verifier {
  readonly revocations = new RevocationSet();
  readonly keySet: RemoteKeySet | undefined;
  readonly follower: Follower | undefined;
  readonly dpop: DPoPChecker;
  private readonly cfg: VerifierConfig;
  private readonly staticKeys: KeySet | undefined;
  private readonly leeway: number;
  private readonly type: string;
  private readonly now: () => number;
  private readonly cache: Map<string, CacheEntry> | undefined;
  private readonly cacheSize: number;
  private readonly dpopAlgs: string;
  private readonly publicUrl: string;

  private constructor(cfg: VerifierConfig, staticKeys: KeySet | undefined) {
    this.cfg = cfg;
    this.now = cfg.now ?? Date.now;
    this.leeway = cfg.leewaySeconds === undefined ? DEFAULT_LEEWAY_S : Math.max(cfg.leewaySeconds, 0);
    this.type = cfg.type ?? DEFAULT_TYPE;
    this.cacheSize = cfg.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.cache = this.cacheSize > 0 ? new Map() : undefined;
    this.dpop = new DPoPChecker({ now: this.now, ...cfg.dpop });
    this.dpopAlgs = this.dpop.algorithms.join(" ");
    this.publicUrl = (cfg.publicUrl ?? "").replace(/\/+$/, "");
    this.staticKeys = staticKeys;
    if (!staticKeys) {
      this.keySet = new RemoteKeySet(cfg.jwksUrl!, { ...cfg.keySet, logger: cfg.logger, now: this.now });
    }
    if (!cfg.noRevocationFeed) {
      this.follower = new Follower(this.revocations, {
        feedUrl: cfg.feedUrl!,
        streamUrl: cfg.streamUrl,
        clientId: cfg.clientId!,
        clientSecret: cfg.clientSecret!,
        maxOutageMs: cfg.maxFeedOutageMs,
        failOpen: cfg.failOpen,
        logger: cfg.logger,
        now: this.now,
        onKeyRevoked: () => this.keySet?.requestRefresh(),
      });
    }
  }

  /**
   * create builds a Verifier: it discovers the issuer's endpoints, loads
   * its keys and bootstraps the revocation set, then keeps both up to date
   * until close. If a first fetch fails, it still resolves with a working
   * Verifier (its background work keeps trying; ready() tells); it
   * rejects only for a bad configuration or a failed discovery.
   */
  static async create(config: VerifierConfig): Promise<Verifier> {
    const cfg = { ...config };
    if (!cfg.issuer) throw new Error("keycard: issuer is required");
    if (!cfg.noRevocationFeed && (!cfg.clientId || !cfg.clientSecret)) {
      throw new Error("keycard: clientId and clientSecret are required to follow the revocation feed (noRevocationFeed turns it off)");
    }
    if (cfg.leewaySeconds !== undefined && cfg.leewaySeconds > MAX_LEEWAY_S) {
      throw new Error(`keycard: leewaySeconds ${cfg.leewaySeconds} exceeds ${MAX_LEEWAY_S}: revocation entries last only the token lifetime plus ${MAX_LEEWAY_S} s`);
    }
    let staticKeys: KeySet | undefined;
    if (cfg.keys !== undefined) {
      staticKeys = await parseKeySet(typeof cfg.keys === "string" ? cfg.keys : JSON.stringify(cfg.keys));
    }
    if ((!staticKeys && !cfg.jwksUrl) || (!cfg.noRevocationFeed && !cfg.feedUrl && !cfg.streamUrl)) {
      const md = await discover(cfg.issuer);
      cfg.jwksUrl ||= md.jwks_uri;
      if (!cfg.feedUrl && !cfg.streamUrl) {
        cfg.feedUrl = md.keycard_revocation_feed_endpoint;
        cfg.streamUrl = md.keycard_revocation_stream_endpoint;
      }
    }
    if (!cfg.noRevocationFeed && !cfg.feedUrl) {
      throw new Error(`keycard: the issuer ${cfg.issuer} publishes no revocation feed (keycard_revocation_feed_endpoint); set feedUrl`);
    }
    const v = new Verifier(cfg, staticKeys);
    await Promise.all([v.keySet?.start(), v.follower?.start()]);
    return v;
  }

  /** close stops the background work. */
  async close(): Promise<void> {
    this.keySet?.close();
    await this.follower?.close();
  }

  /**
   * ready returns why the verifier cannot verify yet (keys not loaded,
   * revocation set not loaded, feed unreachable too long and failing
   * closed), or undefined: what a readiness probe should ask.
   */
  ready(): string | undefined {
    if (this.keySet && !this.keySet.status().ready) return "keycard: signing keys not loaded yet";
    if (this.follower) {
      const st = this.follower.status();
      if (!st.ready) return "keycard: revocation feed not loaded yet";
      if (st.stale && !this.cfg.failOpen) return "keycard: revocation feed unreachable for too long (failing closed)";
    }
    return undefined;
  }

  /**
   * verify verifies an access token: signature, claims, revocation. A token
   * verified before is found in the verification cache (only byte-identical
   * tokens that passed), which skips the signature and the parsing; expiry
   * and revocation are checked every time. It rejects with a VerifierError.
   */
  async verify(token: string): Promise<Claims> {
    if (this.follower !== undefined && !this.follower.healthy()) throw unavailable();
    const now = this.now();
    const hit = this.cache?.get(token);
    if (hit !== undefined) {
      const c = hit.claims;
      if (now >= hit.until) {
        this.cache!.delete(token);
        throw invalidToken("The access token expired.");
      }
      if (this.revocations.revoked(c.kid, c.sub, c.sid, c.jti, c.iat ?? 0)) throw revoked();
      return c;
    }
    const c = await this.verifyUncached(token, now);
    if (this.revocations.revoked(c.kid, c.sub, c.sid, c.jti, c.iat ?? 0)) throw revoked();
    this.remember(token, c, (c.exp + this.leeway) * 1000, now);
    return c;
  }

  private remember(token: string, claims: Claims, until: number, now: number): void {
    const cache = this.cache;
    if (cache === undefined || token.length > MAX_CACHED_TOKEN) return;
    if (!cache.has(token) && cache.size >= this.cacheSize) {
      let first: string | undefined;
      let seen = 0;
      let evicted = false;
      for (const [k, e] of cache) {
        if (seen === 0) first = k;
        if (e.until < now) {
          cache.delete(k);
          evicted = true;
        }
        if (++seen === EVICT_SCAN) break;
      }
      if (!evicted && first !== undefined) cache.delete(first);
    }
    cache.set(token, { claims, until });
  }

  private async resolveKey(kid: string): Promise<VerificationKey | undefined> {
    if (this.staticKeys) return this.staticKeys.byKid.get(kid);
    return this.keySet!.keyFor(kid) ?? (await this.keySet!.resolve(kid));
  }

  private async verifyUncached(token: string, now: number): Promise<Claims> {
    let parts;
    try {
      parts = splitToken(token);
    } catch (e) {
      throw invalidToken("The access token is invalid.", e);
    }
    const { header, payload } = parts;
    const kid = header.kid;
    const alg = header.alg as string;
    if (typeof kid !== "string" || kid === "") throw invalidToken("The access token is invalid.", new Error("the token has no kid"));
    if (this.cfg.algorithms && this.cfg.algorithms.length > 0 && !this.cfg.algorithms.includes(alg)) {
      throw invalidToken("The access token is invalid.", new Error(`alg ${alg} not accepted`));
    }
    const key = await this.resolveKey(kid);
    if (key === undefined) throw invalidToken("The access token is invalid.", new Error(`kid ${JSON.stringify(kid)} is not in the key set`));
    if (key.alg !== alg) throw invalidToken("The access token is invalid.", new Error(`token alg ${alg}, key alg ${key.alg}`));
    let joseClaimError: unknown;
    try {
      await jwtVerify(token, key.key, {
        algorithms: [key.alg],
        typ: this.type === "-" ? undefined : this.type,
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        clockTolerance: this.leeway,
        requiredClaims: ["exp"],
        currentDate: this.cfg.now ? new Date(now) : undefined,
      });
    } catch (e) {
      if (!(e instanceof joseErrors.JWTClaimValidationFailed) && !(e instanceof joseErrors.JWTExpired)) {
        throw invalidToken("The access token is invalid.", e);
      }
      joseClaimError = e; // the signature is good: the Go rules below decide the answer
    }
    // The Go parser's checks, in its order: typ (exactly: jose folds case
    // and drops "application/"), claim types, then exp, nbf, iat, iss, aud.
    if (this.type !== "-" && header.typ !== this.type) throw invalidToken("The access token is invalid.", new Error("typ"));
    let c: Claims;
    try {
      c = readClaims(payload, kid);
    } catch (e) {
      throw invalidToken("The access token is invalid.", e);
    }
    const t = now / 1000;
    if (payload.exp === undefined) throw invalidToken("The access token is invalid.", new Error("no exp"));
    if (!(t < c.exp + this.leeway)) throw invalidToken("The access token expired.");
    if (c.nbf !== undefined && t + this.leeway < c.nbf) throw invalidToken("The access token is not valid yet.");
    if (c.iat !== undefined && t + this.leeway < c.iat) throw invalidToken("The access token is invalid.", new Error("iat in the future"));
    if (typeof payload.iss !== "string" || c.iss !== this.cfg.issuer) throw invalidToken("The access token is invalid.", new Error("iss"));
    if (this.cfg.audience && !c.aud.includes(this.cfg.audience)) throw invalidToken("The access token is invalid.", new Error("aud"));
    if (joseClaimError !== undefined) throw invalidToken("The access token is invalid.", joseClaimError); // jose refused what the Go rules let through: refuse
    return c;
  }

  /**
   * authenticate finds the token of a request (Authorization: Bearer or
   * DPoP, and the sources given) and verifies it, with its DPoP proof
   * when it is bound to a key. It rejects with a VerifierError: 401
   * without a token, 400 for a malformed request, 401 invalid_token or
   * invalid_dpop_proof, 503 when failing closed.
   */
  async authenticate(req: RequestLike, src: Sources = {}): Promise<Claims> {
    const [token, scheme] = credential(req, src);
    let c: Claims;
    try {
      c = await this.verify(token);
    } catch (e) {
      if (scheme === SCHEME_DPOP && e instanceof VerifierError && e.status === 401) e.dpopAlgs = this.dpopAlgs;
      throw e;
    }
    await this.checkBinding(req, token, scheme, c);
    return c;
  }

  private dpopError(code: string, desc: string, cause?: unknown): VerifierError {
    const e = new VerifierError(401, code, desc, "dpop", cause);
    e.dpopAlgs = this.dpopAlgs;
    return e;
  }

  private async checkBinding(req: RequestLike, token: string, scheme: number, c: Claims): Promise<void> {
    const jkt = c.jkt;
    if (scheme !== SCHEME_DPOP) {
      if (jkt === "") return;
      throw this.dpopError(CODE_INVALID_TOKEN, "This access token is bound to a DPoP key: send it as Authorization: DPoP with a DPoP proof.");
    }
    if (jkt === "") throw this.dpopError(CODE_INVALID_TOKEN, "This access token is not bound to a DPoP key: send it as Authorization: Bearer.");
    const proofs = headerValues(req, "dpop");
    if (proofs.length !== 1) throw this.dpopError(CODE_INVALID_DPOP_PROOF, "Send one DPoP proof in the DPoP header.");
    let p;
    try {
      p = await this.dpop.check(proofs[0]!, req.method ?? "GET", this.requestURL(req), token);
    } catch (e) {
      if (e instanceof UseNonceError) {
        const err = this.dpopError(CODE_USE_DPOP_NONCE, "Send the DPoP proof again with the server's nonce.", e);
        err.nonce = this.dpop.nonces!.issue();
        throw err;
      }
      throw this.dpopError(CODE_INVALID_DPOP_PROOF, "The DPoP proof is not valid for this request.", e);
    }
    const a = Buffer.from(p.thumbprint);
    const b = Buffer.from(jkt);
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      throw this.dpopError(CODE_INVALID_DPOP_PROOF, "The DPoP proof is not signed by the key the access token is bound to.");
    }
  }

  /** requestURL is the URL the client used: publicUrl + path, else the request's own scheme and Host. */
  requestURL(req: RequestLike): string {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q >= 0 ? raw.slice(0, q) : raw;
    if (this.publicUrl !== "") return this.publicUrl + path;
    const scheme = (req.socket as { encrypted?: boolean } | null | undefined)?.encrypted ? "https" : "http";
    return `${scheme}://${req.headers.host ?? ""}${path}`;
  }
}

/** The values of a header, each repeated header apart (from rawHeaders when there). */
function headerValues(req: RequestLike, lower: string): string[] {
  if (req.rawHeaders) {
    const out: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.length === lower.length && req.rawHeaders[i]!.toLowerCase() === lower) out.push(req.rawHeaders[i + 1]!);
    }
    return out;
  }
  const v = req.headers[lower];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** credential finds the request's one token and the scheme it came under. */
function credential(req: RequestLike, src: Sources): [string, number] {
  const q = (req.url ?? "").indexOf("?");
  if (q >= 0 && queryHasToken(req.url!.slice(q + 1))) {
    throw badRequest("Access tokens are not accepted in the URL; send an Authorization: Bearer header.");
  }
  let token = "";
  let found = 0;
  let kind = SCHEME_BEARER;
  const auth = headerValues(req, "authorization");
  if (auth.length > 1) throw badRequest("Send one Authorization header.");
  if (auth.length === 1) {
    const a = auth[0]!;
    const sp = a.indexOf(" ");
    const scheme = sp < 0 ? a : a.slice(0, sp);
    const bearer = scheme.toLowerCase() === "bearer";
    if (bearer || scheme.toLowerCase() === "dpop") {
      token = sp < 0 ? "" : a.slice(sp + 1).replace(/^ +/, "");
      if (token === "" || token.includes(",") || token.includes(" ") || token.includes("\t")) {
        throw badRequest('The Authorization header must be "Bearer <token>" or "DPoP <token>".');
      }
      if (!bearer) kind = SCHEME_DPOP;
      found++;
    }
  }
  if (src.cookie) {
    let n = 0;
    for (const header of headerValues(req, "cookie")) {
      for (const part of header.split(";")) {
        const eq = part.indexOf("=");
        if (eq < 0 || part.slice(0, eq).trim() !== src.cookie) continue;
        if (++n > 1) throw badRequest(`Send one ${src.cookie} cookie.`);
        let v = part.slice(eq + 1).trim();
        if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
        if (v !== "") {
          token = v;
          found++;
        }
      }
    }
  }
  if (src.webSocket && (req.headers.upgrade ?? "").toLowerCase() === "websocket") {
    let n = 0;
    let t = "";
    for (const v of headerValues(req, "sec-websocket-protocol")) {
      for (const p of v.split(",")) {
        const e = p.trim();
        if (!e.startsWith(WEBSOCKET_PROTOCOL_PREFIX)) continue;
        if (++n > 1) throw badRequest(`Offer one ${WEBSOCKET_PROTOCOL_PREFIX} protocol.`);
        t = e.slice(WEBSOCKET_PROTOCOL_PREFIX.length);
      }
    }
    if (n === 1) {
      if (t === "") throw badRequest(`The ${WEBSOCKET_PROTOCOL_PREFIX} protocol carries no token.`);
      token = t;
      found++;
    }
  }
  if (found === 0) throw noToken();
  if (found > 1) throw badRequest("Send the access token in one place only.");
  return [token, kind];
}

/**
 * queryHasToken reports whether a raw query string has a parameter a
 * server could read as access_token, as the Go verifier reads it: split at
 * & and ;, percent-decoded with + as a space, trimmed, case ignored, up to
 * a [ that a ] follows, and space, dot or [ read as an underscore.
 */
export function queryHasToken(raw: string): boolean {
  if (!raw.includes("%") && !raw.toLowerCase().includes("access")) return false;
  for (const pair of raw.split(/[&;]/)) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const bytes: number[] = [];
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      if (c === 0x2b) bytes.push(0x20);
      else if (c === 0x25 && i + 2 < key.length && /^[0-9a-fA-F]{2}$/.test(key.slice(i + 1, i + 3))) {
        bytes.push(parseInt(key.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(c);
    }
    let name = String.fromCharCode(...bytes).replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, "");
    const lb = name.indexOf("[");
    if (lb >= 0 && name.indexOf("]", lb + 1) >= 0) name = name.slice(0, lb);
    if (name.length !== 12) continue;
    if (name.replace(/[ .[]/g, "_").toLowerCase() === "access_token") return true;
  }
  return false;
}

interface Metadata {
  issuer: string;
  jwks_uri: string;
  keycard_revocation_feed_endpoint?: string;
  keycard_revocation_stream_endpoint?: string;
}

/**
 * discover fetches the issuer's metadata (RFC 8414; the OpenID Connect
 * path first, then the OAuth one on 404), which must name the same
 * issuer and a jwks_uri; the endpoints must be http(s), https when the
 * issuer is.
 */
export async function discover(issuer: string): Promise<Metadata> {
  let iss: URL;
  try {
    iss = new URL(issuer);
  } catch {
    throw new Error(`keycard: issuer ${JSON.stringify(issuer)} must be an http or https URL`);
  }
  if ((iss.protocol !== "https:" && iss.protocol !== "http:") || iss.search !== "" || iss.hash !== "" || iss.username !== "") {
    throw new Error(`keycard: issuer ${JSON.stringify(issuer)} must be an http or https URL without query or fragment`);
  }
  const base = issuer.replace(/\/$/, "");
  let got;
  try {
    got = await getJSON(base + "/.well-known/openid-configuration", "application/json", 1 << 20, 10_000);
  } catch (e) {
    if (!(e instanceof StatusError && e.status === 404)) throw e;
    got = await getJSON(base + "/.well-known/oauth-authorization-server", "application/json", 1 << 20, 10_000);
  }
  // Strict JSON, as the Go verifier reads it: no member twice, none
  // differing from another only in case, so that no reader sees another
  // issuer or jwks_uri.
  let md: Metadata;
  try {
    md = parseObject(Buffer.from(got.body), "discovery document", ["issuer", "jwks_uri", "keycard_revocation_feed_endpoint", "keycard_revocation_stream_endpoint"]) as unknown as Metadata;
  } catch (e) {
    throw new Error(`keycard: discovery document of ${issuer}: ${(e as Error).message}`);
  }
  for (const name of ["issuer", "jwks_uri", "keycard_revocation_feed_endpoint", "keycard_revocation_stream_endpoint"] as const) {
    if (md[name] !== undefined && typeof md[name] !== "string") throw new Error(`keycard: discovery document of ${issuer}: member ${name} must be a string`);
  }
  if (md.issuer !== issuer) throw new Error(`keycard: discovery document of ${issuer} names issuer ${JSON.stringify(md.issuer)}; it must be the same`);
  if (typeof md.jwks_uri !== "string" || md.jwks_uri === "") throw new Error(`keycard: discovery document of ${issuer} has no jwks_uri`);
  for (const name of ["jwks_uri", "keycard_revocation_feed_endpoint", "keycard_revocation_stream_endpoint"] as const) {
    const v = md[name];
    if (v === undefined || v === "") continue;
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new Error(`keycard: discovery document of ${issuer}: ${name} is not an absolute URL`);
    }
    if (!(u.protocol === "https:" || (u.protocol === "http:" && iss.protocol === "http:"))) {
      throw new Error(`keycard: discovery document of ${issuer}: ${name} must be https like the issuer`);
    }
  }
  return md;
}
