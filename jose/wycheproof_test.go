package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Wycheproof (github.com/C2SP/wycheproof) primitive test vectors, run
// through the verification path that compact JWS verification uses,
// (*Key).verify, with the vector's "msg" as the JWS signing input.

type wycheproofFile struct {
	Algorithm     string            `json:"algorithm"`
	NumberOfTests int               `json:"numberOfTests"`
	TestGroups    []wycheproofGroup `json:"testGroups"`
}

type wycheproofGroup struct {
	Type      string `json:"type"`
	KeySize   int    `json:"keySize"` // HMAC: bits of each test's key
	TagSize   int    `json:"tagSize"` // HMAC: bits of the tag
	SHA       string `json:"sha"`
	MGF       string `json:"mgf"`
	MGFSHA    string `json:"mgfSha"`
	SLen      int    `json:"sLen"`
	PublicKey struct {
		Curve          string `json:"curve"`
		Uncompressed   string `json:"uncompressed"`   // ECDSA
		PK             string `json:"pk"`             // Ed25519
		Modulus        string `json:"modulus"`        // RSA
		PublicExponent string `json:"publicExponent"` // RSA
	} `json:"publicKey"`
	PublicKeyJWK json.RawMessage  `json:"publicKeyJwk"`
	KeyJWK       json.RawMessage  `json:"keyJwk"` // the RSA PKCS #1 v1.5 files' name for it
	Tests        []wycheproofTest `json:"tests"`
}

type wycheproofTest struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Key     string   `json:"key"` // HMAC
	Msg     string   `json:"msg"`
	Sig     string   `json:"sig"`
	Tag     string   `json:"tag"` // HMAC
	Result  string   `json:"result"`
}

// wycheproofFiles maps each vector file to the JWS algorithm it tests.
var wycheproofFiles = map[string]Algorithm{
	"ecdsa_secp256r1_sha256_p1363_test.json": ES256,
	"ecdsa_secp384r1_sha384_p1363_test.json": ES384,
	"ecdsa_secp521r1_sha512_p1363_test.json": ES512,
	"ed25519_test.json":                      EdDSA,
	"hmac_sha256_test.json":                  HS256,
	"hmac_sha384_test.json":                  HS384,
	"hmac_sha512_test.json":                  HS512,
	"rsa_pss_2048_sha256_mgf1_32_test.json":  PS256,
	"rsa_pss_2048_sha384_mgf1_48_test.json":  PS384,
	"rsa_pss_4096_sha512_mgf1_64_test.json":  PS512,
	"rsa_signature_2048_sha256_test.json":    RS256,
	"rsa_signature_2048_sha384_test.json":    RS384,
	"rsa_signature_2048_sha512_test.json":    RS512,
}

// wycheproofCounts is the tally for one file.
type wycheproofCounts struct {
	total, run, valid, invalid, acceptable, acceptedAcceptable int
	skipped, refused                                           int
	why                                                        map[string]int // skipped or refused, by reason
}

func (c *wycheproofCounts) skip(n int, why string) {
	c.skipped += n
	c.why[why] += n
}

func TestWycheproof(t *testing.T) {
	dir := filepath.Join(vectorsDir(t), "wycheproof", "testvectors_v1")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		alg, ok := wycheproofFiles[e.Name()]
		if !ok {
			t.Errorf("%s: no JWS algorithm known for this file; add it to wycheproofFiles", e.Name())
			continue
		}
		seen++
		t.Run(strings.TrimSuffix(e.Name(), ".json"), func(t *testing.T) {
			var f wycheproofFile
			readJSON(t, filepath.Join(dir, e.Name()), &f)
			c := runWycheproof(t, alg, &f)
			if c.total != f.NumberOfTests {
				t.Errorf("counted %d tests, file says %d", c.total, f.NumberOfTests)
			}
			if c.run == 0 {
				t.Errorf("no test ran")
			}
			t.Logf("%s (%s): %d tests: %d run (%d valid, %d invalid, %d acceptable of which %d accepted), %d skipped, %d refused on key import %v",
				e.Name(), alg, c.total, c.run, c.valid, c.invalid, c.acceptable, c.acceptedAcceptable, c.skipped, c.refused, c.why)
		})
	}
	if seen != len(wycheproofFiles) {
		t.Errorf("found %d of the %d expected files in %s", seen, len(wycheproofFiles), dir)
	}
}

func runWycheproof(t *testing.T, alg Algorithm, f *wycheproofFile) wycheproofCounts {
	c := wycheproofCounts{why: map[string]int{}}
	info := alg.info()
	hashName := map[crypto.Hash]string{crypto.SHA256: "SHA-256", crypto.SHA384: "SHA-384", crypto.SHA512: "SHA-512"}[info.hash]
	for gi, g := range f.TestGroups {
		c.total += len(g.Tests)
		// Only the parameters JWS uses (RFC 7518 section 3): the
		// algorithm's own hash, for PSS with MGF1 over the same hash and
		// a salt as long as the hash; for HMAC an untruncated tag.
		switch info.family {
		case famHMAC:
			hashBits := 8 * info.size
			if g.TagSize != hashBits {
				// JWS never truncates a tag: a truncated one, even one
				// Wycheproof calls valid, must not verify.
				for _, tc := range g.Tests {
					if k, err := NewHMACKey(alg, unhex(t, tc.Key)); err == nil && k.verify(unhex(t, tc.Msg), unhex(t, tc.Tag)) == nil {
						t.Errorf("tcId %d: %d-bit truncated tag verified", tc.TcID, g.TagSize)
					}
				}
				c.skip(len(g.Tests), "truncated tag")
				continue
			}
			if g.KeySize < hashBits {
				// Keys shorter than the hash are refused (RFC 7518
				// section 3.2); check that each one is.
				for _, tc := range g.Tests {
					if _, err := NewHMACKey(alg, unhex(t, tc.Key)); !errors.Is(err, ErrInvalidKey) {
						t.Errorf("tcId %d: NewHMACKey with a %d-bit key: got %v, want ErrInvalidKey", tc.TcID, g.KeySize, err)
					}
				}
				c.refused += len(g.Tests)
				c.why["key shorter than hash"] += len(g.Tests)
				t.Logf("group %d: %d tests with %d-bit keys refused on import (ErrInvalidKey)", gi, len(g.Tests), g.KeySize)
				continue
			}
		case famPSS:
			if g.SHA != hashName || g.MGF != "MGF1" || g.MGFSHA != hashName || g.SLen != info.hash.Size() {
				c.skip(len(g.Tests), "PSS parameters other than JWS's")
				continue
			}
		default:
			if info.hash != 0 && g.SHA != hashName {
				c.skip(len(g.Tests), "hash other than "+hashName)
				continue
			}
		}

		var key *Key
		if info.family != famHMAC {
			pub := wycheproofPublicKey(t, alg, &g)
			var err error
			if key, err = NewKey(alg, pub); err != nil {
				if !errors.Is(err, ErrInvalidKey) {
					t.Errorf("group %d: NewKey refused the key for an undocumented reason: %v", gi, err)
				}
				t.Logf("group %d: key refused on import, %d tests not run: %v", gi, len(g.Tests), err)
				c.refused += len(g.Tests)
				c.why["key refused"] += len(g.Tests)
				continue
			}
			checkWycheproofJWK(t, gi, alg, &g, key)
		}

		for _, tc := range g.Tests {
			msg, sig := unhex(t, tc.Msg), unhex(t, tc.Sig)
			k := key
			if info.family == famHMAC {
				var err error
				if k, err = NewHMACKey(alg, unhex(t, tc.Key)); err != nil {
					t.Errorf("tcId %d: NewHMACKey: %v", tc.TcID, err)
					continue
				}
				sig = unhex(t, tc.Tag)
			}
			err := k.verify(msg, sig)
			if err != nil && !errors.Is(err, ErrSignatureInvalid) {
				t.Errorf("tcId %d: verify returned %v, which is not ErrSignatureInvalid", tc.TcID, err)
			}
			c.run++
			switch tc.Result {
			case "valid":
				c.valid++
				if err != nil {
					t.Errorf("tcId %d (%s, %v): valid signature rejected: %v", tc.TcID, tc.Comment, tc.Flags, err)
				}
			case "invalid":
				c.invalid++
				if err == nil {
					t.Errorf("tcId %d (%s, %v): invalid signature accepted", tc.TcID, tc.Comment, tc.Flags)
				}
			case "acceptable":
				c.acceptable++
				if err == nil {
					c.acceptedAcceptable++
				}
				t.Logf("tcId %d (%s, %v): acceptable, verify returned %v", tc.TcID, tc.Comment, tc.Flags, err)
			default:
				t.Errorf("tcId %d: unknown result %q", tc.TcID, tc.Result)
			}
		}
	}
	return c
}

// wycheproofPublicKey decodes a group's public key with the standard
// library alone, so that the checks made are those of NewKey.
func wycheproofPublicKey(t *testing.T, alg Algorithm, g *wycheproofGroup) crypto.PublicKey {
	t.Helper()
	info := alg.info()
	switch info.family {
	case famECDSA:
		pub, err := ecdsa.ParseUncompressedPublicKey(info.curve, unhex(t, g.PublicKey.Uncompressed))
		if err != nil {
			t.Fatalf("public key %s on %s: %v", g.PublicKey.Uncompressed, g.PublicKey.Curve, err)
		}
		return pub
	case famEdDSA:
		return ed25519.PublicKey(unhex(t, g.PublicKey.PK))
	case famRSA, famPSS:
		e := new(big.Int).SetBytes(unhex(t, g.PublicKey.PublicExponent))
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			t.Fatalf("RSA exponent %s too large for rsa.PublicKey", e)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(unhex(t, g.PublicKey.Modulus)), E: int(e.Int64())}
	}
	t.Fatalf("no public key for %s", alg)
	return nil
}

// checkWycheproofJWK imports the group's JWK, when it has one, and checks
// it is the same key as the one built with NewKey.
func checkWycheproofJWK(t *testing.T, gi int, alg Algorithm, g *wycheproofGroup, key *Key) {
	t.Helper()
	raw := g.PublicKeyJWK
	if raw == nil {
		raw = g.KeyJWK
	}
	if raw == nil {
		return
	}
	fromJWK, err := parseJWKAs(raw, alg)
	if err != nil {
		t.Errorf("group %d: ParseJWK: %v", gi, err)
		return
	}
	if fromJWK.Thumbprint() != key.Thumbprint() || !fromJWK.pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.pub) {
		t.Errorf("group %d: the JWK and the raw public key differ", gi)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// TestKeyImportRefusals checks that keys failing the import checks are
// refused with ErrInvalidKey, the documented reason, on every import path
// that can express them: the RSA and EC keys of the Wycheproof vectors
// made too short, given a bad exponent or moved off their curve.
func TestKeyImportRefusals(t *testing.T) {
	var f wycheproofFile
	readJSON(t, filepath.Join(vectorsDir(t), "wycheproof", "testvectors_v1", "rsa_signature_2048_sha256_test.json"), &f)
	n := new(big.Int).SetBytes(unhex(t, f.TestGroups[0].PublicKey.Modulus))
	short := new(big.Int).Rsh(n, 1024+1) // a 1023-bit modulus
	var ec wycheproofFile
	readJSON(t, filepath.Join(vectorsDir(t), "wycheproof", "testvectors_v1", "ecdsa_secp256r1_sha256_p1363_test.json"), &ec)
	p256, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), unhex(t, ec.TestGroups[0].PublicKey.Uncompressed))
	if err != nil {
		t.Fatal(err)
	}
	var p256JWK map[string]any
	if err := json.Unmarshal(ec.TestGroups[0].PublicKeyJWK, &p256JWK); err != nil {
		t.Fatal(err)
	}
	y := unhex(t, ec.TestGroups[0].PublicKey.Uncompressed)[33:]
	y[len(y)-1] ^= 1 // (x, y^1) is not on the curve
	offCurve := with(p256JWK, "y", b64.EncodeToString(y))

	tests := []struct {
		name string
		alg  Algorithm
		key  any    // for NewKey
		jwk  []byte // for ParseJWK, when key is nil
	}{
		{name: "RSA 1023-bit modulus", alg: RS256, key: &rsa.PublicKey{N: short, E: 65537}},
		{name: "RSA-PSS 1023-bit modulus", alg: PS256, key: &rsa.PublicKey{N: short, E: 65537}},
		{name: "RSA exponent 1", alg: RS256, key: &rsa.PublicKey{N: n, E: 1}},
		{name: "RSA even exponent", alg: RS256, key: &rsa.PublicKey{N: n, E: 65536}},
		{name: "RSA exponent 2^31", alg: RS256, jwk: mustJSON(t, map[string]any{"kty": "RSA", "n": b64.EncodeToString(n.Bytes()), "e": "gAAAAA"})},
		{name: "RSA 1023-bit JWK", alg: RS256, jwk: mustJSON(t, map[string]any{"kty": "RSA", "n": b64.EncodeToString(short.Bytes()), "e": "AQAB"})},
		{name: "P-256 key for ES384", alg: ES384, key: p256},
		{name: "P-256 JWK for ES512", alg: ES512, jwk: mustJSON(t, with(p256JWK, "alg", "ES512"))},
		{name: "P-256 point off the curve", alg: ES256, jwk: mustJSON(t, offCurve)},
		{name: "EC key for RS256", alg: RS256, key: p256},
		{name: "Ed25519 key of 31 bytes", alg: EdDSA, key: ed25519.PublicKey(make([]byte, 31))},
		{name: "HS256 secret of 31 bytes", alg: HS256, key: make([]byte, 31)},
		{name: "HS384 secret of 47 bytes", alg: HS384, key: make([]byte, 47)},
		{name: "HS512 secret of 63 bytes", alg: HS512, key: make([]byte, 63)},
		{name: "oct JWK of 31 bytes", alg: HS256, jwk: []byte(`{"kty":"oct","alg":"HS256","k":"` + b64.EncodeToString(make([]byte, 31)) + `"}`)},
		{name: "JWK with use enc", alg: ES256, jwk: mustJSON(t, with(p256JWK, "use", "enc"))},
		{name: "JWK with key_ops sign only", alg: ES256, jwk: mustJSON(t, with(p256JWK, "key_ops", []string{"sign"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.jwk != nil {
				_, err = ParseJWK(tt.jwk)
			} else {
				_, err = NewKey(tt.alg, tt.key)
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("got %v, want ErrInvalidKey", err)
			}
		})
	}
}

// with returns a copy of m with name set to v.
func with(m map[string]any, name string, v any) map[string]any {
	c := maps.Clone(m)
	c[name] = v
	return c
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
