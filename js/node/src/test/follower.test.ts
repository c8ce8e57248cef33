import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { Follower } from "../follower.js";
import { RevocationSet, type Entry } from "../revocation.js";
import { listen, poll } from "./helpers.js";

const at = "2027-01-15T08:00:00.123456Z";
const until = "2999-01-01T00:00:00Z";
const entry = (seq: number, value: string, kind = "session"): Entry => ({ seq, kind, value, at, expires_at: until });
const revoked = (set: RevocationSet, sid: string) => set.revoked("", "u", sid, "", 1);

test("the follower bootstraps, follows the stream and resumes it with Last-Event-ID", async () => {
  const lastEventIDs: string[] = [];
  const auth: string[] = [];
  let streams = 0;
  const server = http.createServer((req, res) => {
    auth.push(req.headers.authorization ?? "");
    const url = new URL(req.url!, "http://x");
    if (url.pathname === "/v1/revocations") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ entries: [entry(1, "s1")], next: 1, snapshot: false }));
      return;
    }
    lastEventIDs.push(String(req.headers["last-event-id"]));
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    if (++streams === 1) {
      // One event with CRLF line ends, a heartbeat, then the stream ends.
      res.write(`: heartbeat\r\n\r\nid: 2\r\nevent: revocation\r\ndata: ${JSON.stringify(entry(2, "s2"))}\r\n\r\n`);
      res.end();
    } else {
      res.write(`id: 3\nevent: revocation\ndata: ${JSON.stringify(entry(3, "s3"))}\n\n`);
      // kept open, as the server does
    }
  });
  const base = await listen(server);
  const set = new RevocationSet();
  const f = new Follower(set, { feedUrl: base + "/v1/revocations", streamUrl: base + "/v1/revocations/stream", clientId: "svc id", clientSecret: "s3cr:t" });
  try {
    assert.equal(await f.start(), undefined);
    assert.ok(revoked(set, "s1"));
    assert.equal(f.healthy(), true);
    await poll("the streamed entries", 30_000, () => revoked(set, "s2") && revoked(set, "s3"));
    assert.deepEqual(lastEventIDs.slice(0, 2), ["1", "2"]);
    assert.equal(f.status().mode, "stream");
    assert.equal(f.status().cursor, 3);
    // RFC 6749 section 2.3.1: form-urlencoded, then Basic.
    assert.equal(auth[0], "Basic " + Buffer.from("svc+id:s3cr%3At").toString("base64"));
  } finally {
    await f.close();
    server.closeAllConnections();
    server.close();
  }
});

test("a stream that is not served: the follower long-polls from its cursor", async () => {
  const afters: string[] = [];
  let delivered = false;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, "http://x");
    if (url.pathname === "/v1/revocations/stream") {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end('{"error":"not_found"}');
      return;
    }
    afters.push(`${url.searchParams.get("after")}/${url.searchParams.get("wait")}`);
    res.writeHead(200, { "Content-Type": "application/json" });
    const after = Number(url.searchParams.get("after"));
    if (after === 0) res.end(JSON.stringify({ entries: [entry(4, "s4")], next: 4, snapshot: false }));
    else if (!delivered) {
      delivered = true;
      res.end(JSON.stringify({ entries: [entry(5, "s5"), entry(6, "k1", "key")], next: 6, snapshot: false }));
    } else setTimeout(() => res.end(JSON.stringify({ entries: [], next: after, snapshot: false })), 200);
  });
  const base = await listen(server);
  const set = new RevocationSet();
  const keysRevoked: string[] = [];
  const f = new Follower(set, {
    feedUrl: base + "/v1/revocations", streamUrl: base + "/v1/revocations/stream", clientId: "c", clientSecret: "s",
    onKeyRevoked: (kid) => keysRevoked.push(kid), pollWaitSeconds: 1,
  });
  try {
    await f.start();
    await poll("the long-polled entries", 30_000, () => revoked(set, "s5"));
    assert.equal(f.status().mode, "long-poll");
    assert.ok(afters.includes("4/1s"), afters.join(" "));
    assert.ok(set.revoked("k1", "", "", "", 1));
    assert.deepEqual(keysRevoked, ["k1"]);
  } finally {
    await f.close();
    server.closeAllConnections();
    server.close();
  }
});

test("a snapshot event replaces the set once its entries have arrived", async () => {
  const server = http.createServer((req, res) => {
    if (req.url!.startsWith("/v1/revocations?")) {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ entries: [entry(1, "old")], next: 1, snapshot: false }));
      return;
    }
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.write(`event: snapshot\ndata: {"next":8}\n\n`);
    res.write(`id: 7\nevent: revocation\ndata: ${JSON.stringify(entry(7, "new7"))}\n\n`);
    res.write(`id: 8\nevent: revocation\ndata: ${JSON.stringify(entry(8, "new8"))}\n\n`);
  });
  const base = await listen(server);
  const set = new RevocationSet();
  const f = new Follower(set, { feedUrl: base + "/v1/revocations", streamUrl: base + "/v1/revocations/stream", clientId: "c", clientSecret: "s" });
  try {
    await f.start();
    await poll("the snapshot", 30_000, () => revoked(set, "new8"));
    assert.ok(revoked(set, "new7"));
    assert.ok(!revoked(set, "old"), "the snapshot dropped what the set held");
  } finally {
    await f.close();
    server.closeAllConnections();
    server.close();
  }
});

test("fail closed: unhealthy once the feed has been unreachable for longer than the bound, never before the first load", async () => {
  let up = true;
  const server = http.createServer((req, res) => {
    if (!up) {
      res.writeHead(503);
      res.end();
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    const after = new URL(req.url!, "http://x").searchParams.get("after");
    if (after === "0") res.end(JSON.stringify({ entries: [], next: 0, snapshot: false }));
    else setTimeout(() => res.end(JSON.stringify({ entries: [], next: 0, snapshot: false })), 50);
  });
  const base = await listen(server);
  const f = new Follower(new RevocationSet(), { feedUrl: base + "/v1/revocations", clientId: "c", clientSecret: "s", maxOutageMs: 300, pollWaitSeconds: 1 });
  const open = new Follower(new RevocationSet(), { feedUrl: "http://127.0.0.1:1/v1/revocations", clientId: "c", clientSecret: "s", failOpen: true });
  try {
    assert.equal(open.healthy(), false, "failOpen never covers a set not loaded yet");
    await f.start();
    assert.equal(f.healthy(), true);
    up = false;
    await poll("the follower to fail closed", 30_000, () => !f.healthy());
    assert.equal(f.status().stale, true);
    up = true;
    await poll("the follower to recover", 30_000, () => f.healthy());
  } finally {
    await f.close();
    await open.close();
    server.closeAllConnections();
    server.close();
  }
});

test("revocation set: cut-offs to the microsecond, the latest kept, expired entries pruned, keys never", () => {
  const s = new RevocationSet();
  s.apply({ seq: 1, kind: "user", value: "bob", at: "2027-01-15T08:00:00.000001Z", expires_at: "2027-01-15T08:15:30Z" });
  s.apply({ seq: 2, kind: "user", value: "bob", at: "2027-01-15T07:00:00Z", expires_at: "2027-01-15T08:15:30Z" });
  const cut = Date.parse("2027-01-15T08:00:00Z") / 1000;
  assert.equal(s.revoked("", "bob", "", "", cut), true, "same second, before the microsecond");
  assert.equal(s.revoked("", "bob", "", "", cut + 1), false);
  s.apply({ seq: 3, kind: "key", value: "k", at: "2027-01-15T08:00:00Z", expires_at: "0001-01-01T00:00:00Z" });
  s.apply({ seq: 4, kind: "unknown-kind", value: "x", at: "2027-01-15T08:00:00Z", expires_at: "0001-01-01T00:00:00Z" });
  s.apply({ seq: 5, kind: "session", value: "", at: "2027-01-15T08:00:00Z", expires_at: "0001-01-01T00:00:00Z" });
  assert.equal(s.skipped, 2);
  assert.equal(s.prune(Date.parse("2027-01-15T09:00:00Z")), 1);
  assert.equal(s.revoked("", "bob", "", "", cut), false);
  assert.equal(s.revoked("k", "", "", "", cut), true, "a revoked key is never pruned");
});
