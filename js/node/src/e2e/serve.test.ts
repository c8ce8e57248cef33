// End-to-end tests of @keycard/node against a real `keycard serve`,
// started and stopped here. KEYCARD_BIN names the keycard binary; the Go
// test cmd/keycard/node_verifier_test.go builds it and runs this file
// (KEYCARD_TEST_NODE=1 in CI). Without KEYCARD_BIN the tests skip.
//
// What they show: a logout refused at an Express app within about a
// second (by stream and by long-poll), a key rotation followed, an
// emergency key revocation, and the auth server stopped: cached keys keep
// verifying, then every token is refused with 503 once the feed has been
// unreachable for longer than the bound.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import expressFactory from "express";
import { Verifier, express as keycardExpress, requireScope, type Claims } from "../index.js";

const BIN = process.env.KEYCARD_BIN;
const PASSWORD = "correct horse battery staple";

/** poll calls fn until it returns a value, for at most ms (the machine may be loaded: generous deadlines). */
async function poll<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The environment of the keycard processes: ours without KEYCARD_ variables, which would configure them. */
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KEYCARD_")));

function cli(data: string, args: string[], stdin = ""): string {
  const r = spawnSync(BIN!, [...args, "--data", data], { input: stdin, encoding: "utf8", timeout: 120_000, env: childEnv });
  if (r.status !== 0) throw new Error(`keycard ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

interface Server {
  proc: ChildProcess;
  base: string;
  exited: Promise<number | null>;
}

/** serve starts keycard serve on a free loopback port and waits for its "listening" log line. */
async function serve(data: string): Promise<Server> {
  const proc = spawn(BIN!, ["serve", "--dev", "--data", data, "--addr", "127.0.0.1:0", "--argon2-memory", "64", "--argon2-iterations", "1"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: childEnv,
  });
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  let log = "";
  const base = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("keycard serve did not start within 60 s: " + log)), 60_000);
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (d: string) => {
      log += d;
      const m = /"msg":"listening","addr":"([^"]+)"/.exec(log);
      if (m) {
        clearTimeout(t);
        resolve("http://" + m[1]);
      }
    });
    void exited.then((code) => reject(new Error(`keycard serve exited with ${code}: ${log}`)));
  });
  proc.stderr!.resume();
  return { proc, base, exited };
}

async function api(method: string, url: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

async function login(base: string, username: string): Promise<string> {
  const r = await api("POST", base + "/v1/login", undefined, { username, password: PASSWORD });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.access_token as string;
}

function kidOf(token: string): string {
  return JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()).kid as string;
}

/** app starts an Express app behind v: GET /me needs a token, GET /orders the scope orders:write. */
async function app(v: Verifier): Promise<{ url: string; close: () => void }> {
  const a = expressFactory();
  a.use(keycardExpress(v));
  a.get("/me", (req, res) => {
    const c = (req as unknown as { keycard: Claims }).keycard;
    res.json({ sub: c.sub, sid: c.sid, kid: c.kid });
  });
  a.get("/orders", requireScope("orders:write"), (_req, res) => res.json({ ok: true }));
  const server = a.listen(0, "127.0.0.1");
  await new Promise<void>((r) => server.once("listening", () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

async function get(url: string, token: string): Promise<{ status: number; challenge: string; retryAfter: string; body: any }> {
  const res = await fetch(url, { headers: { Authorization: "Bearer " + token } });
  return { status: res.status, challenge: res.headers.get("www-authenticate") ?? "", retryAfter: res.headers.get("retry-after") ?? "", body: await res.json() };
}

test("@keycard/node against keycard serve", { skip: BIN ? false : "KEYCARD_BIN is not set (cmd/keycard's TestNodeVerifier sets it)", timeout: 600_000 }, async (t) => {
  const data = mkdtempSync(join(tmpdir(), "keycard-node-e2e-"));
  t.after(() => rmSync(data, { recursive: true, force: true }));
  const srv = await serve(data);
  t.after(() => srv.proc.kill("SIGKILL"));
  cli(data, ["users", "add", "--username", "root", "--role", "admin", "--password-stdin"], PASSWORD + "\n");
  cli(data, ["users", "add", "--username", "alice", "--password-stdin"], PASSWORD + "\n");
  const client = JSON.parse(cli(data, ["clients", "add", "--name", "node e2e"])) as { client_id: string; client_secret: string };
  const md = (await api("GET", srv.base + "/.well-known/openid-configuration")).json;
  const issuer = md.issuer as string;

  // One verifier follows the feed by its stream, the other by long-poll
  // (its stream URL answers 404, so it falls back).
  const sse = await Verifier.create({ issuer, audience: "api", clientId: client.client_id, clientSecret: client.client_secret });
  const lp = await Verifier.create({
    issuer, audience: "api", clientId: client.client_id, clientSecret: client.client_secret,
    jwksUrl: md.jwks_uri, feedUrl: md.keycard_revocation_feed_endpoint, streamUrl: srv.base + "/v1/no-such-stream",
  });
  t.after(async () => {
    await sse.close();
    await lp.close();
  });
  assert.equal(sse.ready(), undefined);
  const apps = [await app(sse), await app(lp)];
  t.after(() => apps.forEach((a) => a.close()));
  await poll("the long-poll verifier to fall back", 30_000, async () => (lp.follower!.status().mode === "long-poll" ? true : undefined));

  await t.test("logout is refused at the Express apps within about a second", async () => {
    const token = await login(srv.base, "alice");
    for (const a of apps) {
      const r = await get(a.url + "/me", token);
      assert.equal(r.status, 200);
      assert.equal(r.body.sub.length > 0, true);
      const o = await get(a.url + "/orders", token);
      assert.equal(o.status, 403);
      assert.match(o.challenge, /error="insufficient_scope"/);
    }
    const out = await api("POST", srv.base + "/v1/logout", token);
    assert.equal(out.status, 204);
    const t0 = Date.now();
    for (const [i, a] of apps.entries()) {
      const r = await poll("the logout to reach the app", 30_000, async () => {
        const r = await get(a.url + "/me", token);
        return r.status === 200 ? undefined : r;
      });
      t.diagnostic(`${i === 0 ? "stream" : "long-poll"}: refused ${Date.now() - t0} ms after the logout's answer`);
      assert.equal(r.status, 401);
      assert.equal(r.challenge, 'Bearer realm="keycard", error="invalid_token", error_description="The access token was revoked."');
    }
    assert.equal(sse.follower!.status().mode, "stream");
  });

  await t.test("a key rotation is followed, and an emergency key revocation refuses the old key's tokens", async () => {
    const admin = await login(srv.base, "root");
    const before = await login(srv.base, "alice");
    const oldKid = kidOf(before);
    const fetches = sse.keySet!.status().fetches;
    const rot = await api("POST", srv.base + "/admin/v1/keys/rotate", admin, { immediate: true });
    assert.equal(rot.status, 201, JSON.stringify(rot.json));
    const after = await login(srv.base, "alice");
    assert.notEqual(kidOf(after), oldKid);
    for (const a of apps) {
      const r = await get(a.url + "/me", after);
      assert.equal(r.status, 200, JSON.stringify(r.body)); // the unknown kid made the key set refetch
      assert.equal(r.body.kid, kidOf(after));
      assert.equal((await get(a.url + "/me", before)).status, 200); // the old key is still published
    }
    assert.ok(sse.keySet!.status().fetches > fetches, "the key set was fetched again");

    const admin2 = await login(srv.base, "root"); // the first admin token is of the old key
    const rev = await api("POST", srv.base + `/admin/v1/keys/${encodeURIComponent(oldKid)}/revoke`, admin2);
    assert.equal(rev.status, 200, JSON.stringify(rev.json));
    for (const a of apps) {
      const r = await poll("the key revocation to reach the app", 30_000, async () => {
        const r = await get(a.url + "/me", before);
        return r.status === 200 ? undefined : r;
      });
      assert.equal(r.status, 401);
      assert.match(r.challenge, /The access token was revoked\./);
      assert.equal((await get(a.url + "/me", after)).status, 200);
    }
  });

  await t.test("the auth server stopped: cached keys keep verifying, then the verifier fails closed", async () => {
    // A third verifier, with an outage bound of 20 s: more than the 15 s
    // between the stream's heartbeats, so that it holds while the server
    // runs, and short enough to wait out.
    const closing = await Verifier.create({ issuer, audience: "api", clientId: client.client_id, clientSecret: client.client_secret, maxFeedOutageMs: 20_000 });
    t.after(() => closing.close());
    const closingApp = await app(closing);
    t.after(() => closingApp.close());
    const seen = await login(srv.base, "alice");
    const fresh = await login(srv.base, "alice"); // never presented before the stop
    assert.equal((await get(closingApp.url + "/me", seen)).status, 200);
    const fetchesBefore = lp.keySet!.status().fetches;
    srv.proc.kill("SIGTERM");
    await srv.exited;
    // The long-poll verifier has the default bound (2 minutes): a token it
    // never saw verifies with the keys it holds, the JWKS endpoint gone.
    const r = await get(apps[1]!.url + "/me", fresh);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(lp.keySet!.status().keys > 0);
    assert.equal(lp.keySet!.status().fetches, fetchesBefore, "verified without fetching the key set");
    // Past its 20 s bound, the third verifier refuses every token.
    const closed = await poll("the verifier to fail closed", 120_000, async () => {
      const r = await get(closingApp.url + "/me", seen);
      return r.status === 503 ? r : undefined;
    });
    assert.equal(closed.retryAfter, "5");
    assert.equal(closed.body.error, "temporarily_unavailable");
    assert.match(closing.ready() ?? "", /failing closed/);
    assert.equal(sse.ready(), undefined, "the default bound (2 minutes) is not reached yet");
  });
});
