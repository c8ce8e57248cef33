// A relying party written with openid-client (panva/openid-client v6),
// as its README shows, against a Keycard issuer. The Go test
// cmd/keycard/oidc_openidclient_test.go runs it and plays the browser:
//
//   node rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI POST_LOGOUT_URI
//
// It writes one JSON object a line on stdout, each with a "step", and
// waits for a line on stdin where a step needs the browser:
//
//   {"step":"authorize","url":…}  → stdin: the URL the browser came back to
//   {"step":"signed-in",…}          what the code grant, userinfo, the
//                                   refresh and introspection gave
//   {"step":"authorize-par","url":…} → stdin: the URL the browser came
//                                   back to (a pushed request, RFC 9126)
//   {"step":"par-done",…}           what its tokens gave, and revoking
//                                   its refresh token
//   {"step":"device",…}             the user code; polls until approved
//   {"step":"device-done",…}
//   {"step":"logout","url":…}     → stdin: any line, once the browser has
//                                   been through the logout
//   {"step":"done",…}               what a refresh after the logout got
//
// With the environment variable KEYCARD_RP_PRIVATE_JWK (a private JWK,
// ES256) the client authenticates with private_key_jwt (RFC 7523) signed
// by that key instead of its secret (CLIENT_SECRET is then "").
//
// With KEYCARD_RP_DPOP=1 the client holds a DPoP key (RFC 9449,
// openid-client's randomDPoPKeyPair and getDPoPHandle) and sends a proof
// with its code grant, its refresh and its userinfo requests: its access
// tokens are then bound to that key (token_type DPoP). With
// KEYCARD_RP_RESOURCE (a URL behind keycard gateway) as well, it calls
// that resource with fetchProtectedResource, its DPoP token and a fresh
// proof, and reports the status and body.
//
// Any failed check throws: the process exits 1 with the error on stderr.
import * as client from 'openid-client';
import * as readline from 'node:readline';

const [issuer, clientId, clientSecret, redirectUri, postLogoutUri] = process.argv.slice(2);
if (!postLogoutUri) {
  console.error('usage: node rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI POST_LOGOUT_URI');
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
function check(ok, what) {
  if (!ok) throw new Error(what);
}

// Discovery. openid-client refuses http issuers; the test's Keycard is
// on http://127.0.0.1, so the one concession is allowInsecureRequests.
// A client on https drops it.
let clientAuth;
if (process.env.KEYCARD_RP_PRIVATE_JWK) {
  const jwk = JSON.parse(process.env.KEYCARD_RP_PRIVATE_JWK);
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  clientAuth = client.PrivateKeyJwt({ key, kid: jwk.kid });
}
const config = await client.discovery(new URL(issuer), clientId, clientSecret || undefined, clientAuth, {
  execute: [client.allowInsecureRequests],
});
check(config.serverMetadata().issuer === issuer, 'discovery: issuer');
const dpop = process.env.KEYCARD_RP_DPOP === '1'
  ? { DPoP: client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')) }
  : undefined;

// The authorization code flow with PKCE, state and nonce.
const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authURL = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
say('authorize', { url: authURL.href });
const callback = new URL(await readLine());
// Checks state, iss (RFC 9207: discovery says
// authorization_response_iss_parameter_supported), the code exchange
// with the verifier, and the ID token: signature from the JWKS, iss,
// aud, exp, iat, nonce, at_hash.
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
}, undefined, dpop);
const claims = tokens.claims();
check(claims && claims.sub, 'no ID token claims');
check(tokens.refresh_token, 'no refresh token');
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub, dpop);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, dpop);
check(refreshed.access_token && refreshed.access_token !== tokens.access_token, 'the refresh gave no new access token');
check(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'the refresh did not rotate the refresh token');
check(refreshed.claims()?.sub === claims.sub, 'the refreshed ID token names another subject');
const infoAfter = await client.fetchUserInfo(config, refreshed.access_token, claims.sub, dpop);
const introspected = await client.tokenIntrospection(config, refreshed.access_token);
let resource;
if (dpop && process.env.KEYCARD_RP_RESOURCE) {
  const res = await client.fetchProtectedResource(config, refreshed.access_token, new URL(process.env.KEYCARD_RP_RESOURCE), 'GET', undefined, undefined, dpop);
  resource = { status: res.status, body: await res.text() };
}
say('signed-in', {
  sub: claims.sub,
  sid: claims.sid,
  username: info.preferred_username,
  usernameAfterRefresh: infoAfter.preferred_username,
  accessToken: refreshed.access_token,
  tokenType: tokens.token_type,
  refreshedTokenType: refreshed.token_type,
  resourceStatus: resource?.status,
  resourceBody: resource?.body,
  introspectedActive: introspected.active,
  introspectedSub: introspected.sub,
});

// A pushed authorization request (PAR); the browser is signed in, so it
// comes straight back. Then RFC 7009 revocation of its refresh token.
const parVerifier = client.randomPKCECodeVerifier();
const parState = client.randomState();
const parURL = await client.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile',
  code_challenge: await client.calculatePKCECodeChallenge(parVerifier),
  code_challenge_method: 'S256',
  state: parState,
});
say('authorize-par', { url: parURL.href });
const parTokens = await client.authorizationCodeGrant(config, new URL(await readLine()), {
  pkceCodeVerifier: parVerifier,
  expectedState: parState,
  idTokenExpected: true,
});
check(parTokens.refresh_token, 'no refresh token from the pushed request');
await client.tokenRevocation(config, parTokens.refresh_token, { token_type_hint: 'refresh_token' });
let refreshAfterRevocation = 'accepted';
try {
  await client.refreshTokenGrant(config, parTokens.refresh_token);
} catch (err) {
  refreshAfterRevocation = err instanceof client.ResponseBodyError ? err.error : `${err.name}: ${err.message}`;
}
const parIntrospected = await client.tokenIntrospection(config, parTokens.access_token);
say('par-done', {
  sub: parTokens.claims().sub,
  refreshAfterRevocation,
  introspectedActive: parIntrospected.active,
});

// The device authorization grant (RFC 8628).
const device = await client.initiateDeviceAuthorization(config, { scope: 'openid profile' });
say('device', {
  userCode: device.user_code,
  verificationUri: device.verification_uri,
  verificationUriComplete: device.verification_uri_complete,
  interval: device.interval,
});
const deviceTokens = await client.pollDeviceAuthorizationGrant(config, device);
const deviceInfo = await client.fetchUserInfo(config, deviceTokens.access_token, deviceTokens.claims().sub);
say('device-done', { sub: deviceTokens.claims().sub, username: deviceInfo.preferred_username });

// RP-initiated logout.
const logoutState = client.randomState();
const logoutURL = client.buildEndSessionUrl(config, {
  id_token_hint: refreshed.id_token,
  post_logout_redirect_uri: postLogoutUri,
  state: logoutState,
});
say('logout', { url: logoutURL.href, state: logoutState });
await readLine();
let refreshAfterLogout = 'accepted';
try {
  await client.refreshTokenGrant(config, refreshed.refresh_token);
} catch (err) {
  refreshAfterLogout = err instanceof client.ResponseBodyError ? err.error : `${err.name}: ${err.message}`;
}
say('done', { refreshAfterLogout });
process.exit(0);
