package jose

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// This file checks the package against published examples: RFC 7515
// Appendix A and RFC 7638 section 3.1 (kept in testdata/), and the RFC 7520
// cookbook, RFC 8037 and RFC 7797 examples from the ietf-jose/cookbook and
// panva/jose repositories (read from ../shared/vectors).

// vectorsDir returns the shared test-vector folder, ../shared/vectors
// beside the module root, or skips the test when it is absent.
func vectorsDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("skipping: no go.mod above the test directory, so ../shared/vectors cannot be located")
		}
		dir = parent
	}
	v := filepath.Join(dir, "..", "shared", "vectors")
	if fi, err := os.Stat(v); err != nil || !fi.IsDir() {
		t.Skipf("skipping: test vectors not found at %s (check out shared/ beside the repository)", v)
	}
	return v
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// parseJWKAs parses a JWK after setting its "alg" member to alg (when not
// empty): the vectors give the algorithm next to the key rather than in it,
// and a Key is bound to one algorithm.
func parseJWKAs(raw []byte, alg Algorithm) (*Key, error) {
	if alg != "" {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		m["alg"] = string(alg)
		var err error
		if raw, err = json.Marshal(m); err != nil {
			return nil, err
		}
	}
	return ParseJWK(raw)
}

// verifier returns the key to verify with: the public half of an
// asymmetric key, to show that the private half is not needed.
func verifier(k *Key) *Key {
	if pub := k.Public(); pub != nil {
		return pub
	}
	return k
}

// sameKey reports how got differs from want, or "" when they are the same
// key: same algorithm, kid, thumbprint, public key, private key or secret.
func sameKey(got, want *Key) string {
	switch {
	case got.Algorithm() != want.Algorithm():
		return fmt.Sprintf("alg %s, want %s", got.Algorithm(), want.Algorithm())
	case got.KeyID() != want.KeyID():
		return fmt.Sprintf("kid %q, want %q", got.KeyID(), want.KeyID())
	case got.Thumbprint() != want.Thumbprint():
		return fmt.Sprintf("thumbprint %s, want %s", got.Thumbprint(), want.Thumbprint())
	case got.IsPrivate() != want.IsPrivate():
		return fmt.Sprintf("IsPrivate %v, want %v", got.IsPrivate(), want.IsPrivate())
	case !bytes.Equal(got.secret, want.secret):
		return "HMAC secrets differ"
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if want.pub != nil {
		if e, ok := got.pub.(equaler); !ok || !e.Equal(want.pub) {
			return "public keys differ"
		}
	}
	if want.signer != nil {
		type privEqualer interface{ Equal(crypto.PrivateKey) bool }
		if e, ok := got.signer.(privEqualer); !ok || !e.Equal(want.signer) {
			return "private keys differ"
		}
	}
	return ""
}

// splitSig returns the signing input and the decoded signature of a
// compact JWS.
func splitSig(t testing.TB, compact string) (input, sig []byte) {
	t.Helper()
	dot := strings.LastIndexByte(compact, '.')
	sig, err := b64.DecodeString(compact[dot+1:])
	if err != nil {
		t.Fatalf("signature of %q: %v", compact, err)
	}
	return []byte(compact[:dot]), sig
}

// checkSigning signs the signing input of a verified example with key.
// Deterministic algorithms (HMAC, RSASSA-PKCS1-v1_5, Ed25519) must
// reproduce the published signature exactly; randomized ones (RSA-PSS,
// ECDSA) must produce a signature that verifies.
func checkSigning(t *testing.T, key *Key, compact string) {
	t.Helper()
	input, want := splitSig(t, compact)
	got, err := key.signAppend(nil, input)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	switch key.info.family {
	case famHMAC, famRSA, famEdDSA:
		if !bytes.Equal(got, want) {
			t.Errorf("signature:\n got %s\nwant %s", b64.EncodeToString(got), b64.EncodeToString(want))
		}
	default:
		if err := verifier(key).verify(input, got); err != nil {
			t.Errorf("own signature does not verify: %v", err)
		}
	}
}

// tamper returns compact with its payload replaced, keeping the header
// and signature.
func tamper(compact string) string {
	parts := strings.SplitN(compact, ".", 3)
	return parts[0] + "." + b64.EncodeToString([]byte("tampered payload")) + "." + parts[2]
}

type rfc7515Example struct {
	Section       string          `json:"section"`
	Title         string          `json:"title"`
	Alg           Algorithm       `json:"alg"`
	Deterministic bool            `json:"deterministic"`
	Reject        bool            `json:"reject"`
	JWK           json.RawMessage `json:"jwk"`
	Compact       string          `json:"compact"`
	Header        string          `json:"header"`
	Payload       string          `json:"payload"`
}

// TestRFC7515AppendixA verifies the examples of RFC 7515 Appendix A with
// their keys, reproduces the deterministic signatures, and rejects the
// unsecured JWS of A.5.
func TestRFC7515AppendixA(t *testing.T) {
	var doc struct {
		Examples []rfc7515Example `json:"examples"`
	}
	readJSON(t, filepath.Join("testdata", "rfc7515.json"), &doc)
	if len(doc.Examples) != 5 {
		t.Fatalf("got %d examples, want 5 (A.1 to A.5)", len(doc.Examples))
	}
	hs256, err := parseJWKAs(doc.Examples[0].JWK, HS256)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range doc.Examples {
		t.Run(ex.Section, func(t *testing.T) {
			if ex.Reject {
				checkUnsecured(t, ex.Compact, hs256)
				return
			}
			key, err := parseJWKAs(ex.JWK, ex.Alg)
			if err != nil {
				t.Fatalf("ParseJWK: %v", err)
			}
			m, err := Verify(ex.Compact, verifier(key))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if m.Header.Algorithm != ex.Alg || string(m.Payload) != ex.Payload {
				t.Errorf("got alg %s payload %q, want %s %q", m.Header.Algorithm, m.Payload, ex.Alg, ex.Payload)
			}
			if ex.Section == "A.1" && m.Header.Type != "JWT" {
				t.Errorf("got typ %q, want JWT", m.Header.Type)
			}
			if ex.Deterministic != (key.info.family != famECDSA) {
				t.Errorf("testdata marks %s deterministic=%v", ex.Alg, ex.Deterministic)
			}
			// The export recomputes the RSA CRT values, so this also
			// checks the copies of dp, dq and qi in testdata.
			var members map[string]any
			if err := json.Unmarshal(ex.JWK, &members); err != nil {
				t.Fatal(err)
			}
			priv, err := key.MarshalPrivateJWK()
			if err != nil {
				t.Fatal(err)
			}
			checkMembers(t, "MarshalPrivateJWK", priv, members, true)
			checkSigning(t, key, ex.Compact)
			if _, err := Verify(tamper(ex.Compact), verifier(key)); !errors.Is(err, ErrSignatureInvalid) {
				t.Errorf("tampered payload: got %v, want ErrSignatureInvalid", err)
			}
			// A key for the same algorithm but another secret or key pair
			// must not verify the example.
			other, err := GenerateKey(ex.Alg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(ex.Compact, verifier(other)); !errors.Is(err, ErrSignatureInvalid) {
				t.Errorf("another %s key: got %v, want ErrSignatureInvalid", ex.Alg, err)
			}
		})
	}
}

// checkUnsecured checks that an "alg":"none" token is rejected whatever
// the key, in the form RFC 7515 A.5 gives (empty signature) and with a
// signature appended.
func checkUnsecured(t *testing.T, compact string, key *Key) {
	t.Helper()
	if _, err := Verify(compact, key); !errors.Is(err, ErrMalformed) {
		t.Errorf("Verify(A.5): got %v, want ErrMalformed (empty signature)", err)
	}
	if _, err := UnsafeParse(compact); !errors.Is(err, ErrMalformed) {
		t.Errorf("UnsafeParse(A.5): got %v, want ErrMalformed", err)
	}
	withSig := compact + "AAAA"
	for _, alg := range Algorithms() {
		k, err := GenerateKey(alg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(withSig, verifier(k)); !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("alg none with an %s key: got %v, want ErrUnsupportedAlgorithm", alg, err)
		}
	}
	if _, err := UnsafeParse(withSig); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("UnsafeParse(alg none): got %v, want ErrUnsupportedAlgorithm", err)
	}
	if Algorithm("none").Valid() {
		t.Error(`Algorithm("none").Valid() = true`)
	}
	if _, err := NewKey("none", []byte("0123456789abcdef0123456789abcdef")); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf(`NewKey("none"): got %v, want ErrUnsupportedAlgorithm`, err)
	}
	if _, err := GenerateKey("none", nil); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf(`GenerateKey("none"): got %v, want ErrUnsupportedAlgorithm`, err)
	}
	if _, err := ParseJWK([]byte(`{"kty":"oct","alg":"none","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}`)); err == nil {
		t.Error(`ParseJWK with "alg":"none" succeeded`)
	}
}

// TestRFC7638Thumbprint checks the example of RFC 7638 section 3.1, and
// that the thumbprint survives a JWK round trip.
func TestRFC7638Thumbprint(t *testing.T) {
	var doc struct {
		JWK        json.RawMessage `json:"jwk"`
		Thumbprint string          `json:"thumbprint"`
	}
	readJSON(t, filepath.Join("testdata", "rfc7638.json"), &doc)
	key, err := ParseJWK(doc.JWK)
	if err != nil {
		t.Fatal(err)
	}
	if got := key.Thumbprint(); got != doc.Thumbprint {
		t.Errorf("Thumbprint: got %s, want %s", got, doc.Thumbprint)
	}
	if got := key.KeyID(); got != "2011-04-29" {
		t.Errorf("KeyID: got %q, want 2011-04-29", got)
	}
	out, err := key.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseJWK(out)
	if err != nil {
		t.Fatalf("ParseJWK(MarshalJSON()): %v\n%s", err, out)
	}
	if d := sameKey(back, key); d != "" {
		t.Errorf("round trip: %s", d)
	}
	// Optional members do not enter the thumbprint (RFC 7638 section 3.2).
	bare, err := parseJWKAs(doc.JWK, PS512)
	if err != nil {
		t.Fatal(err)
	}
	if got := bare.Thumbprint(); got != doc.Thumbprint {
		t.Errorf("Thumbprint with alg PS512: got %s, want %s", got, doc.Thumbprint)
	}
}

// TestRFC7520Keys imports the JWKs of RFC 7520 section 3, public and
// private, and checks that exporting and re-importing them gives the same
// key with the same members.
func TestRFC7520Keys(t *testing.T) {
	dir := filepath.Join(vectorsDir(t), "ietf-jose-cookbook", "jwk")
	tests := []struct {
		file    string
		alg     Algorithm
		private bool
		public  string // file of the matching public key, if any
		wantErr error
	}{
		{file: "3_1.ec_public_key.json", alg: ES512},
		{file: "3_2.ec_private_key.json", alg: ES512, private: true, public: "3_1.ec_public_key.json"},
		{file: "3_3.rsa_public_key.json", alg: RS256},
		{file: "3_4.rsa_private_key.json", alg: RS256, private: true, public: "3_3.rsa_public_key.json"},
		{file: "3_5.symmetric_key_mac_computation.json", alg: HS256, private: true},
		// An encryption key ("use":"enc", "alg":"A256GCM") is refused.
		{file: "3_6.symmetric_key_encryption.json", wantErr: ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			key, err := ParseJWK(raw)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseJWK: got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJWK: %v", err)
			}
			var members map[string]any
			if err := json.Unmarshal(raw, &members); err != nil {
				t.Fatal(err)
			}
			if key.Algorithm() != tt.alg || key.KeyID() != members["kid"] || key.IsPrivate() != tt.private {
				t.Errorf("got alg %s kid %q private %v, want %s %q %v", key.Algorithm(), key.KeyID(), key.IsPrivate(), tt.alg, members["kid"], tt.private)
			}
			if tt.public != "" {
				pubRaw, err := os.ReadFile(filepath.Join(dir, tt.public))
				if err != nil {
					t.Fatal(err)
				}
				pub, err := ParseJWK(pubRaw)
				if err != nil {
					t.Fatal(err)
				}
				if d := sameKey(key.Public(), pub); d != "" {
					t.Errorf("Public() versus %s: %s", tt.public, d)
				}
			}
			if key.secret == nil {
				out, err := key.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				checkMembers(t, "MarshalJSON", out, members, false)
				back, err := ParseJWK(out)
				if err != nil {
					t.Fatalf("ParseJWK(MarshalJSON()): %v", err)
				}
				if d := sameKey(back, verifier(key)); d != "" {
					t.Errorf("public round trip: %s", d)
				}
			} else if _, err := key.MarshalJSON(); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("MarshalJSON of an HMAC key: got %v, want ErrInvalidKey", err)
			}
			if !tt.private {
				if _, err := key.MarshalPrivateJWK(); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("MarshalPrivateJWK of a public key: got %v, want ErrInvalidKey", err)
				}
				return
			}
			out, err := key.MarshalPrivateJWK()
			if err != nil {
				t.Fatal(err)
			}
			checkMembers(t, "MarshalPrivateJWK", out, members, true)
			back, err := ParseJWK(out)
			if err != nil {
				t.Fatalf("ParseJWK(MarshalPrivateJWK()): %v", err)
			}
			if d := sameKey(back, key); d != "" {
				t.Errorf("private round trip: %s", d)
			}
		})
	}
}

// checkMembers checks that every key member of want ("kty", "crv", "n",
// "e", "x", "y", and with private the private ones) appears in the
// exported JWK out with the same value, that a public export holds no
// private member, and that "use" is "sig".
func checkMembers(t *testing.T, what string, out []byte, want map[string]any, private bool) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
	names := []string{"kty", "crv", "n", "e", "x", "y", "kid", "use"}
	privateNames := []string{"d", "p", "q", "dp", "dq", "qi", "k"}
	if private {
		names = append(names, privateNames...)
	} else {
		for _, n := range privateNames {
			if _, ok := got[n]; ok {
				t.Errorf("%s: public JWK has private member %q", what, n)
			}
		}
	}
	for _, n := range names {
		if w, ok := want[n]; ok && got[n] != w {
			t.Errorf("%s: member %q is %v, want %v", what, n, got[n], w)
		}
	}
}

// cookbookCase is one example in the format of ietf-jose/cookbook, also
// used (with "deterministic" for "reproducible") by panva/jose.
type cookbookCase struct {
	Title string `json:"title"`
	Input struct {
		Payload string          `json:"payload"`
		Key     json.RawMessage `json:"key"`
		Alg     json.RawMessage `json:"alg"` // a string, or an array for several signatures
	} `json:"input"`
	Output struct {
		Compact  string          `json:"compact"`
		JSON     json.RawMessage `json:"json"`
		JSONFlat json.RawMessage `json:"json_flat"`
	} `json:"output"`
}

// Outcomes of checkCookbookCase.
const (
	outVerified      = "verified"
	outVerifiedFlat  = "verified (compact form of the flattened JSON)"
	outDetached      = "rejected: detached payload"
	outNoProtected   = "rejected: no protected header"
	outCritical      = "rejected: b64/crit"
	outUnsupported   = "rejected: unsupported algorithm"
	outJSONOnly      = "rejected: JSON serialization only"
	outRejectedOther = "rejected: other"
)

// checkCookbookCase runs one cookbook example and reports its outcome.
// The JSON serializations must be refused with ErrJSONSerialization. The
// compact form (given, or built from the flattened JSON serialization
// when it has a protected header, dropping any unprotected one) must
// verify with every key in keys and have the input payload, unless it
// uses an extension ("b64", "crit": ErrCritical), an algorithm the
// package does not implement (ErrUnsupportedAlgorithm), a detached
// payload (the empty payload does not match the signature) or has no
// protected header (ErrMalformed).
func checkCookbookCase(t *testing.T, c cookbookCase, keys ...*Key) string {
	t.Helper()
	anyKey, err := GenerateKey(HS256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		anyKey = keys[0]
	}
	for name, raw := range map[string]json.RawMessage{"json": c.Output.JSON, "json_flat": c.Output.JSONFlat} {
		if raw == nil {
			continue
		}
		if _, err := Verify(string(raw), anyKey); !errors.Is(err, ErrJSONSerialization) {
			t.Errorf("%s serialization: got %v, want ErrJSONSerialization", name, err)
		}
	}
	var alg Algorithm
	if err := json.Unmarshal(c.Input.Alg, &alg); err != nil {
		return outJSONOnly // several signatures exist only in the general JSON serialization
	}
	compact, out := c.Output.Compact, outVerified
	if compact == "" {
		var flat struct {
			Protected, Payload, Signature string
		}
		if err := json.Unmarshal(c.Output.JSONFlat, &flat); err != nil || flat.Signature == "" {
			t.Fatalf("no compact form and no usable json_flat: %v", err)
		}
		compact, out = flat.Protected+"."+flat.Payload+"."+flat.Signature, outVerifiedFlat
	}
	_, err = Verify(compact, anyKey)
	hdr := compact[:strings.IndexByte(compact, '.')]
	rawHdr, _ := b64.DecodeString(hdr)
	var h map[string]any
	_ = json.Unmarshal(rawHdr, &h)
	_, hasB64 := h["b64"]
	_, hasCrit := h["crit"]
	switch {
	case !alg.Valid():
		if !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("alg %s: got %v, want ErrUnsupportedAlgorithm", alg, err)
		}
		if _, err := parseJWKAs(c.Input.Key, alg); !errors.Is(err, ErrUnsupportedKey) {
			t.Errorf("ParseJWK with alg %s: got %v, want ErrUnsupportedKey", alg, err)
		}
		return outUnsupported
	case hdr == "":
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("no protected header: got %v, want ErrMalformed", err)
		}
		return outNoProtected
	case hasB64 || hasCrit:
		if !errors.Is(err, ErrCritical) {
			t.Errorf("header %s: got %v, want ErrCritical", rawHdr, err)
		}
		return outCritical
	}
	if len(keys) == 0 {
		t.Fatal("no keys given")
	}
	parts := strings.Split(compact, ".")
	if parts[1] == "" {
		// Detached content (RFC 7515 Appendix F) is not supported: the
		// empty payload is verified as such, and does not match.
		for _, k := range keys {
			if _, err := Verify(compact, verifier(k)); !errors.Is(err, ErrSignatureInvalid) {
				t.Errorf("detached payload: got %v, want ErrSignatureInvalid", err)
			}
		}
		// Re-attached, the signature verifies.
		compact = parts[0] + "." + b64.EncodeToString([]byte(c.Input.Payload)) + "." + parts[2]
		out = outDetached
	}
	for _, k := range keys {
		m, err := Verify(compact, verifier(k))
		if err != nil {
			t.Errorf("Verify with key %q: %v", k.KeyID(), err)
			return outRejectedOther
		}
		if m.Header.Algorithm != alg || string(m.Payload) != c.Input.Payload {
			t.Errorf("got alg %s payload %q, want %s %q", m.Header.Algorithm, m.Payload, alg, c.Input.Payload)
		}
		if kid, _ := h["kid"].(string); m.Header.KeyID != kid {
			t.Errorf("got kid %q, want %q", m.Header.KeyID, kid)
		}
		if k.IsPrivate() {
			checkSigning(t, k, compact)
		}
		if _, err := Verify(tamper(compact), verifier(k)); !errors.Is(err, ErrSignatureInvalid) {
			t.Errorf("tampered payload: got %v, want ErrSignatureInvalid", err)
		}
	}
	return out
}

// TestRFC7520Signatures runs the JWS examples of RFC 7520 section 4 with
// the keys given in each example and with those of section 3.
func TestRFC7520Signatures(t *testing.T) {
	root := filepath.Join(vectorsDir(t), "ietf-jose-cookbook")
	tests := []struct {
		file    string
		keyFile string // the section 3 key the example uses
		want    string
	}{
		{"4_1.rsa_v15_signature.json", "3_4.rsa_private_key.json", outVerified},
		{"4_2.rsa-pss_signature.json", "3_4.rsa_private_key.json", outVerified},
		{"4_3.ecdsa_signature.json", "3_2.ec_private_key.json", outVerified},
		{"4_4.hmac-sha2_integrity_protection.json", "3_5.symmetric_key_mac_computation.json", outVerified},
		// Compact form with an empty payload: detached content is not
		// supported, so it fails as a signature over the empty payload.
		{"4_5.signature_with_detached_content.json", "3_5.symmetric_key_mac_computation.json", outDetached},
		// JSON only: the "kid" is in the unprotected header. Its compact
		// equivalent (protected header, payload, signature) verifies.
		{"4_6.protecting_specific_header_fields.json", "3_5.symmetric_key_mac_computation.json", outVerifiedFlat},
		// JSON only, with no protected header at all: no compact form.
		{"4_7.protecting_content_only.json", "3_5.symmetric_key_mac_computation.json", outNoProtected},
		// Three signatures: only the general JSON serialization can carry them.
		{"4_8.multiple_signatures.json", "", outJSONOnly},
	}
	var verified int
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var c cookbookCase
			readJSON(t, filepath.Join(root, "jws", tt.file), &c)
			var keys []*Key
			if tt.keyFile != "" {
				var alg Algorithm
				if err := json.Unmarshal(c.Input.Alg, &alg); err != nil {
					t.Fatal(err)
				}
				own, err := parseJWKAs(c.Input.Key, alg)
				if err != nil {
					t.Fatalf("ParseJWK(input.key): %v", err)
				}
				raw, err := os.ReadFile(filepath.Join(root, "jwk", tt.keyFile))
				if err != nil {
					t.Fatal(err)
				}
				sec3, err := parseJWKAs(raw, alg)
				if err != nil {
					t.Fatalf("ParseJWK(%s): %v", tt.keyFile, err)
				}
				keys = []*Key{own, sec3}
			}
			if got := checkCookbookCase(t, c, keys...); got != tt.want {
				t.Errorf("outcome %q, want %q", got, tt.want)
			} else if strings.HasPrefix(got, outVerified) {
				verified++
			}
		})
	}
	t.Logf("RFC 7520 section 4: %d examples, %d verified, %d rejected as expected", len(tests), verified, len(tests)-verified)
}

// TestRFC8037Ed25519 runs the EdDSA example of RFC 8037 Appendix A.4.
func TestRFC8037Ed25519(t *testing.T) {
	var c cookbookCase
	readJSON(t, filepath.Join(vectorsDir(t), "ietf-jose-cookbook", "curve25519", "jws.json"), &c)
	key, err := parseJWKAs(c.Input.Key, EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if got := checkCookbookCase(t, c, key); got != outVerified {
		t.Errorf("outcome %q, want %q", got, outVerified)
	}
	// RFC 8037 Appendix A.3 gives the key's thumbprint.
	if got, want := key.Thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("Thumbprint: got %s, want %s", got, want)
	}
}

// TestRFC7797Unencoded checks that the "b64":false examples of RFC 7797
// are rejected with ErrCritical: the payload is not base64url-encoded, so
// verifying them as ordinary JWS would check the wrong bytes.
func TestRFC7797Unencoded(t *testing.T) {
	dir := filepath.Join(vectorsDir(t), "ietf-jose-cookbook", "rfc7797")
	for _, file := range []string{"hmac-sha2_b64_false.json", "4.2.hmac-sha2_b64_false.json"} {
		t.Run(file, func(t *testing.T) {
			var c cookbookCase
			readJSON(t, filepath.Join(dir, file), &c)
			key, err := parseJWKAs(c.Input.Key, HS256)
			if err != nil {
				t.Fatal(err)
			}
			if got := checkCookbookCase(t, c, key); got != outCritical {
				t.Errorf("outcome %q, want %q", got, outCritical)
			}
			if c.Output.Compact != "" {
				if _, err := UnsafeParse(c.Output.Compact); !errors.Is(err, ErrCritical) {
					t.Errorf("UnsafeParse: got %v, want ErrCritical", err)
				}
			}
		})
	}
}

// TestPanvaCookbook runs panva/jose's copy of the RFC 7520, RFC 8037 and
// RFC 7797 examples, and its ML-DSA examples, which this package does not
// implement and must refuse.
func TestPanvaCookbook(t *testing.T) {
	var cases []cookbookCase
	readJSON(t, filepath.Join(vectorsDir(t), "panva-jose", "cookbook-jws.json"), &cases)
	if len(cases) == 0 {
		t.Fatal("no examples")
	}
	counts := map[string]int{}
	for _, c := range cases {
		name := c.Title
		if i := strings.LastIndex(name, " - "); i >= 0 {
			name = name[i+len(" - "):]
		}
		t.Run(name, func(t *testing.T) {
			var alg Algorithm
			_ = json.Unmarshal(c.Input.Alg, &alg)
			var keys []*Key
			if alg.Valid() {
				key, err := parseJWKAs(c.Input.Key, alg)
				if err != nil {
					t.Fatalf("ParseJWK: %v", err)
				}
				keys = append(keys, key)
			}
			out := checkCookbookCase(t, c, keys...)
			if out == outRejectedOther {
				t.Errorf("unexpected outcome %q", out)
			}
			counts[out]++
		})
	}
	t.Logf("panva-jose cookbook-jws.json: %d examples: %v", len(cases), counts)
}
