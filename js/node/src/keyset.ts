import { importJWK } from "jose";
import { getJSON, jitter } from "./http.js";
import { MalformedTokenError, StrictJSON } from "./strict.js";

/** The largest JWK Set document read, in bytes. */
export const MAX_KEY_SET_SIZE = 1 << 20;

/** Defaults of RemoteKeySetOptions, the Go verifier's. */
export const DEFAULT_MIN_REFRESH_MS = 60_000;
export const DEFAULT_MAX_REFRESH_MS = 3_600_000;
export const DEFAULT_REFRESH_MS = 300_000;
export const DEFAULT_REFETCH_INTERVAL_MS = 10_000;
export const DEFAULT_MAX_WAIT_MS = 1_000;
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
/** The delay before the first retry of a failed fetch; it doubles up to minRefresh. */
const FIRST_RETRY_MS = 1_000;
/** The shortest time between two fetches asked for by requestRefresh. */
const REQUESTED_REFRESH_EVERY_MS = 1_000;

/** The asymmetric algorithms a JWKS key may be bound to. */
export const ASYMMETRIC_ALGORITHMS = ["ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"] as const;

/** A verification key from a JWK Set, bound to one algorithm. */
export interface VerificationKey {
  kid: string;
  alg: string;
  key: import("node:crypto").webcrypto.CryptoKey | Uint8Array;
}

/** A key of a JWK Set document that was left out, and why. */
export interface SkippedKey {
  index: number;
  kid: string;
  reason: string;
}

/** A parsed JWK Set: usable keys by kid, and the skipped ones. */
export interface KeySet {
  byKid: Map<string, VerificationKey>;
  keys: VerificationKey[];
  skipped: SkippedKey[];
}

export interface RemoteKeySetOptions {
  minRefreshMs?: number;
  maxRefreshMs?: number;
  refetchIntervalMs?: number;
  maxWaitMs?: number;
  httpTimeoutMs?: number;
  /** Receives fetch failures and skipped keys, never key material. */
  logger?: Logger;
  /** The clock, in milliseconds; Date.now by default. */
  now?: () => number;
}

/** The logger interface: console fits. */
export interface Logger {
  warn(msg: string, ...args: unknown[]): void;
  info(msg: string, ...args: unknown[]): void;
}

const B64URL_CANON = /^[A-Za-z0-9_-]+$/;

function b64member(jwk: Record<string, unknown>, name: string, want: number): Buffer {
  const v = jwk[name];
  if (typeof v !== "string" || v === "") throw new Error(`JWK member ${JSON.stringify(name)} missing`);
  const b = Buffer.from(v, "base64url");
  if (!B64URL_CANON.test(v) || b.toString("base64url") !== v) throw new Error(`JWK member ${JSON.stringify(name)} is not canonical base64url`);
  if (want > 0 && b.length !== want) throw new Error(`JWK member ${JSON.stringify(name)} has ${b.length} bytes, want ${want}`);
  return b;
}

const CURVES: Record<string, [string, number]> = { "P-256": ["ES256", 32], "P-384": ["ES384", 48], "P-521": ["ES512", 66] };
const STRING_MEMBERS = ["kty", "use", "alg", "kid", "crv", "x", "y", "d", "n", "e", "k", "p", "q", "dp", "dq", "qi"];

/**
 * importKey turns one JWK into a verification key with the rules of Go's
 * jose.ParseJWK: use "sig" if present, key_ops with "verify" if present,
 * the algorithm named by alg (RSA: RS256 without one; EC and OKP: implied
 * by the curve, which alg must agree with), canonical base64url members
 * of the curve's size, RSA moduli of at least 2048 bits without leading
 * zero bytes. Symmetric (oct) keys are refused: a secret published in a
 * key set is no secret. Only the public members are imported.
 */
export async function importKey(jwk: Record<string, unknown>): Promise<VerificationKey> {
  for (const m of STRING_MEMBERS) {
    if (m in jwk && typeof jwk[m] !== "string") throw new Error(`JWK member ${JSON.stringify(m)} must be a string`);
  }
  if (jwk.use !== undefined && jwk.use !== "sig") throw new Error(`JWK use ${JSON.stringify(jwk.use)} is not "sig"`);
  if (jwk.key_ops !== undefined) {
    if (!Array.isArray(jwk.key_ops) || jwk.key_ops.some((o) => typeof o !== "string")) throw new Error("JWK key_ops must be an array of strings");
    if (!jwk.key_ops.includes("verify")) throw new Error("JWK key_ops does not allow verify");
  }
  let alg = (jwk.alg as string | undefined) ?? "";
  if (alg !== "" && !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) throw new Error(`JWK alg ${JSON.stringify(alg)} not supported`);
  const kid = (jwk.kid as string | undefined) ?? "";
  let pub: Record<string, string>;
  switch (jwk.kty) {
    case "RSA": {
      if (alg === "") alg = "RS256";
      if (!alg.startsWith("RS") && !alg.startsWith("PS")) throw new Error(`RSA JWK with alg ${alg}`);
      const n = b64member(jwk, "n", 0);
      const e = b64member(jwk, "e", 0);
      if ((n.length > 1 && n[0] === 0) || (e.length > 1 && e[0] === 0)) throw new Error("RSA JWK member has leading zero bytes");
      if (n.length * 8 - Math.clz32(n[0]!) + 24 < 2048) throw new Error("RSA modulus must be at least 2048 bits");
      if (e.length > 4 || (e.length === 4 && e[0]! >= 0x80)) throw new Error("RSA exponent too large");
      pub = { kty: "RSA", n: jwk.n as string, e: jwk.e as string };
      break;
    }
    case "EC": {
      const c = CURVES[jwk.crv as string];
      if (!c) throw new Error(`EC curve ${JSON.stringify(jwk.crv)} not supported`);
      if (alg === "") alg = c[0];
      if (alg !== c[0]) throw new Error(`crv ${jwk.crv} does not match alg ${alg}`);
      b64member(jwk, "x", c[1]);
      b64member(jwk, "y", c[1]);
      pub = { kty: "EC", crv: jwk.crv as string, x: jwk.x as string, y: jwk.y as string };
      break;
    }
    case "OKP": {
      if (jwk.crv !== "Ed25519") throw new Error(`OKP curve ${JSON.stringify(jwk.crv)} not supported`);
      if (alg === "") alg = "EdDSA";
      if (alg !== "EdDSA") throw new Error(`crv Ed25519 does not match alg ${alg}`);
      b64member(jwk, "x", 32);
      pub = { kty: "OKP", crv: "Ed25519", x: jwk.x as string };
      break;
    }
    case "oct":
      throw new Error("symmetric JWK in a key set");
    case undefined:
      throw new Error("JWK without kty");
    default:
      throw new Error(`kty ${JSON.stringify(jwk.kty)} not supported`);
  }
  const key = await importJWK(pub, alg);
  return { kid, alg, key };
}

/**
 * parseKeySet reads a JWK Set document (RFC 7517 section 5) strictly: a
 * JSON object with a "keys" array. Keys that are malformed or unsupported
 * are skipped, not fatal; two keys with one kid are (which one signs
 * would be a guess).
 */
export async function parseKeySet(text: string): Promise<KeySet> {
  let doc: unknown;
  try {
    doc = new StrictJSON(text, "JWK Set").parseDocument();
  } catch (e) {
    throw new Error("keycard: malformed JWK Set: " + (e as MalformedTokenError).message);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc) || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('keycard: JWK Set needs a "keys" array');
  }
  const entries = (doc as { keys: unknown[] }).keys;
  const set: KeySet = { byKid: new Map(), keys: [], skipped: [] };
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const kid = e !== null && typeof e === "object" && typeof (e as { kid?: unknown }).kid === "string" ? (e as { kid: string }).kid : "";
    try {
      if (e === null || typeof e !== "object" || Array.isArray(e)) throw new Error("not a JSON object");
      const k = await importKey(e as Record<string, unknown>);
      if (k.kid !== "") {
        if (set.byKid.has(k.kid)) throw new DuplicateKidError(k.kid);
        set.byKid.set(k.kid, k);
      }
      set.keys.push(k);
    } catch (err) {
      if (err instanceof DuplicateKidError) throw err;
      set.skipped.push({ index: i, kid, reason: (err as Error).message });
    }
  }
  return set;
}

class DuplicateKidError extends Error {
  constructor(kid: string) {
    super(`keycard: JWK Set has two keys with kid ${JSON.stringify(kid)}`);
  }
}

/** The state of a RemoteKeySet, for health checks and metrics. */
export interface KeySetStatus {
  ready: boolean;
  keys: number;
  skipped: number;
  fetches: number;
  failures: number;
  lastFetch: number | undefined;
  lastError: string;
  nextRefresh: number | undefined;
}

/**
 * RemoteKeySet is the JWK Set at a URL, with the Go verifier's rules:
 * refreshed in the background at the interval of the response's
 * Cache-Control max-age, kept between 1 minute and 1 hour (5 minutes
 * without one, the minimum for no-store and no-cache); a failed fetch
 * (network, status, not JSON, too large, no usable key) keeps the keys
 * already held; malformed keys are skipped. An unknown kid triggers one
 * refetch, shared by every caller waiting for it, at most once every 10
 * s; callers wait at most 1 s. requestRefresh fetches at once, at most
 * once a second (an emergency key revocation).
 */
export class RemoteKeySet {
  private set: KeySet | undefined;
  private readonly minRefresh: number;
  private readonly maxRefresh: number;
  private readonly refetchInterval: number;
  private readonly maxWait: number;
  private readonly httpTimeout: number;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private st: KeySetStatus = { ready: false, keys: 0, skipped: 0, fetches: 0, failures: 0, lastFetch: undefined, lastError: "", nextRefresh: undefined };
  private interval = DEFAULT_REFRESH_MS;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private lastRefetch = -Infinity;
  private lastRequested = -Infinity;
  private deferred: NodeJS.Timeout | undefined;

  constructor(readonly url: string, opt: RemoteKeySetOptions = {}) {
    this.minRefresh = opt.minRefreshMs ?? DEFAULT_MIN_REFRESH_MS;
    this.maxRefresh = Math.max(opt.maxRefreshMs ?? DEFAULT_MAX_REFRESH_MS, this.minRefresh);
    this.refetchInterval = opt.refetchIntervalMs ?? DEFAULT_REFETCH_INTERVAL_MS;
    this.maxWait = opt.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    this.httpTimeout = opt.httpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    this.log = opt.logger;
    this.now = opt.now ?? Date.now;
  }

  /**
   * start fetches the set once and keeps it fresh in the background until
   * close. It resolves with the first fetch's error, or undefined: the
   * background work keeps retrying either way, so a service can start
   * before its auth server.
   */
  async start(): Promise<Error | undefined> {
    this.running = true;
    const err = await this.refreshNow();
    return err;
  }

  /** close stops the background refresh; the keys held keep resolving. */
  close(): void {
    this.running = false;
    clearTimeout(this.timer);
    clearTimeout(this.deferred);
  }

  /** status returns the state of the key set. */
  status(): KeySetStatus {
    return { ...this.st };
  }

  /**
   * keyFor returns the key a token's kid names, synchronously, or
   * undefined when the set does not hold it (resolve then refetches).
   */
  keyFor(kid: string): VerificationKey | undefined {
    return this.set?.byKid.get(kid);
  }

  /**
   * resolve returns the key for kid, refetching the set once (shared, at
   * most one per refetch interval) when it is unknown and waiting for that
   * at most maxWait; undefined if it is still missing.
   */
  async resolve(kid: string): Promise<VerificationKey | undefined> {
    const k = this.keyFor(kid);
    if (k !== undefined || !this.running) return k;
    const wait = this.requestRefetch();
    if (wait !== undefined) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([wait, new Promise<void>((r) => (t = setTimeout(r, this.maxWait)))]);
      clearTimeout(t);
    }
    return this.keyFor(kid);
  }

  /** requestRefetch joins the fetch under way, or starts one unless one started within the refetch interval. */
  private requestRefetch(): Promise<void> | undefined {
    if (this.inflight !== undefined) return this.inflight;
    const now = this.now();
    if (now - this.lastRefetch < this.refetchInterval) return undefined;
    this.lastRefetch = now;
    return this.fetchShared();
  }

  /**
   * requestRefresh asks for the set to be fetched again now, outside the
   * refetch interval: the first request fetches at once, those within a
   * second of it are folded into one fetch a second later. After it, the
   * next unknown kid may refetch at once (the fetch may have come before
   * every issuer instance had the new key).
   */
  requestRefresh(): void {
    if (!this.running || this.deferred !== undefined) return;
    const wait = this.lastRequested + REQUESTED_REFRESH_EVERY_MS - this.now();
    const go = () => {
      this.deferred = undefined;
      this.lastRequested = this.now();
      void this.fetchShared().then(() => {
        this.lastRefetch = -Infinity;
      });
    };
    if (wait > 0) {
      this.deferred = setTimeout(go, wait);
      this.deferred.unref();
    } else go();
  }

  /** fetchShared starts a fetch, or a new one after the one under way (which may have read the keys too early). */
  private fetchShared(): Promise<void> {
    const p: Promise<void> = (this.inflight ?? Promise.resolve()).then(() => this.refreshNow().then(() => undefined));
    this.inflight = p;
    void p.finally(() => {
      if (this.inflight === p) this.inflight = undefined;
    });
    return p;
  }

  /** refreshNow fetches the set, replaces the keys when it holds a usable one, and schedules the next refresh. */
  async refreshNow(): Promise<Error | undefined> {
    this.st.fetches++;
    let err: Error | undefined;
    try {
      const { body, headers } = await getJSON(this.url, "application/jwk-set+json, application/json", MAX_KEY_SET_SIZE, this.httpTimeout);
      const set = await parseKeySet(body);
      if (set.keys.length === 0) throw new Error(`keycard: JWKS from ${this.url} has no usable key (${set.skipped.length} skipped)`);
      const before = this.set ? [...this.set.byKid.keys()].join(",") : "";
      this.set = set;
      this.interval = this.refreshInterval(headers.get("cache-control"));
      Object.assign(this.st, { ready: true, keys: set.keys.length, skipped: set.skipped.length, failures: 0, lastFetch: this.now(), lastError: "" });
      for (const s of set.skipped) this.log?.warn("keycard: JWKS key skipped", { url: this.url, index: s.index, kid: s.kid, reason: s.reason });
      const after = [...set.byKid.keys()].join(",");
      if (before !== after) this.log?.info("keycard: JWKS keys changed", { url: this.url, kids: after, previous: before });
    } catch (e) {
      err = e instanceof Error ? e : new Error(String(e));
      this.st.failures++;
      this.st.lastError = err.message;
      this.log?.warn("keycard: JWKS fetch failed, keeping the previous keys", { url: this.url, err: err.message, failures: this.st.failures, keys: this.st.keys });
    }
    this.schedule(err);
    return err;
  }

  private schedule(err: Error | undefined): void {
    if (!this.running) return;
    let d: number;
    if (err) {
      d = Math.min(FIRST_RETRY_MS, this.minRefresh);
      for (let i = 1; i < this.st.failures && d < this.minRefresh; i++) d *= 2;
      d = Math.min(d, this.minRefresh);
    } else d = this.interval;
    d = jitter(d);
    this.st.nextRefresh = this.now() + d;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.fetchShared(), d);
    this.timer.unref();
  }

  /**
   * refreshInterval is the interval a response's Cache-Control asks for
   * (RFC 9111 section 5.2.2), clamped to [minRefresh, maxRefresh]: max-age
   * when present, minRefresh for no-store or no-cache, 5 minutes otherwise.
   */
  refreshInterval(cacheControl: string | null): number {
    let d = DEFAULT_REFRESH_MS;
    for (const dir of (cacheControl ?? "").split(",")) {
      const t = dir.trim();
      const eq = t.indexOf("=");
      const name = (eq < 0 ? t : t.slice(0, eq)).toLowerCase();
      const rawValue = eq < 0 ? "" : t.slice(eq + 1);
      if (name === "no-store" || name === "no-cache") return this.minRefresh;
      if (name === "max-age") {
        const v = rawValue.replace(/^"|"$/g, "");
        if (!/^[0-9]+$/.test(v)) continue;
        d = Math.min(Number(v), Math.floor(this.maxRefresh / 1000) + 1) * 1000;
      }
    }
    return Math.min(Math.max(d, this.minRefresh), this.maxRefresh);
  }
}
