import { test } from "node:test";
import assert from "node:assert/strict";
import { KeycardClient } from "../build/client.js";
import { MemoryStore } from "../build/store.js";
import { decode } from "../build/base64url.js";
import { FakeLocks, Hub } from "./fakes.mjs";

const issuer = "https://auth.example";
const claimsOf = (jwt) => JSON.parse(new TextDecoder().decode(decode(jwt.split(".")[1])));

// server is a fake of Keycard's token endpoint and of an API behind a
// gateway with DPoP nonces on, as fetch sees them. It records every
// request.
function server() {
  const s = { requests: [], issued: 0, refused: new Set(), nonce: "n-1" };
  s.fetch = async (input, init) => {
    const req = new Request(input, init);
    s.requests.push(req);
    const url = new URL(req.url);
    if (url.pathname === "/.well-known/openid-configuration") {
      return Response.json({ issuer, authorization_endpoint: issuer + "/oauth/authorize", token_endpoint: issuer + "/oauth/token", jwks_uri: issuer + "/jwks" });
    }
    if (url.pathname === "/oauth/token") {
      const body = new URLSearchParams(await req.text());
      const proof = claimsOf(req.headers.get("DPoP"));
      if (proof.nonce !== s.nonce) return Response.json({ error: "use_dpop_nonce" }, { status: 400, headers: { "DPoP-Nonce": s.nonce } });
      if (body.get("grant_type") !== "refresh_token" || s.refused.has(body.get("refresh_token"))) return Response.json({ error: "invalid_grant" }, { status: 400 });
      s.issued++;
      return Response.json({ access_token: "at" + s.issued, token_type: "DPoP", expires_in: 300, refresh_token: "rt" + s.issued });
    }
    if (url.origin === "https://api.example") {
      const [scheme, token] = (req.headers.get("Authorization") ?? "").split(" ");
      const proof = claimsOf(req.headers.get("DPoP"));
      if (scheme !== "DPoP" || proof.htu !== "https://api.example/orders" || proof.htm !== req.method) return new Response(null, { status: 401 });
      if (proof.nonce !== s.nonce) {
        // Across origins a script may read DPoP-Nonce (exposed) but not WWW-Authenticate.
        const h = s.hideChallenge ? { "DPoP-Nonce": s.nonce } : { "WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": s.nonce };
        return new Response(null, { status: 401, headers: h });
      }
      if (s.refused.has(token)) return new Response(null, { status: 401, headers: { "WWW-Authenticate": 'DPoP error="invalid_token"' } });
      return Response.json({ token, body: req.method === "POST" ? await req.text() : null });
    }
    return new Response(null, { status: 404 });
  };
  return s;
}

async function client(s, store = new MemoryStore()) {
  await store.put("refresh", { token: "rt0", gen: 1 });
  const kc = await KeycardClient.create({ issuer, clientId: "app", redirectUri: "https://app.example/", fetch: s.fetch, store, locks: new FakeLocks(), channel: new Hub().channel() });
  return kc;
}

test("fetch adds a DPoP proof with ath and the server's nonce, after one use_dpop_nonce each at the token endpoint and the API", async (t) => {
  const s = server();
  const kc = await client(s);
  t.after(() => kc.close());
  const res = await kc.fetch("https://api.example/orders?x=1", { method: "POST", body: "order" });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { token: "at1", body: "order" }, "the body survives the retry");
  const api = s.requests.filter((r) => r.url.startsWith("https://api.example"));
  assert.equal(api.length, 2, "one use_dpop_nonce, one retry");
  const proof = claimsOf(api[1].headers.get("DPoP"));
  assert.equal(proof.nonce, "n-1");
  assert.equal(proof.htu, "https://api.example/orders");
  const ath = Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("at1"))).toString("base64url");
  assert.equal(proof.ath, ath);
  assert.equal(s.requests.filter((r) => r.url.endsWith("/oauth/token")).length, 2, "one use_dpop_nonce, one refresh");
  // The nonce is remembered: the next call needs no retry.
  await kc.fetch("https://api.example/orders");
  assert.equal(s.requests.filter((r) => r.url.startsWith("https://api.example")).length, 3);
});

test("fetch renews a refused token once and retries once", async (t) => {
  const s = server();
  const kc = await client(s);
  t.after(() => kc.close());
  assert.equal((await kc.fetch("https://api.example/orders")).status, 200);
  s.refused.add("at1");
  const res = await kc.fetch("https://api.example/orders");
  assert.equal(res.status, 200);
  assert.equal((await res.json()).token, "at2");
  s.refused.add("at2");
  s.refused.add("at3");
  const before = s.requests.length;
  assert.equal((await kc.fetch("https://api.example/orders")).status, 401, "a second 401 is the answer");
  assert.equal(s.requests.length - before, 3, "request, refresh, one retry");
});

test("a refresh answered invalid_grant signs out", async (t) => {
  const s = server();
  const store = new MemoryStore();
  const kc = await client(s, store);
  t.after(() => kc.close());
  const events = [];
  kc.on("signedout", (e) => events.push(e.reason));
  s.refused.add("rt0");
  await assert.rejects(kc.accessToken(), (e) => e.code === "invalid_grant");
  assert.deepEqual(events, ["invalid_grant"]);
  assert.equal(await store.get("refresh"), undefined);
});

test("the DPoP key is made once, not extractable, and kept in the store", async (t) => {
  const s = server();
  const store = new MemoryStore();
  const kc = await client(s, store);
  t.after(() => kc.close());
  await kc.fetch("https://api.example/orders");
  const pair = await store.get("dpop:app");
  assert.equal(pair.privateKey.extractable, false);
  const jwks = s.requests.filter((r) => r.headers.get("DPoP")).map((r) => JSON.stringify(JSON.parse(new TextDecoder().decode(decode(r.headers.get("DPoP").split(".")[0]))).jwk));
  assert.equal(new Set(jwks).size, 1, "every proof is of the one key");
});

test("across origins, a 401 with a new DPoP-Nonce and no readable challenge is retried with the nonce, without a refresh", async (t) => {
  const s = server();
  s.hideChallenge = true;
  const kc = await client(s);
  t.after(() => kc.close());
  assert.equal((await kc.fetch("https://api.example/orders")).status, 200);
  assert.equal(s.issued, 1, "no refresh for the nonce");
  s.nonce = "n-2"; // the server's nonce rotates
  assert.equal((await kc.fetch("https://api.example/orders")).status, 200);
  assert.equal(s.issued, 1, "still no refresh");
  s.refused.add("at1"); // a refused token, the nonce unchanged: renewed once
  assert.equal((await (await kc.fetch("https://api.example/orders")).json()).token, "at2");
});
