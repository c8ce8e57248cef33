package verifier

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
)

func newDPoPProver(t testing.TB, f *fixture) *dpop.Prover {
	t.Helper()
	p, err := dpop.GenerateProver(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Now = f.clock.now
	return p
}

func mustProof(t testing.TB, p *dpop.Prover, method, url, token string) string {
	t.Helper()
	proof, err := p.Proof(method, url, token, "")
	if err != nil {
		t.Fatal(err)
	}
	return proof
}

// TestDPoP sends a DPoP-bound token the ways a thief would: each is
// refused with a DPoP challenge; only the key holder's fresh proof for
// this request gets through.
func TestDPoP(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	key, thief := newDPoPProver(t, f), newDPoPProver(t, f)
	c := f.claims()
	c.Confirmation.JKT = key.Thumbprint()
	bound := f.sign(t, c)
	c.ID = "jti-2"
	c.Confirmation.JKT = ""
	unbound := f.sign(t, c)
	const url = "http://api.example/weather"
	h := f.v.Middleware()(echoClaims)
	send := func(method, scheme, token string, proofs ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, url+"?city=paris", nil)
		r.Header.Set("Authorization", scheme+" "+token)
		for _, p := range proofs {
			r.Header.Add("DPoP", p)
		}
		return serve(h, r)
	}
	ok := send("GET", "DPoP", bound, mustProof(t, key, "GET", url, bound))
	if ok.Code != 200 || ok.Body.String() != "user-1" {
		t.Fatalf("the key holder: got %d %s", ok.Code, ok.Body)
	}
	replayed := mustProof(t, key, "GET", url, bound)
	if w := send("GET", "DPoP", bound, replayed); w.Code != 200 {
		t.Fatalf("first use of a proof: got %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct {
		name string
		w    *httptest.ResponseRecorder
		code string
	}{
		{"bound token as Bearer", send("GET", "Bearer", bound), CodeInvalidToken},
		{"bound token as Bearer with a valid proof", send("GET", "Bearer", bound, mustProof(t, key, "GET", url, bound)), CodeInvalidToken},
		{"no proof", send("GET", "DPoP", bound), CodeInvalidDPoPProof},
		{"two proofs", send("GET", "DPoP", bound, mustProof(t, key, "GET", url, bound), mustProof(t, key, "GET", url, bound)), CodeInvalidDPoPProof},
		{"the thief's own key", send("GET", "DPoP", bound, mustProof(t, thief, "GET", url, bound)), CodeInvalidDPoPProof},
		{"replayed proof", send("GET", "DPoP", bound, replayed), CodeInvalidDPoPProof},
		{"proof for another URL", send("GET", "DPoP", bound, mustProof(t, key, "GET", "http://api.example/orders", bound)), CodeInvalidDPoPProof},
		{"proof for another host", send("GET", "DPoP", bound, mustProof(t, key, "GET", "http://evil.example/weather", bound)), CodeInvalidDPoPProof},
		{"proof for another method", send("DELETE", "DPoP", bound, mustProof(t, key, "GET", url, bound)), CodeInvalidDPoPProof},
		{"proof without ath", send("GET", "DPoP", bound, mustProof(t, key, "GET", url, "")), CodeInvalidDPoPProof},
		{"proof for another token", send("GET", "DPoP", bound, mustProof(t, key, "GET", url, unbound)), CodeInvalidDPoPProof},
		{"garbage proof", send("GET", "DPoP", bound, "x.y.z"), CodeInvalidDPoPProof},
		{"unbound token as DPoP", send("GET", "DPoP", unbound, mustProof(t, key, "GET", url, unbound)), CodeInvalidToken},
		{"forged token as DPoP", send("GET", "DPoP", bound[:len(bound)-4]+"AAAA", mustProof(t, key, "GET", url, bound[:len(bound)-4]+"AAAA")), CodeInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.w.Code != 401 {
				t.Fatalf("got %d %s, want 401", tc.w.Code, tc.w.Body)
			}
			if got := errorBody(t, tc.w); got != tc.code {
				t.Errorf("got error %q, want %q", got, tc.code)
			}
			ch := tc.w.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `DPoP realm="keycard", error="`+tc.code+`"`) || !strings.Contains(ch, `algs="ES256 `) {
				t.Errorf("got WWW-Authenticate %q, want a DPoP challenge with algs", ch)
			}
		})
	}
	if w := send("GET", "Bearer", unbound); w.Code != 200 {
		t.Errorf("an unbound bearer token: got %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("GET", url, nil)
	r.Header.Set("Authorization", "Bearer "+bound)
	if _, err := f.v.Authenticate(r); !errors.Is(err, ErrDPoP) {
		t.Errorf("Authenticate: got %v, want ErrDPoP", err)
	}
}

// TestDPoPPublicURL: behind a proxy the proof names the public URL,
// which Config.PublicURL or WithPublicURL gives; the URL the service
// sees is not accepted in its place.
func TestDPoPPublicURL(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{PublicURL: "https://api.example.com/"})
	key := newDPoPProver(t, f)
	c := f.claims()
	c.Confirmation.JKT = key.Thumbprint()
	tok := f.sign(t, c)
	req := func(proof string) *http.Request {
		r := httptest.NewRequest("GET", "http://10.0.0.7:9001/weather", nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", proof)
		return r
	}
	if _, err := f.v.Authenticate(req(mustProof(t, key, "GET", "https://api.example.com/weather", tok))); err != nil {
		t.Errorf("proof for the public URL: %v", err)
	}
	if _, err := f.v.Authenticate(req(mustProof(t, key, "GET", "http://10.0.0.7:9001/weather", tok))); !errors.Is(err, dpop.ErrInvalidProof) {
		t.Errorf("proof for the internal URL: got %v, want dpop.ErrInvalidProof", err)
	}
	r := req(mustProof(t, key, "GET", "https://gw.example.com/api/weather", tok))
	r = r.WithContext(WithPublicURL(r.Context(), "https://gw.example.com/api/weather"))
	if _, err := f.v.Authenticate(r); err != nil {
		t.Errorf("proof for the URL WithPublicURL names: %v", err)
	}
}

// TestDPoPNonce: with server nonces required, a proof without one is
// answered use_dpop_nonce with a DPoP-Nonce to use.
func TestDPoPNonce(t *testing.T) {
	clk := newClock(testNow) // the fixture's time
	nonces := &dpop.Nonces{Secret: []byte("a secret of at least thirty-two bytes"), Now: clk.now}
	f := newFixture(t, jose.ES256, Config{DPoP: &dpop.Checker{Nonces: nonces, Now: clk.now}})
	key := newDPoPProver(t, f)
	c := f.claims()
	c.Confirmation.JKT = key.Thumbprint()
	tok := f.sign(t, c)
	const url = "http://api.example/weather"
	send := func(nonce string) *httptest.ResponseRecorder {
		proof, err := key.Proof("GET", url, tok, nonce)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", url, nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", proof)
		return serve(f.v.Middleware()(echoClaims), r)
	}
	w := send("")
	if w.Code != 401 || errorBody(t, w) != CodeUseDPoPNonce || w.Header().Get("DPoP-Nonce") == "" {
		t.Fatalf("no nonce: got %d %s, DPoP-Nonce %q", w.Code, w.Body, w.Header().Get("DPoP-Nonce"))
	}
	if w := send(w.Header().Get("DPoP-Nonce")); w.Code != 200 {
		t.Errorf("with the nonce: got %d %s", w.Code, w.Body)
	}
}
