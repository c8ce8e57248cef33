// Package dpop checks and makes DPoP proofs (RFC 9449, OAuth 2.0
// Demonstrating Proof of Possession): a JWT a client signs with a key it
// holds and sends in the DPoP header of each request, so that a token
// bound to that key ("cnf":{"jkt":…}) is useless to whoever copies it
// without the key.
//
// A [Checker] verifies a proof against the request it came with — type,
// algorithm, embedded public key, signature, method, URL, age, replay,
// access-token hash and nonce (RFC 9449 section 4.3) — and returns the
// key's RFC 7638 thumbprint, which the auth server writes into the tokens
// it issues and a resource server compares with the token's cnf.jkt.
// A [ReplayCache] remembers the proof ids seen within the proof window, in
// a fixed amount of memory, without allocating. [Nonces] issues and checks
// server nonces (RFC 9449 section 8) without server state. A [Prover]
// makes proofs, for clients and tests.
//
// Both the auth server and the verifier use this package, so it depends
// on the standard library and Keycard's jose and jwt packages only.
package dpop
