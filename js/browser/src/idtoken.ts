import { decode } from "./base64url.js";
import { KeycardError } from "./errors.js";

/** IDTokenClaims are the claims of a verified ID token. */
export interface IDTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nonce?: string;
  azp?: string;
  sid?: string;
  auth_time?: number;
  preferred_username?: string;
  email?: string;
  roles?: string[];
  [claim: string]: unknown;
}

/** VerifyOptions say what an ID token must be (OpenID Connect Core §3.1.3.7). */
export interface VerifyOptions {
  issuer: string;
  clientId: string;
  /** The keys of the issuer's jwks_uri. */
  keys: JsonWebKey[];
  /** The nonce sent with the authorization request; undefined for an ID token of a refresh, which is not checked for one. */
  nonce?: string;
  /** The current time in seconds. */
  now: number;
  /** Allowed clock skew in seconds; 60 by default. */
  leeway?: number;
}

type Alg = { import: RsaHashedImportParams | EcKeyImportParams | Algorithm; verify: AlgorithmIdentifier | RsaPssParams | EcdsaParams; kty: string; crv?: string };

const algs: Record<string, Alg> = {
  ES256: { import: { name: "ECDSA", namedCurve: "P-256" }, verify: { name: "ECDSA", hash: "SHA-256" }, kty: "EC", crv: "P-256" },
  ES384: { import: { name: "ECDSA", namedCurve: "P-384" }, verify: { name: "ECDSA", hash: "SHA-384" }, kty: "EC", crv: "P-384" },
  ES512: { import: { name: "ECDSA", namedCurve: "P-521" }, verify: { name: "ECDSA", hash: "SHA-512" }, kty: "EC", crv: "P-521" },
  RS256: { import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, verify: { name: "RSASSA-PKCS1-v1_5" }, kty: "RSA" },
  RS384: { import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" }, verify: { name: "RSASSA-PKCS1-v1_5" }, kty: "RSA" },
  RS512: { import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" }, verify: { name: "RSASSA-PKCS1-v1_5" }, kty: "RSA" },
  PS256: { import: { name: "RSA-PSS", hash: "SHA-256" }, verify: { name: "RSA-PSS", saltLength: 32 }, kty: "RSA" },
  PS384: { import: { name: "RSA-PSS", hash: "SHA-384" }, verify: { name: "RSA-PSS", saltLength: 48 }, kty: "RSA" },
  PS512: { import: { name: "RSA-PSS", hash: "SHA-512" }, verify: { name: "RSA-PSS", saltLength: 64 }, kty: "RSA" },
  EdDSA: { import: { name: "Ed25519" }, verify: { name: "Ed25519" }, kty: "OKP", crv: "Ed25519" },
};

function bad(msg: string): KeycardError {
  return new KeycardError("invalid_id_token", msg);
}

/** decodeJWT splits a compact JWS into its parts without verifying anything. */
export function decodeJWT(token: string): { header: Record<string, unknown>; payload: Record<string, unknown>; signingInput: Uint8Array; signature: Uint8Array } {
  const parts = token.split(".");
  if (parts.length !== 3) throw bad("not a compact JWS");
  let header: unknown, payload: unknown, signature: Uint8Array;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(decode(parts[0])));
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(decode(parts[1])));
    signature = decode(parts[2]);
  } catch {
    throw bad("malformed");
  }
  if (!isObject(header) || !isObject(payload)) throw bad("malformed");
  return { header, payload, signingInput: new TextEncoder().encode(parts[0] + "." + parts[1]), signature };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * verifyIDToken verifies an ID token's signature with the issuer's keys
 * (WebCrypto; asymmetric algorithms only, never `none` or HMAC) and its
 * claims: `iss` is the issuer, `aud` names the client (and `azp` is the
 * client when there are several audiences, or when present), `exp` is in
 * the future and `iat` is there, and `nonce` is the one sent, when one
 * was. It returns the claims, or throws a KeycardError
 * `invalid_id_token`.
 */
export async function verifyIDToken(token: string, opt: VerifyOptions): Promise<IDTokenClaims> {
  const { header, payload, signingInput, signature } = decodeJWT(token);
  const alg = typeof header.alg === "string" ? algs[header.alg] : undefined;
  if (!alg) throw bad(`algorithm ${String(header.alg)} not accepted`);
  if (header.crit !== undefined) throw bad("crit not supported");
  const candidates = opt.keys.filter(
    (k) => k.kty === alg.kty && (alg.crv === undefined || k.crv === alg.crv) && (k.use === undefined || k.use === "sig") &&
      (header.kid === undefined || (k as { kid?: string }).kid === header.kid) &&
      ((k as { alg?: string }).alg === undefined || (k as { alg?: string }).alg === header.alg),
  );
  if (candidates.length === 0) throw bad("no key of the issuer matches the token's kid and alg");
  let ok = false;
  for (const jwk of candidates) {
    const pub: JsonWebKey = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, n: jwk.n, e: jwk.e };
    let key: CryptoKey;
    try {
      key = await crypto.subtle.importKey("jwk", pub, alg.import, false, ["verify"]);
    } catch {
      continue; // a bad key in the set is skipped
    }
    if (await crypto.subtle.verify(alg.verify, key, signature as BufferSource, signingInput as BufferSource)) {
      ok = true;
      break;
    }
  }
  if (!ok) throw bad("signature does not verify");
  return checkClaims(payload, opt);
}

/** checkClaims checks the claims of an ID token whose signature was verified. */
export function checkClaims(p: Record<string, unknown>, opt: VerifyOptions): IDTokenClaims {
  const leeway = opt.leeway ?? 60;
  if (p.iss !== opt.issuer) throw bad("iss is not the issuer");
  if (typeof p.sub !== "string" || p.sub === "") throw bad("no sub");
  const aud = typeof p.aud === "string" ? [p.aud] : Array.isArray(p.aud) && p.aud.every((a) => typeof a === "string") ? (p.aud as string[]) : undefined;
  if (!aud || !aud.includes(opt.clientId)) throw bad("aud does not name this client");
  if ((aud.length > 1 || p.azp !== undefined) && p.azp !== opt.clientId) throw bad("azp is not this client");
  if (typeof p.exp !== "number" || p.exp + leeway <= opt.now) throw bad("expired");
  if (typeof p.iat !== "number" || p.iat - leeway > opt.now) throw bad("iat missing or in the future");
  if (opt.nonce !== undefined && p.nonce !== opt.nonce) throw bad("nonce is not the one sent");
  return p as IDTokenClaims;
}
