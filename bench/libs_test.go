package bench

import (
	"errors"
	"testing"
)

// decoded is what a library's claims value held after a verify, in one
// shape, so that the test can check that every library really decoded the
// private claims it is timed on.
type decoded struct {
	Subject   string
	SessionID string
	Scope     string
	Roles     []string
}

// verifier is one library's verify path for one token. All setup (key import,
// parser construction, option slices) happens before it is returned; verify
// is the measured operation and claims reads back what the last call decoded.
type verifier struct {
	verify func() error
	claims func() decoded // nil for floor, which decodes no JSON
}

// signed holds a library's sign output in whichever form the library returns
// it, so that no benchmark pays a string/[]byte conversion the library does
// not.
type signed struct {
	s string
	b []byte
}

func (s signed) String() string {
	if s.b != nil {
		return string(s.b)
	}
	return s.s
}

// lib is one implementation under test.
type lib struct {
	name        string
	newVerifier func(tb testing.TB, f *fixture, token string) verifier
	newSigner   func(tb testing.TB, f *fixture) func() (signed, error)
	// signType is the typ header the library writes when signing; Keycard
	// requires it when verifying the library's output.
	signType string
}

// libs returns the implementations in the order they are reported.
func libs() []lib {
	return []lib{
		{name: "keycard", newVerifier: keycardVerifier, newSigner: keycardSigner, signType: tokenType},
		{name: "golang-jwt", newVerifier: golangJWTVerifier, newSigner: golangJWTSigner, signType: tokenType},
		{name: "go-jose", newVerifier: goJoseVerifier, newSigner: goJoseSigner, signType: tokenType},
		{name: "jwx", newVerifier: jwxVerifier, newSigner: jwxSigner, signType: tokenType},
		// cristalhq/jwt's Builder always writes typ "JWT" and has no option
		// to change it.
		{name: "cristalhq", newVerifier: cristalhqVerifier, newSigner: cristalhqSigner, signType: "JWT"},
		{name: "floor", newVerifier: floorVerifier, newSigner: floorSigner, signType: tokenType},
	}
}

var (
	errType     = errors.New("bench: unexpected typ header")
	errClaims   = errors.New("bench: claims rejected")
	errMalform  = errors.New("bench: malformed token")
	errBadSig   = errors.New("bench: signature invalid")
	errNoExpiry = errors.New("bench: exp missing")
)
