// Package jwt signs, parses and validates JSON Web Tokens (RFC 7519) on top
// of package jose.
//
// There is no permissive default: a [Parser] is built from the keys it
// accepts, and each key is bound to one algorithm, so the caller always
// says which algorithms it trusts. Validation requires "exp" unless told
// otherwise, checks "nbf" and "iat" with a leeway (30 seconds by default),
// and checks "iss", "aud", the header "typ", required claims and a maximum
// lifetime when asked to. Claims are decoded only after the signature has
// verified. Claims sets must be strict JSON objects: duplicate member
// names, case variants of registered claim names, and registered claims of
// the wrong JSON type are rejected.
//
// Claims come in three forms: [RegisteredClaims] and [AccessClaims]
// (RFC 9068's access-token profile) decoded by a zero-allocation fast path;
// the caller's own struct, typically embedding RegisteredClaims, decoded
// with encoding/json; and [MapClaims]. Signing encodes RegisteredClaims
// and AccessClaims by hand too, claims that implement [ClaimsAppender]
// with their own method, and anything else with encoding/json.
//
// The package depends on the Go standard library and package jose alone.
package jwt
