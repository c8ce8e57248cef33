import { encode, random } from "./base64url.js";

/**
 * newVerifier returns a PKCE code verifier (RFC 7636 §4.1): 32 random
 * bytes, 43 base64url characters.
 */
export function newVerifier(): string {
  return random(32);
}

/**
 * challenge returns the S256 code challenge of a verifier (RFC 7636
 * §4.2): base64url(SHA-256(ASCII(verifier))). Keycard accepts S256 only.
 */
export async function challenge(verifier: string): Promise<string> {
  if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) throw new Error("keycard: a PKCE verifier is 43 to 128 unreserved characters");
  return encode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}
