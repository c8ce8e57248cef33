import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { calculateJwkThumbprint, compactVerify, importJWK, type JWK } from "jose";
import { MalformedTokenError, decodeSegment, parseObject } from "./strict.js";

/** The typ of a DPoP proof (RFC 9449 section 4.2). */
export const DPOP_TYPE = "dpop+jwt";
/** How far a proof's iat may be from now: ±60 s. */
export const DEFAULT_DPOP_WINDOW_MS = 60_000;
/** The largest proof accepted, in bytes. */
export const DEFAULT_DPOP_MAX_SIZE = 4 << 10;
const MAX_JTI = 256;
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/** The algorithms accepted by default, in the Go dpop package's order. */
export const DEFAULT_DPOP_ALGORITHMS = ["ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"];

/** A proof that failed a check; the message is for the log. */
export class InvalidProofError extends Error {
  constructor(message: string) {
    super("keycard: invalid DPoP proof: " + message);
    this.name = "InvalidProofError";
  }
}

/** A proof without the server's current nonce, when nonces are on (RFC 9449 section 8). */
export class UseNonceError extends Error {
  constructor() {
    super("keycard: DPoP proof without a valid server nonce");
    this.name = "UseNonceError";
  }
}

/** How long a server nonce is handed out before the next replaces it: 5 minutes. */
export const DEFAULT_NONCE_PERIOD_MS = 5 * 60_000;

/**
 * Nonces issues and checks server-provided DPoP nonces (RFC 9449 section
 * 8) without state, exactly as Go's dpop.Nonces: the number of the current
 * period (8 bytes, big-endian) followed by the first 16 bytes of its
 * HMAC-SHA-256 under the secret, base64url. Instances that share the
 * secret, Go or Node, accept each other's nonces; one is accepted during
 * its period and the next.
 */
export class Nonces {
  private readonly secret: Buffer;
  private readonly periodMs: number;
  private readonly now: () => number;

  constructor(opt: { secret: Uint8Array; periodMs?: number; now?: () => number }) {
    if (opt.secret.length < 32) throw new Error("keycard: the DPoP nonce secret needs at least 32 bytes");
    this.secret = Buffer.from(opt.secret);
    this.periodMs = opt.periodMs ?? DEFAULT_NONCE_PERIOD_MS;
    this.now = opt.now ?? Date.now;
  }

  private period(): bigint {
    return BigInt(Math.floor(this.now() / this.periodMs));
  }

  private make(period: bigint): string {
    const buf = Buffer.alloc(24);
    buf.writeBigUInt64BE(BigInt.asUintN(64, period), 0);
    createHmac("sha256", this.secret).update(buf.subarray(0, 8)).digest().copy(buf, 8, 0, 16);
    return buf.toString("base64url");
  }

  /** issue returns the nonce of the current period, for a DPoP-Nonce header. */
  issue(): string {
    return this.make(this.period());
  }

  /** valid reports whether nonce is the nonce of the current period or of the one before. */
  valid(nonce: string): boolean {
    if (nonce.length !== 32 || !/^[A-Za-z0-9_-]{32}$/.test(nonce)) return false;
    const p = BigInt.asIntN(64, Buffer.from(nonce, "base64url").readBigUInt64BE(0));
    const cur = this.period();
    if (p !== cur && p !== cur - 1n) return false;
    const want = Buffer.from(this.make(p));
    const got = Buffer.from(nonce);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}

export interface DPoPOptions {
  /** Accepted asymmetric algorithms; HMAC is never accepted. */
  algorithms?: string[];
  windowMs?: number;
  maxSize?: number;
  /** Server nonces (RFC 9449 section 8): every proof must carry a current one; see Nonces. */
  nonces?: { secret: Uint8Array; periodMs?: number };
  /** Capacity of the replay cache, in proofs (default 100,000). */
  replayCapacity?: number;
  now?: () => number;
}

/** What a checked proof proves. */
export interface Proof {
  /** The RFC 7638 thumbprint of the proof's key, to compare with the token's cnf.jkt. */
  thumbprint: string;
  jti: string;
  iat: number;
}

interface ProofKey {
  key: import("node:crypto").webcrypto.CryptoKey | Uint8Array;
  thumbprint: string;
}

/**
 * DPoPChecker checks DPoP proofs (RFC 9449 section 4.3) as the Go dpop
 * package does: typ dpop+jwt, an accepted asymmetric alg, a public jwk
 * (no private members, alg agreeing) whose signature verifies; jti (1 to
 * 256 bytes), htm equal to the method, htu equal to the URL after
 * normalisation, iat within the window, ath the hash of the access token;
 * and a jti not seen before within the window (a replay cache of this
 * process).
 */
export class DPoPChecker {
  readonly algorithms: string[];
  private readonly window: number;
  private readonly maxSize: number;
  private readonly now: () => number;
  private readonly seen = new Map<string, number>(); // jti → expiry (ms)
  private readonly capacity: number;
  private readonly keys = new Map<string, ProofKey>(); // raw JWK JSON + alg → key
  /** The server nonces, when on. */
  readonly nonces: Nonces | undefined;

  constructor(opt: DPoPOptions = {}) {
    this.algorithms = (opt.algorithms ?? DEFAULT_DPOP_ALGORITHMS).filter((a) => !a.startsWith("HS") && a !== "none");
    this.window = opt.windowMs ?? DEFAULT_DPOP_WINDOW_MS;
    this.maxSize = opt.maxSize ?? DEFAULT_DPOP_MAX_SIZE;
    this.capacity = opt.replayCapacity ?? 100_000;
    this.now = opt.now ?? Date.now;
    this.nonces = opt.nonces ? new Nonces({ ...opt.nonces, now: this.now }) : undefined;
  }

  /** check checks proof for a request's method, URL and access token; it throws an InvalidProofError. */
  async check(proof: string, method: string, url: string, accessToken: string): Promise<Proof> {
    if (proof === "") throw new InvalidProofError("empty proof");
    if (proof.length > this.maxSize || Buffer.byteLength(proof) > this.maxSize) throw new InvalidProofError(`larger than ${this.maxSize} bytes`);
    const parts = proof.split(".");
    if (parts.length !== 3 || parts[0] === "") throw new InvalidProofError("not a compact JWS");
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = parseObject(decodeSegment(parts[0]!, "header"), "header", []);
      claims = parseObject(decodeSegment(parts[1]!, "payload"), "payload", []);
      decodeSegment(parts[2]!, "signature");
    } catch (e) {
      throw new InvalidProofError((e as MalformedTokenError).message);
    }
    if (header.typ !== DPOP_TYPE) throw new InvalidProofError(`typ ${JSON.stringify(header.typ)}, want ${DPOP_TYPE}`);
    const alg = header.alg;
    if (typeof alg !== "string" || !this.algorithms.includes(alg)) throw new InvalidProofError(`alg ${JSON.stringify(alg)} is not an accepted asymmetric algorithm`);
    if ("crit" in header || "b64" in header) throw new InvalidProofError("critical header extension");
    const pk = await this.headerKey(header.jwk, alg);
    try {
      await compactVerify(proof, pk.key, { algorithms: [alg] });
    } catch {
      throw new InvalidProofError("signature");
    }
    const str = (n: string) => {
      const v = claims[n];
      if (v !== undefined && typeof v !== "string") throw new InvalidProofError(`${n} must be a string`);
      return v as string | undefined;
    };
    const jti = str("jti") ?? "";
    const htm = str("htm") ?? "";
    const htu = str("htu") ?? "";
    const ath = str("ath");
    const nonce = str("nonce");
    const iat = claims.iat;
    if (jti === "" || Buffer.byteLength(jti) > MAX_JTI) throw new InvalidProofError(`jti must be 1 to ${MAX_JTI} bytes`);
    if (htm === "") throw new InvalidProofError("no htm");
    if (htu === "") throw new InvalidProofError("no htu");
    if (iat === undefined) throw new InvalidProofError("no iat");
    if (typeof iat !== "number" || !(iat >= 0) || iat > 253402300799) throw new InvalidProofError("iat is not a NumericDate");
    if (htm !== method) throw new InvalidProofError(`htm ${JSON.stringify(htm)}, request method ${JSON.stringify(method)}`);
    matchURL(htu, url);
    const now = this.now();
    if (iat * 1000 < now - this.window || iat * 1000 > now + this.window) throw new InvalidProofError("iat outside the window");
    if (accessToken !== "") {
      if (ath === undefined) throw new InvalidProofError("no ath with an access token");
      const want = Buffer.from(accessTokenHash(accessToken));
      const got = Buffer.from(ath);
      if (want.length !== got.length || !timingSafeEqual(want, got)) throw new InvalidProofError("ath does not match the access token");
    }
    if (this.nonces !== undefined && (nonce === undefined || !this.nonces.valid(nonce))) throw new UseNonceError();
    if (!this.use(jti, now, iat * 1000 + this.window + 1000)) throw new InvalidProofError("replayed");
    return { thumbprint: pk.thumbprint, jti, iat };
  }

  /** use records jti until expires and reports whether it was new. */
  private use(jti: string, now: number, expires: number): boolean {
    const exp = this.seen.get(jti);
    if (exp !== undefined && exp > now) return false;
    this.seen.delete(jti);
    if (this.seen.size >= this.capacity) {
      // Oldest first (insertion order): drop the expired, then, if still
      // full, the oldest.
      for (const [k, e] of this.seen) {
        if (e <= now || this.seen.size >= this.capacity) this.seen.delete(k);
        else break;
      }
    }
    this.seen.set(jti, expires);
    return true;
  }

  private async headerKey(jwk: unknown, alg: string): Promise<ProofKey> {
    if (jwk === undefined) throw new InvalidProofError("no jwk in the header");
    if (jwk === null || typeof jwk !== "object" || Array.isArray(jwk)) throw new InvalidProofError("jwk must be an object");
    const j = jwk as Record<string, unknown>;
    for (const m of PRIVATE_MEMBERS) if (m in j) throw new InvalidProofError(`jwk has the private member ${JSON.stringify(m)}`);
    if (j.alg !== undefined && j.alg !== alg) throw new InvalidProofError(`jwk alg ${JSON.stringify(j.alg)}, header alg ${alg}`);
    const cacheKey = alg + " " + JSON.stringify(j);
    const hit = this.keys.get(cacheKey);
    if (hit !== undefined) return hit;
    let pk: ProofKey;
    try {
      const key = await importJWK(j as JWK, alg);
      if (key instanceof Uint8Array) throw new Error("symmetric");
      pk = { key, thumbprint: await calculateJwkThumbprint(j as JWK, "sha256") };
    } catch (e) {
      throw new InvalidProofError(`jwk does not fit alg ${alg}`);
    }
    if (this.keys.size >= 256) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(cacheKey, pk);
    return pk;
  }
}

/** accessTokenHash is the ath of a proof for accessToken: base64url of its SHA-256. */
export function accessTokenHash(accessToken: string): string {
  return createHash("sha256").update(accessToken).digest("base64url");
}

/**
 * normalizeURL is a URL as an htu is compared (RFC 9449 section 4.3 and
 * RFC 3986 section 6): scheme and host in lower case, the default port
 * dropped, no query or fragment, percent-encodings in upper case, an empty
 * path as "/".
 */
export function normalizeURL(raw: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(raw);
  if (!m) throw new InvalidProofError("htu must be an absolute http or https URL");
  const scheme = m[1]!.toLowerCase();
  const authority = m[2]!;
  if ((scheme !== "http" && scheme !== "https") || authority === "" || authority.includes("@")) {
    throw new InvalidProofError("htu must be an absolute http or https URL without user information");
  }
  let host = authority.toLowerCase();
  let port = "";
  const pm = /^(\[[^\]]*\]|[^:]*)(?::([0-9]*))?$/.exec(host);
  if (!pm) throw new InvalidProofError("htu host");
  host = pm[1]!;
  port = pm[2] ?? "";
  if ((scheme === "http" && port === "80") || (scheme === "https" && port === "443")) port = "";
  const path = (m[3] || "/").replace(/%[0-9a-fA-F]{2}/g, (s) => s.toUpperCase());
  return scheme + "://" + host + (port !== "" ? ":" + port : "") + path;
}

function matchURL(htu: string, requestURL: string): void {
  let base = requestURL;
  const q = base.search(/[?#]/);
  if (q >= 0) base = base.slice(0, q);
  if (htu === base) return;
  if (normalizeURL(htu) !== normalizeURL(requestURL)) throw new InvalidProofError("htu does not name this request's URL");
}
