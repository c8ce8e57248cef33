package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// TestVerifierFailsClosed: once the revocation feed has been unreachable
// for longer than MaxFeedOutage, every token is refused with 503 and
// Ready says why; with FailOpen tokens are still accepted. When the feed
// is back, tokens are accepted again.
func TestVerifierFailsClosed(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		name := "closed"
		if failOpen {
			name = "open"
		}
		t.Run(name, func(t *testing.T) {
			key, err := jose.GenerateKey(jose.EdDSA, nil)
			if err != nil {
				t.Fatal(err)
			}
			key, _ = key.WithKeyID("k1")
			var down atomic.Bool
			var srv *httptest.Server
			mux := http.NewServeMux()
			mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks",
					"keycard_revocation_feed_endpoint": srv.URL + "/feed"})
			})
			mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
				pub, _ := json.Marshal(key.Public())
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"keys":[` + string(pub) + `]}`))
			})
			mux.HandleFunc("GET /feed", func(w http.ResponseWriter, r *http.Request) {
				if down.Load() {
					http.Error(w, "down", http.StatusBadGateway)
					return
				}
				if r.URL.Query().Get("wait") != "" {
					select {
					case <-r.Context().Done():
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"entries":[],"next":0,"snapshot":false}`))
			})
			srv = httptest.NewServer(mux)
			defer srv.Close()

			clk := newClock(time.Now())
			v, err := New(context.Background(), Config{Issuer: srv.URL, ClientID: "svc", ClientSecret: "x",
				MaxFeedOutage: time.Minute, FailOpen: failOpen, Now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			now := clk.now()
			tok, err := jwt.Sign(key, &jwt.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: srv.URL, Subject: "u",
				ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}}, jwt.WithHeaderType("at+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(tok); err != nil {
				t.Fatalf("feed up: %v", err)
			}

			// A long-poll that got past the outage check before it began
			// still answers 200, and the follower counts that as a
			// contact. It polls one request at a time: once it has met
			// the outage (a failed poll), no answer can refresh its
			// last contact, and the clock may move past MaxFeedOutage.
			failures := v.Follower().Status().Reconnects
			down.Store(true)
			deadline := time.Now().Add(10 * time.Second)
			for v.Follower().Status().Reconnects == failures {
				if time.Now().After(deadline) {
					t.Fatal("the follower never met the outage")
				}
				time.Sleep(10 * time.Millisecond)
			}
			clk.add(2 * time.Minute)
			for v.Follower().Status().Stale == false {
				if time.Now().After(deadline) {
					t.Fatal("the follower never noticed the outage")
				}
				time.Sleep(10 * time.Millisecond)
			}
			_, err = v.Verify(tok)
			if failOpen {
				if err != nil || v.Ready() != nil {
					t.Fatalf("fail open: Verify %v, Ready %v; want both nil", err, v.Ready())
				}
			} else {
				wantRefused(t, err, http.StatusServiceUnavailable, ErrUnavailable)
				if err := v.Ready(); err == nil {
					t.Error("Ready is nil while failing closed")
				}
				w := httptest.NewRecorder()
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				v.Middleware()(echoClaims).ServeHTTP(w, r)
				if w.Code != 503 || w.Header().Get("Retry-After") == "" {
					t.Errorf("middleware while failing closed: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
				}
			}

			down.Store(false)
			deadline = time.Now().Add(15 * time.Second)
			for {
				_, err := v.Verify(tok)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
					t.Fatalf("after the feed is back: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
