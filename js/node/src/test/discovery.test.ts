import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { discover } from "../verifier.js";
import { listen } from "./helpers.js";

test("discovery: the OAuth path after a 404, the same issuer, strict JSON, https endpoints for an https issuer", async () => {
  let doc = "";
  let oidc404 = false;
  const server = http.createServer((req, res) => {
    if (req.url === "/.well-known/openid-configuration" && oidc404) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(doc);
  });
  const base = await listen(server);
  try {
    const good = { issuer: base, jwks_uri: base + "/jwks", keycard_revocation_feed_endpoint: base + "/v1/revocations" };
    doc = JSON.stringify(good);
    assert.equal((await discover(base)).jwks_uri, base + "/jwks");
    oidc404 = true;
    assert.equal((await discover(base)).keycard_revocation_feed_endpoint, base + "/v1/revocations");
    doc = JSON.stringify({ ...good, issuer: "https://other.example" });
    await assert.rejects(discover(base), /names issuer/);
    doc = `{"issuer":"https://evil.example","issuer":${JSON.stringify(base)},"jwks_uri":"${base}/jwks"}`;
    await assert.rejects(discover(base), /duplicate member/);
    doc = `{"issuer":${JSON.stringify(base)},"jwks_uri":"${base}/jwks","JWKS_URI":"https://evil.example/jwks"}`;
    await assert.rejects(discover(base), /case-variant/);
    doc = JSON.stringify({ issuer: base });
    await assert.rejects(discover(base), /no jwks_uri/);
    doc = JSON.stringify({ ...good, jwks_uri: 7 });
    await assert.rejects(discover(base), /must be a string/);
    await assert.rejects(discover(base + "?x=1"), /without query/);
  } finally {
    server.close();
  }
});
