// A public client written with oauth4webapi (panva/oauth4webapi v3, the
// library under openid-client) that holds a DPoP key (RFC 9449), against
// a Keycard issuer and a resource behind keycard gateway on a route that
// requires DPoP. The Go test cmd/keycard/oidc_oauth4webapi_test.go runs it
// and plays the browser:
//
//   node o4w.mjs ISSUER CLIENT_ID REDIRECT_URI RESOURCE_URL [SERVICE_URL]
//
// SERVICE_URL, when given, is a service that verifies tokens itself with
// Keycard's verifier middleware; the client calls it too.
//
// It writes one JSON object a line on stdout, each with a "step":
//
//   {"step":"authorize","url":…}  → stdin: the URL the browser came back to
//   {"step":"done",…}               the token types, the resource's answer
//                                   to the key holder, and the statuses of
//                                   each misuse of the token
//
// Any failed check throws: the process exits 1 with the error on stderr.
import * as oauth from 'oauth4webapi';
import * as readline from 'node:readline';

const [issuer, clientId, redirectUri, resource, service] = process.argv.slice(2);
if (!resource) {
  console.error('usage: node o4w.mjs ISSUER CLIENT_ID REDIRECT_URI RESOURCE_URL');
  process.exit(2);
}
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function readLine() {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin ended');
  return value;
}
function say(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

// The test's Keycard is on http://127.0.0.1: the one concession.
const insecure = { [oauth.allowInsecureRequests]: true };
const as = await oauth.processDiscoveryResponse(new URL(issuer), await oauth.discoveryRequest(new URL(issuer), insecure));
const client = { client_id: clientId };
const clientAuth = oauth.None();
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
const otherKey = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));

// The code flow with PKCE; the code is bound to the key (dpop_jkt).
const codeVerifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const authURL = new URL(as.authorization_endpoint);
authURL.search = new URLSearchParams({
  client_id: clientId,
  redirect_uri: redirectUri,
  response_type: 'code',
  scope: 'openid profile offline_access',
  code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
  state,
  dpop_jkt: await DPoP.calculateThumbprint(),
}).toString();
say('authorize', { url: authURL.href });
const params = oauth.validateAuthResponse(as, client, new URL(await readLine()), state);
const tokens = await oauth.processAuthorizationCodeResponse(as, client,
  await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, codeVerifier, { DPoP, ...insecure }));
const refreshed = await oauth.processRefreshTokenResponse(as, client,
  await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, { DPoP, ...insecure }));
const token = refreshed.access_token;

// The key holder at the resource; the proof it sent is kept.
let sent;
const keep = { [oauth.customFetch]: (url, init) => { sent = new Headers(init.headers).get('dpop'); return fetch(url, init); } };
const ok = await oauth.protectedResourceRequest(token, 'GET', new URL(resource), undefined, undefined, { DPoP, ...keep, ...insecure });
// A proof made and never sent (a fetch that does not go out), for
// another URL and for another method.
let unsent;
const make = { [oauth.customFetch]: (url, init) => { unsent = new Headers(init.headers).get('dpop'); return Promise.resolve(new Response(null, { status: 204 })); } };
await oauth.protectedResourceRequest(token, 'GET', new URL(resource + '/other'), undefined, undefined, { DPoP, ...make, ...insecure });
const otherURLProof = unsent;
await oauth.protectedResourceRequest(token, 'POST', new URL(resource), undefined, undefined, { DPoP, ...make, ...insecure });
const otherMethodProof = unsent;

const status = async (authorization, dpop) => {
  const headers = { authorization };
  if (dpop) headers.dpop = dpop;
  return (await fetch(resource, { headers })).status;
};
// oauth4webapi throws on a 401 with a WWW-Authenticate challenge: its
// status is the answer.
let otherKeyStatus;
try {
  otherKeyStatus = (await oauth.protectedResourceRequest(token, 'GET', new URL(resource), undefined, undefined, { DPoP: otherKey, ...insecure })).status;
} catch (err) {
  if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err;
  otherKeyStatus = err.status;
}
let refreshOtherKey = 'accepted';
try {
  await oauth.processRefreshTokenResponse(as, client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token, { DPoP: otherKey, ...insecure }));
} catch (err) {
  refreshOtherKey = err instanceof oauth.ResponseBodyError ? err.error : `${err.name}: ${err.message}`;
}
let serviceStatus, serviceBearer;
if (service) {
  serviceStatus = (await oauth.protectedResourceRequest(token, 'GET', new URL(service), undefined, undefined, { DPoP, ...insecure })).status;
  serviceBearer = (await fetch(service, { headers: { authorization: 'Bearer ' + token } })).status;
}
say('done', {
  serviceStatus,
  serviceBearer,
  tokenType: tokens.token_type,
  refreshedTokenType: refreshed.token_type,
  resourceStatus: ok.status,
  resourceBody: await ok.text(),
  replayed: await status('DPoP ' + token, sent),
  bearer: await status('Bearer ' + token),
  otherKey: otherKeyStatus,
  otherURL: await status('DPoP ' + token, otherURLProof),
  otherMethod: await status('DPoP ' + token, otherMethodProof),
  refreshOtherKey,
});
process.exit(0);
