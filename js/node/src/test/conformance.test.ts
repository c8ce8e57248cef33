// Runs the shared conformance table (testdata/conformance, written by
// verifier/conformance_test.go) through @keycard/node: every case must get
// the answer the Go verifier gives.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Verifier, VerifierError, acr, anyRole, anyScope, handler, roles, scopes, type Claims, type Requirement } from "../index.js";

const dir = fileURLToPath(new URL("../../../../testdata/conformance/", import.meta.url));

interface Expect {
  status: number;
  wwwAuthenticate?: string;
  error?: string;
  errorDescription?: string;
  dpopNonce?: string;
  claims?: Record<string, unknown>;
}
interface Case {
  name: string;
  now?: number;
  token?: string;
  request?: { method: string; path: string; headers: [string, string][] | null };
  require?: { scopes?: string[]; anyScopes?: string[]; roles?: string[]; anyRoles?: string[]; acr?: string[]; maxAge?: number };
  expect: Expect;
}
interface File {
  description: string;
  /** remoteJwks: serve jwks on a loopback URL and have the verifier fetch it, as from a jwks_uri. */
  config: { issuer: string; audience: string; publicUrl: string; now: number; dpopNonceSecret?: string; remoteJwks?: boolean };
  jwks: object;
  revocations: never[];
  /** A revocation feed served to the follower, which must reach cursor before the cases run. */
  feed?: { page: object; stream: string; cursor: number };
  cases: Case[];
}

function claimsView(c: Claims) {
  return {
    sub: c.sub,
    sid: c.sid,
    jti: c.jti,
    client_id: c.client_id,
    kid: c.kid,
    scopes: [...c.scopes],
    roles: [...c.roles],
    actors: [...c.actors],
    jkt: c.jkt,
  };
}

/** send makes one request with exactly the given headers, repeated ones included. */
function send(port: number, r: NonNullable<Case["request"]>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const flat: string[] = ["Host", "api.internal"]; // raw headers: Node adds no Host itself
  for (const [k, v] of r.headers ?? []) flat.push(k, v);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: r.method, path: r.path, headers: flat as unknown as http.OutgoingHttpHeaders, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function verifierFor(f: File, now: number): Promise<Verifier> {
  let jwksUrl: string | undefined;
  let server: http.Server | undefined;
  if (f.config.remoteJwks) {
    server = http.createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/jwk-set+json" });
      res.end(JSON.stringify(f.jwks));
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  }
  try {
    const v = await Verifier.create({
      issuer: f.config.issuer,
      audience: f.config.audience,
      publicUrl: f.config.publicUrl,
      ...(jwksUrl ? { jwksUrl } : { keys: f.jwks }),
      noRevocationFeed: true,
      now: () => now * 1000,
      dpop: f.config.dpopNonceSecret ? { nonces: { secret: Buffer.from(f.config.dpopNonceSecret, "base64url") } } : undefined,
    });
    v.revocations.reset(f.revocations);
    return v;
  } finally {
    // The keys are fetched by create; a refetch on an unknown kid then fails, keeping them.
    server?.closeAllConnections();
    server?.close();
  }
}

/**
 * feedVerifier serves f.feed on a loopback server and returns a verifier
 * following it, once its follower has read the feed up to its cursor.
 */
async function feedVerifier(f: File): Promise<{ v: Verifier; close: () => Promise<void> }> {
  const feed = f.feed!;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, "http://x");
    if (url.pathname === "/v1/revocations") {
      res.writeHead(200, { "Content-Type": "application/json" });
      const after = url.searchParams.get("after");
      res.end(after === "0" ? JSON.stringify(feed.page) : JSON.stringify({ entries: [], next: Number(after), snapshot: false }));
      return;
    }
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.write(feed.stream); // held open, as the server does
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const v = await Verifier.create({
    issuer: f.config.issuer,
    audience: f.config.audience,
    publicUrl: f.config.publicUrl,
    keys: f.jwks,
    feedUrl: base + "/v1/revocations",
    streamUrl: base + "/v1/revocations/stream",
    clientId: "conformance",
    clientSecret: "conformance",
    now: () => f.config.now * 1000,
  });
  const deadline = Date.now() + 30_000;
  while (v.follower!.status().cursor !== feed.cursor) {
    if (Date.now() > deadline) throw new Error(`the follower did not reach cursor ${feed.cursor}: ${JSON.stringify(v.follower!.status())}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    v,
    close: async () => {
      await v.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

for (const name of readdirSync(dir).filter((n) => n.endsWith(".json")).sort()) {
  const f = JSON.parse(readFileSync(dir + name, "utf8")) as File;
  describe(`conformance ${name}`, () => {
    let fed: Awaited<ReturnType<typeof feedVerifier>> | undefined;
    if (f.feed) {
      before(async () => {
        fed = await feedVerifier(f);
      });
      after(async () => fed?.close());
    }
    for (const c of f.cases) {
      test(c.name, async () => {
        const v = fed ? fed.v : await verifierFor(f, c.now ?? f.config.now);
        let status: number;
        let challenge = "";
        let code = "";
        let desc = "";
        let nonce = "";
        let got: ReturnType<typeof claimsView> | undefined;
        if (c.token !== undefined) {
          try {
            got = claimsView(await v.verify(c.token));
            status = 200;
          } catch (e) {
            assert.ok(e instanceof VerifierError, `not a VerifierError: ${e}`);
            status = e.status;
            challenge = e.challenge();
            const b = JSON.parse(e.body()) as { error: string; error_description: string };
            code = b.error;
            desc = b.error_description;
          }
        } else {
          const reqs: Requirement[] = [];
          const rq = c.require ?? {};
          // The Go runner's order: scopes, any scope, roles, any role, step-up.
          if (rq.scopes?.length) reqs.push(scopes(...rq.scopes));
          if (rq.anyScopes?.length) reqs.push(anyScope(...rq.anyScopes));
          if (rq.roles?.length) reqs.push(roles(...rq.roles));
          if (rq.anyRoles?.length) reqs.push(anyRole(...rq.anyRoles));
          // Then step-up (acr values, max_age), on the case's clock.
          const now = (c.now ?? f.config.now) * 1000;
          if (rq.acr?.length || rq.maxAge) reqs.push(acr(rq.acr ?? [], { maxAge: rq.maxAge, now: () => now }));
          const server = http.createServer(
            handler(v, (_req, res, claims) => {
              got = claims ? claimsView(claims) : undefined;
              res.end("ok");
            }, { require: reqs }),
          );
          await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
          try {
            const res = await send((server.address() as AddressInfo).port, c.request!);
            status = res.status;
            challenge = (res.headers["www-authenticate"] as string | undefined) ?? "";
            nonce = (res.headers["dpop-nonce"] as string | undefined) ?? "";
            if (status !== 200) {
              const b = JSON.parse(res.body) as { error: string; error_description: string };
              code = b.error;
              desc = b.error_description;
            }
          } finally {
            server.close();
          }
        }
        if (!fed) await v.close();
        const want = c.expect;
        assert.deepEqual(
          { status, challenge, code, desc, nonce },
          { status: want.status, challenge: want.wwwAuthenticate ?? "", code: want.error ?? "", desc: want.errorDescription ?? "", nonce: want.dpopNonce ?? "" },
        );
        if (want.status === 200) assert.deepEqual(got, want.claims);
      });
    }
  });
}
