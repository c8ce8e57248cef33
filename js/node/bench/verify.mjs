// Benchmark of @keycard/node against panva's jose alone, in one run.
//
//   node bench/verify.mjs                 # interleaved rounds, ratios printed
//   node --cpu-prof --cpu-prof-dir=prof bench/verify.mjs revocation
//   node bench/verify.mjs profile prof/*.cpuprofile   # self time by function
//
// "jose": jwtVerify with a local key and the options @keycard/node pins
// (algorithms, typ, issuer, audience, clock tolerance). "keycard cached":
// Verifier.verify on a token it verified before (the verification cache:
// expiry and revocation checked, signature skipped), with 10,000
// revocation entries loaded. "keycard uncached": the same with the cache
// off: strict parsing, jose's jwtVerify, the Go claim rules, revocation.
import { readFileSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";
import { SignJWT, exportJWK, generateKeyPair, jwtVerify } from "jose";
import { Verifier } from "../dist/index.js";

const ISSUER = "https://auth.example.com";
const mode = process.argv[2] ?? "compare";

if (mode === "profile") {
  // Self time per function of a .cpuprofile, the top 15.
  const p = JSON.parse(readFileSync(process.argv[3], "utf8"));
  const self = new Map();
  const dt = p.timeDeltas;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const total = dt.reduce((a, b) => a + b, 0);
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const name = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber + 1}`;
    self.set(name, (self.get(name) ?? 0) + dt[i]);
  });
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
  process.exit(0);
}

const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ iss: ISSUER, sub: "alice", aud: "api", iat: now, exp: now + 3600, sid: "sess-alice", jti: "tok-alice", scope: "orders:read profile", roles: ["customer"] })
  .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k1" })
  .sign(privateKey);

// 10,000 revocation entries of other sessions, tokens and users.
const entries = [];
const at = new Date(Date.now() - 1000).toISOString();
const until = new Date(Date.now() + 3600_000).toISOString();
for (let i = 1; i <= 10_000; i++) {
  entries.push({ seq: i, kind: ["session", "token", "user"][i % 3], value: `other-${i}`, at, expires_at: until });
}
const cached = await Verifier.create({ issuer: ISSUER, audience: "api", keys: { keys: [jwk] }, noRevocationFeed: true });
const uncached = await Verifier.create({ issuer: ISSUER, audience: "api", keys: { keys: [jwk] }, noRevocationFeed: true, cacheSize: 0 });
cached.revocations.reset(entries);
uncached.revocations.reset(entries);
const opts = { algorithms: ["ES256"], typ: "at+jwt", issuer: ISSUER, audience: "api", clockTolerance: 30, requiredClaims: ["exp"] };

if (mode === "revocation") {
  // The revocation check alone, and the cached verify path, under
  // --cpu-prof; garbage collections during the loop are counted.
  let gcs = 0;
  const obs = new PerformanceObserver((l) => (gcs += l.getEntries().length));
  obs.observe({ entryTypes: ["gc"] });
  const set = cached.revocations;
  const N = 20_000_000;
  let hits = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (set.revoked("k1", "alice", "sess-alice", "tok-alice", now)) hits++;
  const ns = Number(process.hrtime.bigint() - t0) / N;
  await new Promise((r) => setTimeout(r, 100));
  console.log(`revoked(): ${ns.toFixed(1)} ns/op over ${N} calls, ${hits} hits, ${gcs} garbage collections during the loop`);
  gcs = 0;
  const M = 2_000_000;
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < M; i++) await cached.verify(token);
  const vns = Number(process.hrtime.bigint() - t1) / M;
  await new Promise((r) => setTimeout(r, 100)); // GC entries are delivered asynchronously
  console.log(`verify() cached: ${vns.toFixed(0)} ns/op over ${M} calls, ${gcs} garbage collections (young-generation ones: the promises of an async call)`);
  obs.disconnect();
  process.exit(0);
}

if (mode === "uncached") {
  // The uncached path alone, for --cpu-prof.
  for (let i = 0; i < 20_000; i++) await uncached.verify(token);
  process.exit(0);
}

// run returns the CPU time per call (user + system, every thread of the
// process: WebCrypto verifies on libuv's pool) and the wall time, in ns.
// CPU time is steadier than wall time on a busy machine.
async function run(name, fn, n) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  const wall = Number(process.hrtime.bigint() - t0) / n;
  const c = process.cpuUsage(c0);
  return { cpu: ((c.user + c.system) * 1000) / n, wall };
}
const contenders = {
  jose: () => jwtVerify(token, publicKey, opts),
  "keycard cached": () => cached.verify(token),
  "keycard uncached": () => uncached.verify(token),
};
for (const [name, fn] of Object.entries(contenders)) await run(name, fn, 500); // warm up
const ROUNDS = Number(process.env.ROUNDS ?? 31);
const N = Number(process.env.N ?? 500);
const results = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  // Interleaved, in a different order each round.
  const names = Object.keys(contenders);
  for (let i = 0; i < r % names.length; i++) names.push(names.shift());
  for (const name of names) results[name].push(await run(name, contenders[name], N));
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const cpuBase = median(results.jose.map((x) => x.cpu));
const wallBase = median(results.jose.map((x) => x.wall));
console.log(`node ${process.version}, ${ROUNDS} interleaved rounds of ${N} verifications, ES256; medians per verification:`);
for (const name of Object.keys(contenders)) {
  const cpu = median(results[name].map((x) => x.cpu));
  const wall = median(results[name].map((x) => x.wall));
  console.log(`  ${name.padEnd(18)} CPU ${cpu.toFixed(0).padStart(8)} ns  ${(cpu / cpuBase).toFixed(3)}x jose   wall ${wall.toFixed(0).padStart(8)} ns  ${(wall / wallBase).toFixed(3)}x jose`);
}
await cached.close();
await uncached.close();
