import { encode, random } from "./base64url.js";

/**
 * generateKey makes a DPoP key pair: ECDSA P-256 (ES256) whose private
 * key is not extractable, so no script, this one included, can read it;
 * it can only sign. The pair may be kept in IndexedDB, which stores
 * CryptoKeys as they are.
 */
export async function generateKey(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

/** publicJwk returns the public key of the pair as a JWK with only the members a DPoP proof carries. */
export async function publicJwk(pair: CryptoKeyPair): Promise<{ kty: string; crv: string; x: string; y: string }> {
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.x || !jwk.y) throw new Error("keycard: the DPoP key is not P-256");
  return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
}

/** thumbprint returns the RFC 7638 thumbprint (SHA-256, base64url) of an EC public JWK: the `jkt` a DPoP-bound token names. */
export async function thumbprint(jwk: { crv: string; kty: string; x: string; y: string }): Promise<string> {
  const canonical = `{"crv":${JSON.stringify(jwk.crv)},"kty":${JSON.stringify(jwk.kty)},"x":${JSON.stringify(jwk.x)},"y":${JSON.stringify(jwk.y)}}`;
  return encode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
}

/** htu returns the URL a proof names (RFC 9449 §4.2): the request's URL without query and fragment. */
export function htu(url: string): string {
  const u = new URL(url);
  return u.origin + u.pathname;
}

/** ath returns the proof's `ath`: base64url(SHA-256(access token)). */
export async function ath(accessToken: string): Promise<string> {
  return encode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
}

/** ProofOptions describe the request a proof is for. */
export interface ProofOptions {
  method: string;
  url: string;
  /** The access token sent with the request, hashed into `ath`. */
  accessToken?: string;
  /** The server's last DPoP-Nonce (RFC 9449 §8). */
  nonce?: string;
  /** The time in seconds; now by default. */
  now?: number;
}

/**
 * proof returns a DPoP proof (RFC 9449 §4.2) for one request, signed with
 * the pair's private key: header typ dpop+jwt, alg ES256 and the public
 * jwk; claims jti (new, random), htm, htu, iat, and ath and nonce when
 * given.
 */
export async function proof(pair: CryptoKeyPair, opt: ProofOptions): Promise<string> {
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: await publicJwk(pair) };
  const claims: Record<string, string | number> = {
    jti: random(16),
    htm: opt.method.toUpperCase(),
    htu: htu(opt.url),
    iat: Math.floor(opt.now ?? Date.now() / 1000),
  };
  if (opt.accessToken !== undefined) claims.ath = await ath(opt.accessToken);
  if (opt.nonce !== undefined) claims.nonce = opt.nonce;
  const input = encode(JSON.stringify(header)) + "." + encode(JSON.stringify(claims));
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input));
  return input + "." + encode(sig);
}
