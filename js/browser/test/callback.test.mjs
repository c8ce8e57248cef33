import { test } from "node:test";
import assert from "node:assert/strict";
import { KeycardClient } from "../build/client.js";
import { MemoryStore } from "../build/store.js";
import { encode } from "../build/base64url.js";
import { FakeLocks, Hub } from "./fakes.mjs";

// The callback runs in a tab: sessionStorage holds the pending sign-in.
class FakeSessionStorage {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

const issuer = "https://auth.example";
const redirect = "https://app.example/cb";

// provider is a fake issuer: discovery, JWKS, and a token endpoint that
// redeems "good-code" with the verifier "v".repeat(43) for an ID token
// with the nonce it is given.
async function provider({ nonce, iss = issuer, aud = "app" }) {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const jwk = { ...(await crypto.subtle.exportKey("jwk", pair.publicKey)), kid: "k1" };
  const now = Math.floor(Date.now() / 1000);
  const input = encode(JSON.stringify({ alg: "ES256", kid: "k1", typ: "JWT" })) + "." +
    encode(JSON.stringify({ iss, sub: "u1", aud, exp: now + 300, iat: now, nonce, preferred_username: "alice" }));
  const idToken = input + "." + encode(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input)));
  const p = { redeemed: [] };
  p.fetch = async (input, init) => {
    const req = new Request(input, init);
    const path = new URL(req.url).pathname;
    if (path === "/.well-known/openid-configuration") {
      return Response.json({ issuer, authorization_endpoint: issuer + "/oauth/authorize", token_endpoint: issuer + "/oauth/token", jwks_uri: issuer + "/jwks" });
    }
    if (path === "/jwks") return Response.json({ keys: [jwk] });
    if (path === "/oauth/token") {
      const body = new URLSearchParams(await req.text());
      p.redeemed.push(Object.fromEntries(body));
      if (!req.headers.get("DPoP")) return Response.json({ error: "invalid_dpop_proof" }, { status: 400 });
      if (body.get("code") !== "good-code" || body.get("code_verifier") !== "v".repeat(43) || body.get("redirect_uri") !== redirect) {
        return Response.json({ error: "invalid_grant" }, { status: 400 });
      }
      return Response.json({ access_token: "at", token_type: "DPoP", expires_in: 300, refresh_token: "rt", id_token: idToken });
    }
    return new Response(null, { status: 404 });
  };
  return p;
}

async function setup(opts = {}) {
  globalThis.sessionStorage = new FakeSessionStorage();
  const p = await provider({ nonce: "the-nonce", ...opts });
  const store = new MemoryStore();
  const kc = await KeycardClient.create({ issuer, clientId: "app", redirectUri: redirect, fetch: p.fetch, store, locks: new FakeLocks(), channel: new Hub().channel() });
  sessionStorage.setItem("keycard:app:pending", JSON.stringify({ state: "the-state", nonce: "the-nonce", verifier: "v".repeat(43), returnTo: "/orders" }));
  return { kc, p, store };
}

const cb = (q) => redirect + "?" + new URLSearchParams(q);

test("a callback completes the sign-in, once", async (t) => {
  const { kc, p, store } = await setup();
  t.after(() => kc.close());
  assert.ok(kc.isCallback(cb({ code: "good-code", state: "the-state", iss: issuer })));
  assert.ok(!kc.isCallback("https://app.example/other?code=x&state=y"));
  const got = await kc.handleCallback(cb({ code: "good-code", state: "the-state", iss: issuer }));
  assert.equal(got.returnTo, "/orders");
  assert.equal(got.claims.preferred_username, "alice");
  assert.equal(kc.user().sub, "u1");
  assert.equal(await kc.accessToken(), "at");
  assert.equal((await store.get("refresh")).token, "rt");
  assert.equal(p.redeemed[0].client_id, "app");
  await assert.rejects(kc.handleCallback(cb({ code: "good-code", state: "the-state", iss: issuer })), (e) => e.code === "state_mismatch", "the same response twice");
});

test("forged or foreign callbacks are refused before the code is redeemed", async (t) => {
  const cases = [
    ["another state", { code: "good-code", state: "forged", iss: issuer }, "state_mismatch"],
    ["no state", { code: "good-code", iss: issuer }, "state_mismatch"],
    ["another issuer (mix-up)", { code: "good-code", state: "the-state", iss: "https://evil.example" }, "issuer_mismatch"],
    ["no iss", { code: "good-code", state: "the-state" }, "issuer_mismatch"],
    ["an error answer", { error: "access_denied", error_description: "no", state: "the-state", iss: issuer }, "access_denied"],
    ["no code", { state: "the-state", iss: issuer }, "invalid_response"],
  ];
  for (const [name, q, code] of cases) {
    const { kc, p } = await setup();
    await assert.rejects(kc.handleCallback(cb(q)), (e) => e.code === code, name);
    assert.equal(p.redeemed.length, 0, name);
    assert.equal(sessionStorage.getItem("keycard:app:pending"), null, `${name}: the pending sign-in is used up`);
    kc.close();
  }
});

test("an ID token with another nonce, issuer or audience is refused", async (t) => {
  for (const [name, opts] of [["nonce", { nonce: "other" }], ["issuer", { iss: "https://evil.example" }], ["audience", { aud: "other-app" }]]) {
    const { kc, store } = await setup(opts);
    await assert.rejects(kc.handleCallback(cb({ code: "good-code", state: "the-state", iss: issuer })), (e) => e.code === "invalid_id_token", name);
    assert.equal(kc.user(), undefined, name);
    assert.equal(await store.get("refresh"), undefined, `${name}: nothing kept`);
    kc.close();
  }
});
