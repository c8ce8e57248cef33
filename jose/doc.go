// Package jose implements the parts of JOSE that a JWT system needs:
// compact JWS signing and verification (RFC 7515) with the RFC 7518
// signature algorithms and EdDSA (RFC 8037), JSON Web Keys and Key Sets
// (RFC 7517), JWK thumbprints (RFC 7638) and PEM import and export.
//
// The package is deliberately strict. A [Key] is bound to exactly one
// [Algorithm], and a token verifies only if its "alg" header equals the
// key's algorithm, so algorithm-confusion attacks have nothing to confuse.
// There is no "none" algorithm. Compact input is checked for size, segment
// count and canonical base64url before anything is decoded; JOSE headers
// must be strict JSON objects without duplicate or case-variant member
// names; "crit" and "b64" are refused because no extension is understood;
// and keys are never taken from the token itself ("jwk", "jku", "x5u",
// "x5c" are ignored). Nothing from a token is returned before its signature
// has been verified, except through functions whose names start with
// Unsafe.
//
// The package depends on the Go standard library alone.
package jose
