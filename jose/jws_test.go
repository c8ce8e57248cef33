package jose

import (
	"crypto"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			key, err := GenerateKey(alg, nil)
			if err != nil {
				t.Fatal(err)
			}
			key, err = key.WithKeyID("k1")
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte(`{"sub":"alice"}`)
			tok, err := Sign(key, Header{Type: "JWT"}, payload)
			if err != nil {
				t.Fatal(err)
			}
			verifyKey := key
			if alg.info().family != famHMAC {
				verifyKey = key.Public()
			}
			m, err := Verify(tok, verifyKey)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if string(m.Payload) != string(payload) || m.Header.Algorithm != alg || m.Header.KeyID != "k1" || m.Header.Type != "JWT" {
				t.Errorf("got %+v %q, want alg %s kid k1 typ JWT payload %q", m.Header, m.Payload, alg, payload)
			}
			// Flip one bit of the signature's first byte.
			bad := []byte(tok)
			i := len(bad) - 10
			if bad[i] == 'A' {
				bad[i] = 'B'
			} else {
				bad[i] = 'A'
			}
			if _, err := Verify(string(bad), verifyKey); !errors.Is(err, ErrSignatureInvalid) && !errors.Is(err, ErrMalformed) {
				t.Errorf("tampered token: got %v, want ErrSignatureInvalid", err)
			}
		})
	}
}

// RFC 7515 Appendix A.1: HS256.
func TestRFC7515A1(t *testing.T) {
	jwk := `{"kty":"oct","alg":"HS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}`
	key, err := ParseJWK([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	tok := "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	m, err := Verify(tok, key)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Type != "JWT" {
		t.Errorf("typ: got %q want JWT", m.Header.Type)
	}
}

// A flaw inside one key of a set (a duplicate member, invalid UTF-8)
// costs only that key.
func TestKeySetFlawInOneKeyCostsOnlyThatKey(t *testing.T) {
	good, err := GenerateKey(ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	good, _ = good.WithKeyID("good")
	pub, _ := good.MarshalJSON()
	doc := `{"keys":[` +
		`{"kty":"EC","kty":"EC","kid":"dup","crv":"P-256","x":"AAAA","y":"AAAA"},` +
		`{"kty":"oct","kid":"bad-utf8-` + "\xff" + `","alg":"HS256","k":"AAAA"},` +
		string(pub) + `]}`
	set, err := ParseKeySet([]byte(doc))
	if err != nil {
		t.Fatalf("ParseKeySet: %v", err)
	}
	if set.Lookup("good") == nil || len(set.Keys()) != 1 {
		t.Errorf("got %d usable keys, want only the good one", len(set.Keys()))
	}
	if n := len(set.Skipped()); n != 2 {
		t.Errorf("got %d skipped keys, want 2: %v", n, set.Skipped())
	}
}

// A resolver that returns neither a key nor an error must not crash
// verification.
func TestNilKeyFromResolver(t *testing.T) {
	key, _ := GenerateKey(HS256, nil)
	tok, _ := Sign(key, Header{}, []byte(`{}`))
	v := JWSVerifier{Keys: nilResolver{}}
	if _, err := v.Verify(tok); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("got %v, want ErrKeyNotFound", err)
	}
}

type nilResolver struct{}

func (nilResolver) ResolveKey(*Header) (*Key, error) { return nil, nil }

// opaqueSigner hides the concrete private key type, as a KMS or HSM
// client would: only Public and Sign are available.
type opaqueSigner struct{ s crypto.Signer }

func (o opaqueSigner) Public() crypto.PublicKey { return o.s.Public() }
func (o opaqueSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, digest, opts)
}

func TestSignThroughCryptoSigner(t *testing.T) {
	for _, alg := range []Algorithm{RS256, PS256, ES256, ES384, ES512, EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			gen, err := GenerateKey(alg, nil)
			if err != nil {
				t.Fatal(err)
			}
			key, err := NewKey(alg, opaqueSigner{gen.Signer()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := key.MarshalPrivateJWK(); err == nil {
				t.Error("a signer's private half was exported")
			}
			tok, err := Sign(key, Header{}, []byte(`{"sub":"kms"}`))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(tok, gen.Public()); err != nil {
				t.Errorf("token signed through crypto.Signer: %v", err)
			}
		})
	}
}

func TestSignWithHeader(t *testing.T) {
	key, err := GenerateKey(ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := SignWithHeader(key, []byte(`{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC"}}`), []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Verify(tok, key.Public())
	if err != nil || string(m.Payload) != `{"a":1}` || m.Header.Type != "dpop+jwt" {
		t.Errorf("got %+v, %v", m, err)
	}
	for _, h := range []string{`{"alg":"ES384"}`, `{"typ":"JWT"}`, `{"alg":"ES256","crit":["x"]}`, `not json`} {
		if _, err := SignWithHeader(key, []byte(h), []byte(`{}`)); err == nil {
			t.Errorf("SignWithHeader accepted header %s", h)
		}
	}
	if _, err := SignWithHeader(key.Public(), []byte(`{"alg":"ES256"}`), []byte(`{}`)); err == nil {
		t.Error("SignWithHeader signed with a public key")
	}
}

// The verifier's memo of the last header skips only the header's decoding
// and parse: a verifier whose allowed algorithms or keys change between
// two verifications of the same token applies the new ones at once.
func TestHeaderMemoFollowsAlgorithmsAndKeys(t *testing.T) {
	key, err := GenerateKey(HS256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key, err = key.WithKeyID("k1"); err != nil {
		t.Fatal(err)
	}
	tok, err := Sign(key, Header{Type: "JWT"}, []byte(`{"sub":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	v := &JWSVerifier{Keys: set}
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("first verification: %v", err)
	}
	v.Algorithms = []Algorithm{ES256}
	if _, err := v.Verify(tok); !errors.Is(err, ErrAlgorithmMismatch) {
		t.Fatalf("with HS256 no longer allowed: %v, want ErrAlgorithmMismatch", err)
	}
	v.Algorithms = nil
	other, err := GenerateKey(HS256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other, err = other.WithKeyID("k2"); err != nil {
		t.Fatal(err)
	}
	if v.Keys, err = NewKeySet(other); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("with k1 gone from the keys: %v, want ErrKeyNotFound", err)
	}
	if other, err = other.WithKeyID("k1"); err != nil { // same kid, another secret
		t.Fatal(err)
	}
	if v.Keys, err = NewKeySet(other); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); !errors.Is(err, ErrSignatureInvalid) {
		t.Fatalf("with k1 now another secret: %v, want ErrSignatureInvalid", err)
	}
	if v.Keys, err = NewKeySet(key); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("with the key back: %v", err)
	}
}
