import { test } from "node:test";
import assert from "node:assert/strict";
import { Session } from "../build/session.js";
import { MemoryStore } from "../build/store.js";
import { KeycardError } from "../build/errors.js";
import { FakeLocks, Hub } from "./fakes.mjs";

// tabs makes n sessions of one browser: shared locks, store and channel
// name; refresh is the fake token endpoint, counting its calls.
function tabs(n, { refresh, peerWait = 100, margin = 10_000 } = {}) {
  const locks = new FakeLocks(), hub = new Hub(), store = new MemoryStore();
  const server = { calls: 0, next: 1 };
  const grant = refresh ?? (async (rt) => {
    server.calls++;
    await new Promise((r) => setTimeout(r, 20)); // the network
    const n = server.next++;
    return { tokens: { accessToken: "at" + n, tokenType: "DPoP", expiresAt: Date.now() + 60_000, lifetime: 60_000 }, refreshToken: "rt" + n };
  });
  const out = [];
  for (let i = 0; i < n; i++) {
    const events = { tokens: [], signedOut: [] };
    const s = new Session({
      locks, channel: hub.channel(), store, lockName: "l", refresh: grant, peerWait, margin,
      now: () => Date.now(), setTimeout, clearTimeout,
    }, { tokens: (t) => events.tokens.push(t), signedOut: (r) => events.signedOut.push(r) });
    out.push({ s, events });
  }
  return { tabs: out, server, store, hub };
}

// fresh: tokens of 60 s, renewed by the timer 10 s before expiry.
const fresh = (name) => ({ accessToken: name, tokenType: "DPoP", expiresAt: Date.now() + 60_000, lifetime: 60_000 });
const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms));

test("ten tabs refreshing at once make one refresh, and all get its token", async (t) => {
  const { tabs: ts, server } = tabs(10);
  t.after(() => ts.forEach(({ s }) => s.close()));
  await ts[0].s.signedIn({ tokens: fresh("at0"), refreshToken: "rt0" });
  await settle();
  const stale = ts.map(({ s }) => s.current());
  assert.ok(stale.every((x) => x?.accessToken === "at0"), "every tab has the sign-in's token");
  const got = await Promise.all(ts.map(({ s }, i) => s.refresh(stale[i])));
  assert.equal(server.calls, 1);
  assert.deepEqual(got.map((x) => x.accessToken), Array(10).fill("at1"));
  await settle();
  assert.ok(ts.every(({ s }) => s.current().accessToken === "at1"));
  assert.ok(ts.every(({ events }) => events.signedOut.length === 0), "no tab signed out");
});

test("a tab that takes the lock after another refreshed asks for the token instead of refreshing", async (t) => {
  const { tabs: ts, server, store } = tabs(2, { peerWait: 200 });
  t.after(() => ts.forEach(({ s }) => s.close()));
  await ts[0].s.signedIn({ tokens: fresh("at0"), refreshToken: "rt0" });
  await settle();
  // Tab 2 misses the broadcast of tab 1's refresh (its channel is deaf
  // for the moment): it must see the stored generation move and ask.
  const onmessage = ts[1].s.deps.channel.onmessage;
  ts[1].s.deps.channel.onmessage = null;
  await ts[0].s.refresh(ts[0].s.current());
  await settle();
  ts[1].s.deps.channel.onmessage = onmessage;
  assert.equal(ts[1].s.current().accessToken, "at0");
  const got = await ts[1].s.refresh(ts[1].s.current());
  assert.equal(got.accessToken, "at1");
  assert.equal(server.calls, 1);
  assert.equal((await store.get("refresh")).token, "rt1");
});

test("a tab whose store read is slower than another tab's broadcast takes that token, and does not refresh again", async (t) => {
  const locks = new FakeLocks(), hub = new Hub(), shared = new MemoryStore();
  let calls = 0;
  const grant = async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 20));
    return { tokens: fresh("at" + calls), refreshToken: "rt" + calls };
  };
  // Tab 2 reads the store slowly: tab 1's broadcast lands during its read.
  const slow = { get: async (k) => { await new Promise((r) => setTimeout(r, 50)); return shared.get(k); },
    put: (k, v) => shared.put(k, v), delete: (k) => shared.delete(k) };
  const mk = (store) => new Session({ locks, channel: hub.channel(), store, lockName: "l", refresh: grant, peerWait: 1000,
    margin: 10_000, now: () => Date.now(), setTimeout, clearTimeout }, { tokens: () => {}, signedOut: () => {} });
  const a = mk(shared), b = mk(slow);
  t.after(() => { a.close(); b.close(); });
  await a.signedIn({ tokens: fresh("at0"), refreshToken: "rt0" });
  await settle();
  const stale = b.current();
  const [ga, gb] = await Promise.all([a.refresh(a.current()), b.refresh(stale)]);
  assert.equal(calls, 1, "one refresh for both tabs");
  assert.equal(ga.accessToken, "at1");
  assert.equal(gb.accessToken, "at1");
});

test("when the tab that refreshed is gone, the next one refreshes with the rotated token", async (t) => {
  const seen = [];
  const { tabs: ts } = tabs(2, {
    peerWait: 50,
    refresh: async (rt) => { seen.push(rt); return { tokens: fresh("at-" + rt), refreshToken: rt + "'" }; },
  });
  t.after(() => ts.forEach(({ s }) => s.close()));
  await ts[0].s.signedIn({ tokens: fresh("at0"), refreshToken: "rt0" });
  await settle();
  ts[1].s.deps.channel.onmessage = null; // misses the refresh
  await ts[0].s.refresh(ts[0].s.current());
  ts[0].s.close(); // and the tab closes
  ts[1].s.deps.channel.onmessage = () => {};
  await ts[1].s.refresh(ts[1].s.current());
  assert.deepEqual(seen, ["rt0", "rt0'"], "the second refresh used the rotated token, not the spent one");
});

test("a new tab takes the token from the others without a refresh; alone, it refreshes", async (t) => {
  const { tabs: ts, server } = tabs(3);
  t.after(() => ts.forEach(({ s }) => s.close()));
  await ts[0].s.signedIn({ tokens: fresh("at0"), refreshToken: "rt0" });
  await settle();
  ts[1].s.close();
  const got = await ts[2].s.start();
  assert.equal(got.accessToken, "at0");
  assert.equal(server.calls, 0);

  const alone = tabs(1, { peerWait: 30 });
  t.after(() => alone.tabs[0].s.close());
  assert.equal(await alone.tabs[0].s.start(), undefined, "no stored refresh token: no session");
  await alone.store.put("refresh", { token: "rt9", gen: 4 });
  assert.equal((await alone.tabs[0].s.start()).accessToken, "at1");
  assert.equal(alone.server.calls, 1);
});

test("invalid_grant signs every tab out and forgets the refresh token", async (t) => {
  const { tabs: ts, store } = tabs(3, { refresh: async () => { throw new KeycardError("invalid_grant", "revoked"); } });
  t.after(() => ts.forEach(({ s }) => s.close()));
  await ts[0].s.signedIn({ tokens: fresh("at0"), refreshToken: "rt0" });
  await settle();
  await assert.rejects(ts[1].s.refresh(ts[1].s.current()), (e) => e.code === "invalid_grant");
  await settle();
  for (const { s, events } of ts) {
    assert.deepEqual(events.signedOut, ["invalid_grant"]);
    assert.equal(s.current(), undefined);
  }
  assert.equal(await store.get("refresh"), undefined);
});

test("a network failure of the refresh signs nobody out", async (t) => {
  const { tabs: ts, store } = tabs(2, { refresh: async () => { throw new TypeError("Failed to fetch"); } });
  t.after(() => ts.forEach(({ s }) => s.close()));
  await ts[0].s.signedIn({ tokens: fresh("at0"), refreshToken: "rt0" });
  await settle();
  await assert.rejects(ts[0].s.refresh(ts[0].s.current()), TypeError);
  await settle();
  assert.ok(ts.every(({ events }) => events.signedOut.length === 0));
  assert.equal((await store.get("refresh")).token, "rt0");
});

test("sign-out in one tab reaches the others", async (t) => {
  const { tabs: ts, store } = tabs(3);
  t.after(() => ts.forEach(({ s }) => s.close()));
  await ts[0].s.signedIn({ tokens: fresh("at0"), refreshToken: "rt0" });
  await settle();
  await ts[2].s.signOut();
  await settle();
  for (const { s, events } of ts) {
    assert.deepEqual(events.signedOut, ["signed_out"]);
    assert.equal(s.current(), undefined);
  }
  assert.equal(await store.get("refresh"), undefined);
  await assert.rejects(ts[0].s.accessToken(), (e) => e.code === "no_session");
});

test("the renewal timer fires once for all tabs", async (t) => {
  const { tabs: ts, server } = tabs(5, { margin: 60_000 });
  t.after(() => ts.forEach(({ s }) => s.close()));
  // Lifetime 2 s: renewal at half of it, in every tab.
  await ts[0].s.signedIn({ tokens: { accessToken: "at0", tokenType: "DPoP", expiresAt: Date.now() + 2000, lifetime: 2000 }, refreshToken: "rt0" });
  const deadline = Date.now() + 10_000;
  while (!ts.every(({ s }) => s.current()?.accessToken === "at1") && Date.now() < deadline) await settle(20);
  assert.ok(ts.every(({ s }) => s.current()?.accessToken === "at1"));
  assert.equal(server.calls, 1);
});
