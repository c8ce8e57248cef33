import http from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type JWK } from "jose";

export const ISSUER = "https://auth.example.com";

/** A signing key for tests, with its public JWK. */
export interface TestKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

type CryptoKey = import("node:crypto").webcrypto.CryptoKey;

export async function testKey(kid: string, alg = "ES256"): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, privateKey, jwk };
}

/** sign makes an access token as Keycard does (typ at+jwt, kid), with claims over the defaults. */
export async function sign(k: TestKey, claims: Record<string, unknown> = {}, nowS = Math.floor(Date.now() / 1000)): Promise<string> {
  const payload = { iss: ISSUER, sub: "alice", aud: "api", iat: nowS - 5, exp: nowS + 900, sid: "sess-1", jti: "tok-" + Math.random(), scope: "orders:read", roles: ["customer"], ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg: k.jwk.alg as string, typ: "at+jwt", kid: k.kid }).sign(k.privateKey);
}

/** listen starts server on a free loopback port and returns its base URL. */
export async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** poll calls fn until it returns true, for at most ms. */
export async function poll(what: string, ms: number, fn: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
