package jose

import (
	"crypto"
	"crypto/elliptic"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // registers SHA-384 and SHA-512
)

// Algorithm is a JWS signature algorithm name as registered in RFC 7518
// section 3.1 and RFC 8037 section 3.1.
type Algorithm string

// The supported algorithms. "none" is deliberately absent.
const (
	HS256 Algorithm = "HS256" // HMAC using SHA-256
	HS384 Algorithm = "HS384" // HMAC using SHA-384
	HS512 Algorithm = "HS512" // HMAC using SHA-512
	RS256 Algorithm = "RS256" // RSASSA-PKCS1-v1_5 using SHA-256
	RS384 Algorithm = "RS384" // RSASSA-PKCS1-v1_5 using SHA-384
	RS512 Algorithm = "RS512" // RSASSA-PKCS1-v1_5 using SHA-512
	PS256 Algorithm = "PS256" // RSASSA-PSS using SHA-256 and MGF1 with SHA-256
	PS384 Algorithm = "PS384" // RSASSA-PSS using SHA-384 and MGF1 with SHA-384
	PS512 Algorithm = "PS512" // RSASSA-PSS using SHA-512 and MGF1 with SHA-512
	ES256 Algorithm = "ES256" // ECDSA using P-256 and SHA-256
	ES384 Algorithm = "ES384" // ECDSA using P-384 and SHA-384
	ES512 Algorithm = "ES512" // ECDSA using P-521 and SHA-512
	EdDSA Algorithm = "EdDSA" // Edwards-curve signatures, Ed25519 only (RFC 8037)
)

// Algorithms lists every supported algorithm, in a stable order.
func Algorithms() []Algorithm {
	return []Algorithm{HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA}
}

// family groups algorithms that share a key type.
type family uint8

const (
	famNone family = iota
	famHMAC
	famRSA // PKCS #1 v1.5
	famPSS
	famECDSA
	famEdDSA
)

// algInfo is everything the package needs to know about one algorithm.
type algInfo struct {
	family family
	hash   crypto.Hash
	curve  elliptic.Curve // ECDSA only
	crv    string         // JWK "crv" for EC and OKP keys
	size   int            // ECDSA: bytes of r and of s; EdDSA: signature bytes; HMAC: tag bytes
}

func (a Algorithm) info() algInfo {
	switch a {
	case HS256:
		return algInfo{family: famHMAC, hash: crypto.SHA256, size: 32}
	case HS384:
		return algInfo{family: famHMAC, hash: crypto.SHA384, size: 48}
	case HS512:
		return algInfo{family: famHMAC, hash: crypto.SHA512, size: 64}
	case RS256:
		return algInfo{family: famRSA, hash: crypto.SHA256}
	case RS384:
		return algInfo{family: famRSA, hash: crypto.SHA384}
	case RS512:
		return algInfo{family: famRSA, hash: crypto.SHA512}
	case PS256:
		return algInfo{family: famPSS, hash: crypto.SHA256}
	case PS384:
		return algInfo{family: famPSS, hash: crypto.SHA384}
	case PS512:
		return algInfo{family: famPSS, hash: crypto.SHA512}
	case ES256:
		return algInfo{family: famECDSA, hash: crypto.SHA256, curve: elliptic.P256(), crv: "P-256", size: 32}
	case ES384:
		return algInfo{family: famECDSA, hash: crypto.SHA384, curve: elliptic.P384(), crv: "P-384", size: 48}
	case ES512:
		return algInfo{family: famECDSA, hash: crypto.SHA512, curve: elliptic.P521(), crv: "P-521", size: 66}
	case EdDSA:
		return algInfo{family: famEdDSA, crv: "Ed25519", size: 64}
	}
	return algInfo{}
}

// Valid reports whether a is an algorithm this package implements.
func (a Algorithm) Valid() bool { return a.info().family != famNone }

// String returns the algorithm's registered name.
func (a Algorithm) String() string { return string(a) }

// parseAlgorithm maps a header value to a constant without allocating.
func parseAlgorithm(b []byte) (Algorithm, bool) {
	switch string(b) {
	case "HS256":
		return HS256, true
	case "HS384":
		return HS384, true
	case "HS512":
		return HS512, true
	case "RS256":
		return RS256, true
	case "RS384":
		return RS384, true
	case "RS512":
		return RS512, true
	case "PS256":
		return PS256, true
	case "PS384":
		return PS384, true
	case "PS512":
		return PS512, true
	case "ES256":
		return ES256, true
	case "ES384":
		return ES384, true
	case "ES512":
		return ES512, true
	case "EdDSA":
		return EdDSA, true
	}
	return "", false
}
