import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import expressFactory from "express";
import Fastify from "fastify";
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import {
  ACCESS_COOKIE,
  Verifier,
  acr,
  accessTokenHash,
  express as keycardExpress,
  fastify as keycardFastify,
  handler,
  requireRole,
  requireScope,
  scopes,
  type Claims,
} from "../index.js";
import { ISSUER, listen, sign, testKey } from "./helpers.js";

const key = await testKey("k1");
const verifier = (extra: Partial<Parameters<typeof Verifier.create>[0]> = {}) =>
  Verifier.create({ issuer: ISSUER, audience: "api", keys: { keys: [key.jwk] }, noRevocationFeed: true, ...extra });

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, challenge: res.headers.get("www-authenticate") ?? "", body: text };
}

test("Express: the token's claims in req.keycard, scopes and roles per route, RFC 6750 answers", async () => {
  const v = await verifier();
  const app = expressFactory();
  app.use(keycardExpress(v));
  app.get("/me", (req, res) => res.send((req as unknown as { keycard: Claims }).keycard.sub));
  app.post("/orders", requireScope("orders:write"), (_req, res) => res.send("ordered"));
  app.get("/admin", requireRole("admin"), (_req, res) => res.send("admin"));
  const server = app.listen(0, "127.0.0.1");
  await new Promise<void>((r) => server.once("listening", () => r()));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const token = await sign(key);
    assert.deepEqual(await get(base + "/me", { Authorization: "Bearer " + token }), { status: 200, challenge: "", body: "alice" });
    const none = await get(base + "/me");
    assert.equal(none.status, 401);
    assert.equal(none.challenge, 'Bearer realm="keycard"');
    const post = await fetch(base + "/orders", { method: "POST", headers: { Authorization: "Bearer " + token } });
    assert.equal(post.status, 403);
    assert.equal(post.headers.get("www-authenticate"), 'Bearer realm="keycard", error="insufficient_scope", error_description="The access token lacks the scope orders:write.", scope="orders:write"');
    assert.equal((await get(base + "/admin", { Authorization: "Bearer " + token })).status, 403);
    const expired = await get(base + "/me", { Authorization: "Bearer " + (await sign(key, { exp: Math.floor(Date.now() / 1000) - 60 })) });
    assert.equal(expired.status, 401);
    assert.match(expired.challenge, /The access token expired\./);
    assert.equal((await get(base + "/me?access_token=" + token)).status, 400);
  } finally {
    server.close();
    await v.close();
  }
});

test("Fastify: a preHandler per route with requirements", async () => {
  const v = await verifier();
  const app = Fastify();
  app.get("/orders", { preHandler: keycardFastify(v, { require: [scopes("orders:read")] }) }, async (req) => ({ sub: (req as unknown as { keycard: Claims }).keycard.sub }));
  app.post("/orders", { preHandler: keycardFastify(v, { require: [scopes("orders:write")] }) }, async () => ({ ok: true }));
  const base = await app.listen({ port: 0, host: "127.0.0.1" });
  try {
    const token = await sign(key);
    const ok = await get(base + "/orders", { Authorization: "Bearer " + token });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { sub: "alice" });
    const res = await fetch(base + "/orders", { method: "POST", headers: { Authorization: "Bearer " + token } });
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), { error: "insufficient_scope", error_description: "The access token lacks the scope orders:write." });
    const bad = await get(base + "/orders", { Authorization: "Bearer " + token.slice(0, -4) + "AAAA" });
    assert.equal(bad.status, 401);
    assert.equal(bad.challenge, 'Bearer realm="keycard", error="invalid_token", error_description="The access token is invalid."');
    assert.equal(JSON.parse(bad.body).error, "invalid_token");
  } finally {
    await app.close();
    await v.close();
  }
});

test("node:http: acr and max_age requirements answer 401 insufficient_user_authentication (RFC 9470)", async () => {
  const v = await verifier();
  const server = http.createServer(handler(v, (_req, res, c) => res.end(c!.acr), { require: [acr(["mfa", "hwk"], { maxAge: 300 })] }));
  const base = await listen(server);
  try {
    const now = Math.floor(Date.now() / 1000);
    const strong = await get(base + "/", { Authorization: "Bearer " + (await sign(key, { acr: "mfa", auth_time: now - 10 })) });
    assert.deepEqual([strong.status, strong.body], [200, "mfa"]);
    const weak = await get(base + "/", { Authorization: "Bearer " + (await sign(key, { acr: "pwd", auth_time: now - 10 })) });
    assert.equal(weak.status, 401);
    assert.equal(weak.challenge, 'Bearer realm="keycard", error="insufficient_user_authentication", error_description="This resource needs a sign-in with a second factor (acr mfa or hwk).", acr_values="mfa hwk"');
    const old = await get(base + "/", { Authorization: "Bearer " + (await sign(key, { acr: "mfa", auth_time: now - 301 })) });
    assert.equal(old.status, 401);
    assert.equal(old.challenge, 'Bearer realm="keycard", error="insufficient_user_authentication", error_description="This resource needs a sign-in within the last 300 seconds.", max_age="300"');
    const none = await get(base + "/", { Authorization: "Bearer " + (await sign(key)) });
    assert.equal(none.status, 401, "no acr claim");
  } finally {
    server.close();
    await v.close();
  }
});

test("sources: the cookie-mode cookie, one place only; optional lets requests without a token through", async () => {
  const v = await verifier();
  const server = http.createServer(handler(v, (_req, res, c) => res.end(c ? c.sub : "anonymous"), { cookie: ACCESS_COOKIE, optional: true }));
  const base = await listen(server);
  try {
    const token = await sign(key);
    assert.equal((await get(base + "/", { Cookie: `a=b; ${ACCESS_COOKIE}=${token}` })).body, "alice");
    assert.equal((await get(base + "/")).body, "anonymous");
    assert.equal((await get(base + "/", { Cookie: `${ACCESS_COOKIE}=${token}`, Authorization: "Bearer " + token })).status, 400);
    assert.equal((await get(base + "/", { Authorization: "Bearer nonsense" })).status, 401, "a token that is there must be valid");
  } finally {
    server.close();
    await v.close();
  }
});

test("WebSocket upgrades: the token in Sec-WebSocket-Protocol, removed before the handler", async () => {
  const v = await verifier();
  const server = http.createServer(handler(v, (req, res, c) => res.end(`${c!.sub} ${req.headers["sec-websocket-protocol"] ?? "-"}`), { webSocket: true }));
  const base = await listen(server);
  try {
    const token = await sign(key);
    const ws = { Upgrade: "websocket", Connection: "Upgrade" };
    // fetch cannot send Upgrade: a raw request does.
    const send = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(base + "/live", { headers: { ...ws, ...headers } }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode!, body }));
        });
        req.on("upgrade", (res, socket) => (socket.destroy(), resolve({ status: res.statusCode!, body: "" })));
        req.on("error", reject);
        req.end();
      });
    assert.deepEqual(await send({ "Sec-WebSocket-Protocol": `keycard.bearer.${token}, chat` }), { status: 200, body: "alice chat" });
    assert.equal((await send({ "Sec-WebSocket-Protocol": `keycard.bearer.${token}, keycard.bearer.${token}` })).status, 400);
    assert.equal((await send({ "Sec-WebSocket-Protocol": "keycard.bearer., chat" })).status, 400);
  } finally {
    server.close();
    await v.close();
  }
});

test("the verification cache never outlives a revocation or the expiry", async () => {
  let now = Date.now();
  const v = await verifier({ now: () => now });
  const token = await sign(key, { sid: "s-cached" }, Math.floor(now / 1000));
  assert.equal((await v.verify(token)).sid, "s-cached");
  assert.equal((await v.verify(token)).sid, "s-cached"); // from the cache
  v.revocations.apply({ seq: 1, kind: "session", value: "s-cached", at: new Date(now).toISOString(), expires_at: "2999-01-01T00:00:00Z" });
  await assert.rejects(v.verify(token), /revoked/);
  const other = await sign(key, { sid: "s-2" }, Math.floor(now / 1000));
  await v.verify(other);
  now += 931_000; // exp (900 s) + leeway (30 s) passed
  await assert.rejects(v.verify(other), (e: Error & { description?: string }) => e.description === "The access token expired.");
  await v.close();
});

test("DPoP: a bound token with a fresh proof; the same proof replayed is refused", async () => {
  const v = await verifier({ publicUrl: "https://api.example.com/" });
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(jwk);
  const token = await sign(key, { cnf: { jkt } });
  const proof = await new SignJWT({ jti: "p-" + Math.random(), htm: "GET", htu: "https://api.example.com/orders", iat: Math.floor(Date.now() / 1000), ath: accessTokenHash(token) })
    .setProtectedHeader({ typ: "dpop+jwt", alg: "ES256", jwk })
    .sign(privateKey);
  const server = http.createServer(handler(v, (_req, res, c) => res.end(c!.jkt)));
  const base = await listen(server);
  try {
    const headers = { Authorization: "DPoP " + token, DPoP: proof };
    assert.deepEqual(await get(base + "/orders?page=1", headers), { status: 200, challenge: "", body: jkt });
    const again = await get(base + "/orders?page=1", headers);
    assert.equal(again.status, 401);
    assert.match(again.challenge, /^DPoP realm="keycard", error="invalid_dpop_proof"/);
    const bearer = await get(base + "/orders", { Authorization: "Bearer " + token });
    assert.equal(bearer.status, 401);
    assert.match(bearer.challenge, /bound to a DPoP key/);
  } finally {
    server.close();
    await v.close();
  }
});

test("configuration: leeway above 30 s and a feed without credentials are refused", async () => {
  await assert.rejects(verifier({ leewaySeconds: 31 }), /exceeds 30/);
  await assert.rejects(Verifier.create({ issuer: ISSUER, keys: { keys: [key.jwk] } }), /clientId and clientSecret/);
});
