import { test } from "node:test";
import assert from "node:assert/strict";
import { encode, decode } from "../build/base64url.js";
import { challenge, newVerifier } from "../build/pkce.js";
import { verifyIDToken, checkClaims } from "../build/idtoken.js";
import * as dpop from "../build/dpop.js";

test("base64url", () => {
  assert.equal(encode(new Uint8Array([0xfb, 0xff])), "-_8");
  assert.deepEqual(decode("-_8"), new Uint8Array([0xfb, 0xff]));
  for (const bad of ["a", "ab=", "a+b", "a/b", "ab c"]) assert.throws(() => decode(bad), undefined, bad);
});

test("PKCE S256: the RFC 7636 Appendix B vector", async () => {
  assert.equal(await challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  const v = newVerifier();
  assert.match(v, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(v, newVerifier());
  await assert.rejects(challenge("short"));
});

async function signer(alg = { name: "ECDSA", namedCurve: "P-256" }) {
  const pair = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const jwk = { ...(await crypto.subtle.exportKey("jwk", pair.publicKey)), kid: "k1", use: "sig" };
  const sign = async (header, claims) => {
    const input = encode(JSON.stringify(header)) + "." + encode(JSON.stringify(claims));
    const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input));
    return input + "." + encode(sig);
  };
  return { jwk, sign };
}

const now = 1_800_000_000;
const good = { iss: "https://auth.example", sub: "u1", aud: "app", exp: now + 300, iat: now, nonce: "n1" };
const opts = (keys, extra = {}) => ({ issuer: "https://auth.example", clientId: "app", keys, nonce: "n1", now, ...extra });

test("an ID token: signature and claims", async () => {
  const { jwk, sign } = await signer();
  const tok = await sign({ alg: "ES256", kid: "k1", typ: "JWT" }, good);
  assert.equal((await verifyIDToken(tok, opts([jwk]))).sub, "u1");

  const other = await signer();
  const cases = {
    "another key's signature": [await other.sign({ alg: "ES256", kid: "k1" }, good), [jwk]],
    "alg none": [encode('{"alg":"none"}') + "." + encode(JSON.stringify(good)) + ".", [jwk]],
    "HS256": [encode('{"alg":"HS256","kid":"k1"}') + "." + encode(JSON.stringify(good)) + "." + encode("x"), [jwk]],
    "unknown kid": [await sign({ alg: "ES256", kid: "k2" }, good), [jwk]],
    "tampered claims": [(() => { const p = tok.split("."); p[1] = encode(JSON.stringify({ ...good, sub: "admin" })); return p.join("."); })(), [jwk]],
    "not a JWS": ["abc.def", [jwk]],
    "crit": [await sign({ alg: "ES256", kid: "k1", crit: ["x"], x: 1 }, good), [jwk]],
  };
  for (const [name, [t, keys]] of Object.entries(cases)) {
    await assert.rejects(verifyIDToken(t, opts(keys)), (e) => e.code === "invalid_id_token", name);
  }
});

test("ID token claims", () => {
  const o = opts([]);
  assert.equal(checkClaims(good, o).sub, "u1");
  const bad = {
    "another issuer": { ...good, iss: "https://evil.example" },
    "another audience": { ...good, aud: "other" },
    "several audiences, no azp": { ...good, aud: ["app", "other"] },
    "azp of another client": { ...good, azp: "other" },
    "expired": { ...good, exp: now - 61 },
    "no exp": { ...good, exp: undefined },
    "iat in the future": { ...good, iat: now + 120 },
    "another nonce": { ...good, nonce: "n2" },
    "no nonce": { ...good, nonce: undefined },
    "no sub": { ...good, sub: "" },
  };
  for (const [name, claims] of Object.entries(bad)) assert.throws(() => checkClaims(claims, o), (e) => e.code === "invalid_id_token", name);
  assert.equal(checkClaims({ ...good, aud: ["app", "other"], azp: "app" }, o).sub, "u1");
  assert.equal(checkClaims({ ...good, nonce: undefined }, { ...o, nonce: undefined }).sub, "u1", "a refresh's ID token has no nonce to check");
});

test("DPoP proof", async () => {
  const pair = await dpop.generateKey();
  assert.equal(pair.privateKey.extractable, false);
  await assert.rejects(crypto.subtle.exportKey("jwk", pair.privateKey));
  const p = await dpop.proof(pair, { method: "get", url: "https://api.example/x?y=1#z", accessToken: "tok", nonce: "nn", now: 1000 });
  const [h, c, s] = p.split(".");
  const header = JSON.parse(new TextDecoder().decode(decode(h)));
  const claims = JSON.parse(new TextDecoder().decode(decode(c)));
  assert.equal(header.typ, "dpop+jwt");
  assert.equal(header.alg, "ES256");
  assert.deepEqual(Object.keys(header.jwk).sort(), ["crv", "kty", "x", "y"], "the proof carries the public key only");
  assert.equal(claims.htm, "GET");
  assert.equal(claims.htu, "https://api.example/x");
  assert.equal(claims.iat, 1000);
  assert.equal(claims.nonce, "nn");
  assert.equal(claims.ath, encode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("tok"))));
  assert.match(claims.jti, /^[A-Za-z0-9_-]{22}$/);
  const pub = await crypto.subtle.importKey("jwk", header.jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  assert.ok(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pub, decode(s), new TextEncoder().encode(h + "." + c)));
  const again = await dpop.proof(pair, { method: "GET", url: "https://api.example/x" });
  assert.notEqual(JSON.parse(new TextDecoder().decode(decode(again.split(".")[1]))).jti, claims.jti);
  // RFC 7638 §3.1 shape: the members in order, SHA-256.
  const tp = await dpop.thumbprint(header.jwk);
  const want = encode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`{"crv":"P-256","kty":"EC","x":"${header.jwk.x}","y":"${header.jwk.y}"}`)));
  assert.equal(tp, want);
});
