import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { RemoteKeySet, parseKeySet } from "../keyset.js";
import { listen, testKey } from "./helpers.js";

test("refresh interval: Cache-Control max-age kept between 1 minute and 1 hour, 5 minutes without", () => {
  const s = new RemoteKeySet("http://127.0.0.1:1/jwks");
  const cases: [string | null, number][] = [
    [null, 300_000],
    ["public, max-age=600", 600_000],
    ["max-age=10", 60_000],
    ["max-age=86400", 3_600_000],
    ["max-age=99999999999999999999999", 3_600_000],
    ['max-age="900"', 900_000],
    ["max-age=-5", 300_000],
    ["max-age=1=2", 300_000],
    ["no-store", 60_000],
    ["max-age=600, no-cache", 60_000],
    ["MAX-AGE=120", 120_000],
  ];
  for (const [cc, want] of cases) assert.equal(s.refreshInterval(cc), want, String(cc));
});

test("a key set with bad keys: they are skipped, the others used; two keys with one kid refuse the set", async () => {
  const good = await testKey("good");
  const doc = {
    keys: [
      good.jwk,
      { kty: "EC", crv: "P-256", x: "AAAA", y: "AAAA", kid: "short" },
      { kty: "oct", k: "c2VjcmV0", alg: "HS256", kid: "secret" },
      { kty: "XYZ", kid: "alien" },
      { ...good.jwk, kid: "enc", use: "enc" },
      { ...good.jwk, kid: "wrongalg", alg: "ES384" },
      "not an object",
    ],
  };
  const set = await parseKeySet(JSON.stringify(doc));
  assert.deepEqual(set.keys.map((k) => k.kid), ["good"]);
  assert.deepEqual(set.skipped.map((s) => s.kid), ["short", "secret", "alien", "enc", "wrongalg", ""]);
  await assert.rejects(parseKeySet(JSON.stringify({ keys: [good.jwk, good.jwk] })), /two keys with kid/);
  await assert.rejects(parseKeySet('{"keys":[],"keys":[]}'), /malformed JWK Set/);
  await assert.rejects(parseKeySet('{"nokeys":1}'), /"keys" array/);
});

test("an unknown kid makes one refetch, shared by every caller, at most once per interval; outages keep the old keys", async () => {
  const a = await testKey("a");
  const b = await testKey("b");
  let body: string = JSON.stringify({ keys: [a.jwk] });
  let status = 200;
  let type = "application/json";
  let fetches = 0;
  let release: (() => void) | undefined;
  const server = http.createServer((_req, res) => {
    fetches++;
    const answer = () => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "max-age=3600" });
      res.end(body);
    };
    if (release === undefined) answer();
    else {
      const r = release;
      release = () => (r(), answer());
    }
  });
  const base = await listen(server);
  const ks = new RemoteKeySet(base + "/jwks", { maxWaitMs: 30_000 });
  try {
    assert.equal(await ks.start(), undefined);
    assert.equal(fetches, 1);
    assert.equal(ks.keyFor("a")?.kid, "a");

    // b is published; twenty requests naming it at once make one fetch.
    body = JSON.stringify({ keys: [a.jwk, b.jwk] });
    // The fetch is held until every caller waits for it.
    release = () => {};
    const waiting = Array.from({ length: 20 }, () => ks.resolve("b"));
    await new Promise((r) => setTimeout(r, 50));
    const held = release;
    release = undefined;
    held();
    const got = await Promise.all(waiting);
    assert.ok(got.every((k) => k?.kid === "b"));
    assert.equal(fetches, 2, "one shared refetch");

    // Another unknown kid within the refetch interval: no fetch, no wait.
    assert.equal(await ks.resolve("made-up"), undefined);
    assert.equal(fetches, 2);

    // Outages: an error status, not JSON, garbage, an empty set: the keys stay.
    for (const [s, t, bd] of [
      [500, "application/json", "{}"],
      [200, "text/html", "<html>"],
      [200, "application/json", "{garbage"],
      [200, "application/json", '{"keys":[]}'],
    ] as const) {
      status = s;
      type = t;
      body = bd;
      const err = await ks.refreshNow();
      assert.ok(err instanceof Error, `${s} ${t} ${bd}: want an error`);
      assert.equal(ks.keyFor("a")?.kid, "a");
      assert.equal(ks.keyFor("b")?.kid, "b");
      assert.ok(ks.status().lastError !== "");
    }
    server.close();
    server.closeAllConnections();
    assert.ok((await ks.refreshNow()) instanceof Error, "server gone");
    assert.equal(ks.keyFor("b")?.kid, "b");
    assert.equal(ks.status().ready, true);
  } finally {
    ks.close();
    server.close();
  }
});
