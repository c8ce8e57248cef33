package dpop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
)

var (
	testNow = time.Unix(1_800_000_000, 0)
	testURL = "https://api.example.com/orders"
)

func mustKey(t testing.TB, alg jose.Algorithm) *jose.Key {
	t.Helper()
	k, err := jose.GenerateKey(alg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicJWK(t testing.TB, k *jose.Key) map[string]any {
	t.Helper()
	b, err := k.Public().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// forge signs a proof with key under any header and claims, as an
// attacker would.
func forge(t testing.TB, key *jose.Key, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	s, err := jose.SignWithHeader(key, h, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodParts(t testing.TB, key *jose.Key) (map[string]any, map[string]any) {
	return map[string]any{"typ": "dpop+jwt", "alg": string(key.Algorithm()), "jwk": publicJWK(t, key)},
		map[string]any{"jti": "id-" + time.Now().String(), "htm": "GET", "htu": testURL, "iat": testNow.Unix()}
}

func newChecker() *dpop.Checker {
	return &dpop.Checker{Now: func() time.Time { return testNow }, Replay: dpop.NewReplayCache(1000)}
}

func TestCheckAccepts(t *testing.T) {
	for _, alg := range []jose.Algorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256, jose.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			key := mustKey(t, alg)
			p, err := dpop.NewProver(key)
			if err != nil {
				t.Fatal(err)
			}
			p.Now = func() time.Time { return testNow }
			proof, err := p.Proof("GET", "HTTPS://API.example.com:443/orders?x=1#f", "the-token", "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := newChecker().Check(proof, dpop.Request{Method: "GET", URL: testURL + "?page=2", AccessToken: "the-token"})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got.Thumbprint != key.Thumbprint() {
				t.Errorf("got thumbprint %q, want %q", got.Thumbprint, key.Thumbprint())
			}
			if !got.IssuedAt.Equal(testNow) || got.ID == "" {
				t.Errorf("got iat %v id %q", got.IssuedAt, got.ID)
			}
		})
	}
}

// TestCheckRFC9449Example checks the proof of RFC 9449 figure 2 and the
// thumbprint of its key that figure 9 publishes.
func TestCheckRFC9449Example(t *testing.T) {
	const proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	c := &dpop.Checker{Now: func() time.Time { return time.Unix(1562262616, 0) }}
	got, err := c.Check(proof, dpop.Request{Method: "POST", URL: "https://server.example.com/token"})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if want := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"; got.Thumbprint != want {
		t.Errorf("got jkt %q, want %q", got.Thumbprint, want)
	}
	if got.ID != "-BwC3ESc6acc2lTc" {
		t.Errorf("got jti %q", got.ID)
	}
	// Section 7.1's access token and the ath of its proof.
	if got, want := dpop.AccessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"; got != want {
		t.Errorf("got ath %q, want %q", got, want)
	}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestCheckRefuses sends the proofs an attacker would: each must fail
// with ErrInvalidProof.
func TestCheckRefuses(t *testing.T) {
	key := mustKey(t, jose.ES256)
	other := mustKey(t, jose.ES256)
	hmacKey, err := jose.NewHMACKey(jose.HS256, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	req := dpop.Request{Method: "GET", URL: testURL}
	withToken := dpop.Request{Method: "GET", URL: testURL, AccessToken: "tok"}
	privJWK := func() map[string]any {
		b, _ := key.MarshalPrivateJWK()
		var m map[string]any
		json.Unmarshal(b, &m)
		return m
	}
	tests := []struct {
		name  string
		proof func() string
		req   dpop.Request
	}{
		{"empty", func() string { return "" }, req},
		{"not a JWS", func() string { return "abc" }, req},
		{"too large", func() string {
			h, c := goodParts(t, key)
			c["pad"] = strings.Repeat("x", 5000)
			return forge(t, key, h, c)
		}, req},
		{"typ JWT", func() string {
			h, c := goodParts(t, key)
			h["typ"] = "JWT"
			return forge(t, key, h, c)
		}, req},
		{"no typ", func() string {
			h, c := goodParts(t, key)
			delete(h, "typ")
			return forge(t, key, h, c)
		}, req},
		{"alg none", func() string {
			h, c := goodParts(t, key)
			h["alg"] = "none"
			return b64(h) + "." + b64(c) + "."
		}, req},
		{"alg HS256 with the jwk's bytes as secret", func() string {
			h, c := goodParts(t, key)
			h["alg"] = "HS256"
			h["jwk"] = map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(make([]byte, 32))}
			return forge(t, hmacKey, h, c)
		}, req},
		{"alg not in the allowed list", func() string {
			k := mustKey(t, jose.ES384)
			h, c := goodParts(t, k)
			return forge(t, k, h, c)
		}, dpop.Request{Method: "GET", URL: testURL}},
		{"no jwk", func() string {
			h, c := goodParts(t, key)
			delete(h, "jwk")
			return forge(t, key, h, c)
		}, req},
		{"jwk with private d", func() string {
			h, c := goodParts(t, key)
			h["jwk"] = privJWK()
			return forge(t, key, h, c)
		}, req},
		{"jwk a string", func() string {
			h, c := goodParts(t, key)
			h["jwk"] = "key"
			return forge(t, key, h, c)
		}, req},
		{"jwk of another key", func() string {
			h, c := goodParts(t, key)
			h["jwk"] = publicJWK(t, other)
			return forge(t, key, h, c)
		}, req},
		{"jwk alg differs from header alg", func() string {
			h, c := goodParts(t, key)
			h["jwk"].(map[string]any)["alg"] = "ES384"
			return forge(t, key, h, c)
		}, req},
		{"signature altered", func() string {
			h, c := goodParts(t, key)
			s := forge(t, key, h, c)
			i := strings.LastIndexByte(s, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(s[i+1:])
			sig[5] ^= 1
			return s[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
		}, req},
		{"claims altered", func() string {
			h, c := goodParts(t, key)
			s := forge(t, key, h, c)
			parts := strings.Split(s, ".")
			c["htm"] = "POST"
			return parts[0] + "." + b64(c) + "." + parts[2]
		}, dpop.Request{Method: "POST", URL: testURL}},
		{"htm differs", func() string {
			h, c := goodParts(t, key)
			c["htm"] = "POST"
			return forge(t, key, h, c)
		}, req},
		{"htm lower case", func() string {
			h, c := goodParts(t, key)
			c["htm"] = "get"
			return forge(t, key, h, c)
		}, req},
		{"htu another path", func() string {
			h, c := goodParts(t, key)
			c["htu"] = "https://api.example.com/admin"
			return forge(t, key, h, c)
		}, req},
		{"htu another host", func() string {
			h, c := goodParts(t, key)
			c["htu"] = "https://evil.example.com/orders"
			return forge(t, key, h, c)
		}, req},
		{"htu http instead of https", func() string {
			h, c := goodParts(t, key)
			c["htu"] = "http://api.example.com/orders"
			return forge(t, key, h, c)
		}, req},
		{"htu another port", func() string {
			h, c := goodParts(t, key)
			c["htu"] = "https://api.example.com:8443/orders"
			return forge(t, key, h, c)
		}, req},
		{"htu relative", func() string {
			h, c := goodParts(t, key)
			c["htu"] = "/orders"
			return forge(t, key, h, c)
		}, req},
		{"htu a number", func() string {
			h, c := goodParts(t, key)
			c["htu"] = 7
			return forge(t, key, h, c)
		}, req},
		{"no jti", func() string {
			h, c := goodParts(t, key)
			delete(c, "jti")
			return forge(t, key, h, c)
		}, req},
		{"jti too long", func() string {
			h, c := goodParts(t, key)
			c["jti"] = strings.Repeat("j", 300)
			return forge(t, key, h, c)
		}, req},
		{"no iat", func() string {
			h, c := goodParts(t, key)
			delete(c, "iat")
			return forge(t, key, h, c)
		}, req},
		{"iat too old", func() string {
			h, c := goodParts(t, key)
			c["iat"] = testNow.Add(-61 * time.Second).Unix()
			return forge(t, key, h, c)
		}, req},
		{"iat in the future", func() string {
			h, c := goodParts(t, key)
			c["iat"] = testNow.Add(61 * time.Second).Unix()
			return forge(t, key, h, c)
		}, req},
		{"iat a string", func() string {
			h, c := goodParts(t, key)
			c["iat"] = "1800000000"
			return forge(t, key, h, c)
		}, req},
		{"no ath with an access token", func() string {
			h, c := goodParts(t, key)
			return forge(t, key, h, c)
		}, withToken},
		{"ath of another token", func() string {
			h, c := goodParts(t, key)
			c["ath"] = dpop.AccessTokenHash("other")
			return forge(t, key, h, c)
		}, withToken},
		{"duplicate claim", func() string {
			h, _ := goodParts(t, key)
			hb, _ := json.Marshal(h)
			c := `{"jti":"a","htm":"GET","htm":"POST","htu":"` + testURL + `","iat":1800000000}`
			s, err := jose.SignWithHeader(key, hb, []byte(c))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, req},
		{"crit header", func() string {
			h, c := goodParts(t, key)
			s := forge(t, key, h, c)
			h["crit"] = []string{"exp"}
			return b64(h) + s[strings.IndexByte(s, '.'):]
		}, req},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChecker()
			c.Algorithms = []jose.Algorithm{jose.ES256, jose.HS256}
			_, err := c.Check(tt.proof(), tt.req)
			if !errors.Is(err, dpop.ErrInvalidProof) {
				t.Errorf("got %v, want ErrInvalidProof", err)
			}
		})
	}
}

func TestCheckRefusesReplay(t *testing.T) {
	key := mustKey(t, jose.ES256)
	h, c := goodParts(t, key)
	proof := forge(t, key, h, c)
	ch := newChecker()
	req := dpop.Request{Method: "GET", URL: testURL}
	if _, err := ch.Check(proof, req); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := ch.Check(proof, req); !errors.Is(err, dpop.ErrReplayed) || !errors.Is(err, dpop.ErrInvalidProof) {
		t.Errorf("replay: got %v, want ErrReplayed", err)
	}
	// Another proof with the same jti, freshly signed, is a replay too.
	c["iat"] = testNow.Unix() - 1
	if _, err := ch.Check(forge(t, key, h, c), req); !errors.Is(err, dpop.ErrReplayed) {
		t.Errorf("same jti: got %v, want ErrReplayed", err)
	}
}

// TestCheckInvalidProofDoesNotSpendID: a proof refused for another
// reason does not record its jti, so a flood of bad proofs cannot fill
// the cache or block the real proof.
func TestCheckInvalidProofDoesNotSpendID(t *testing.T) {
	key := mustKey(t, jose.ES256)
	h, c := goodParts(t, key)
	ch := newChecker()
	if _, err := ch.Check(forge(t, key, h, c), dpop.Request{Method: "POST", URL: testURL}); err == nil {
		t.Fatal("wrong method accepted")
	}
	if _, err := ch.Check(forge(t, key, h, c), dpop.Request{Method: "GET", URL: testURL}); err != nil {
		t.Errorf("got %v after a refused proof with the same jti", err)
	}
}

func TestCheckNonce(t *testing.T) {
	key := mustKey(t, jose.ES256)
	now := testNow
	nonces := &dpop.Nonces{Secret: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	ch := newChecker()
	ch.Nonces = nonces
	req := dpop.Request{Method: "GET", URL: testURL}
	h, c := goodParts(t, key)
	if _, err := ch.Check(forge(t, key, h, c), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Errorf("no nonce: got %v, want ErrUseNonce", err)
	}
	c["nonce"] = "made-up"
	if _, err := ch.Check(forge(t, key, h, c), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Errorf("made-up nonce: got %v, want ErrUseNonce", err)
	}
	c["nonce"] = nonces.Issue()
	if _, err := ch.Check(forge(t, key, h, c), req); err != nil {
		t.Errorf("fresh nonce: %v", err)
	}
	// Two periods later the nonce is stale.
	old := nonces.Issue()
	now = now.Add(2 * dpop.DefaultNoncePeriod)
	ch.Now = func() time.Time { return now }
	h, c = goodParts(t, key)
	c["iat"], c["nonce"] = now.Unix(), old
	if _, err := ch.Check(forge(t, key, h, c), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Errorf("stale nonce: got %v, want ErrUseNonce", err)
	}
	other := &dpop.Nonces{Secret: []byte("another secret of thirty-two by"), Now: func() time.Time { return now }}
	c["nonce"] = other.Issue()
	if _, err := ch.Check(forge(t, key, h, c), req); !errors.Is(err, dpop.ErrUseNonce) {
		t.Errorf("nonce of another secret: got %v, want ErrUseNonce", err)
	}
}

func TestNormalizeURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://Example.COM/a/b", "https://example.com/a/b"},
		{"HTTPS://example.com:443/a?q=1#f", "https://example.com/a"},
		{"http://example.com:80", "http://example.com/"},
		{"http://example.com:8080/x", "http://example.com:8080/x"},
		{"https://[::1]:443/x", "https://[::1]/x"},
		{"https://[::1]:8443/x", "https://[::1]:8443/x"},
		{"https://example.com/a%2fb", "https://example.com/a%2Fb"},
	}
	for _, tt := range tests {
		got, err := dpop.NormalizeURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "/relative", "ftp://example.com/", "https://user:pw@example.com/", "mailto:a@example.com", "https:///path"} {
		if got, err := dpop.NormalizeURL(bad); err == nil {
			t.Errorf("NormalizeURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestProverRefusesPublicAndHMACKeys(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := jose.NewKey(jose.ES256, &priv.PublicKey)
	hmacKey, _ := jose.NewHMACKey(jose.HS256, make([]byte, 32))
	for _, k := range []*jose.Key{nil, pub, hmacKey} {
		if _, err := dpop.NewProver(k); err == nil {
			t.Errorf("NewProver(%v) accepted", k)
		}
	}
}

// TestCheckComparesNormalisedURLs: an htu spelled differently from the
// request's URL is the same URL after normalisation (RFC 9449 section
// 4.3, step 9, RFC 3986 section 6).
func TestCheckComparesNormalisedURLs(t *testing.T) {
	key := mustKey(t, jose.ES256)
	for i, tc := range []struct{ htu, request string }{
		{"HTTPS://API.Example.COM:443/orders", "https://api.example.com/orders?x=1"},
		{"https://api.example.com/orders", "https://API.example.com:443/orders#frag"},
		{"http://api.example.com:80", "http://api.example.com/"},
		{"https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"},
	} {
		h, c := goodParts(t, key)
		c["htu"], c["jti"] = tc.htu, "n"+strconv.Itoa(i)
		if _, err := newChecker().Check(forge(t, key, h, c), dpop.Request{Method: "GET", URL: tc.request}); err != nil {
			t.Errorf("htu %q for %q: %v", tc.htu, tc.request, err)
		}
	}
}
