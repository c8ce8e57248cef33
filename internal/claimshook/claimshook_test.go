package claimshook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
)

// The Standard Webhooks specification's published test vector: a
// receiver can check Keycard's requests with any of its libraries.
func TestSignStandardWebhooksVector(t *testing.T) {
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestParseSecret(t *testing.T) {
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if key, err := ParseSecret(s); err != nil || len(key) != 32 {
		t.Errorf("ParseSecret(NewSecret()) = %d bytes, %v", len(key), err)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_c2hvcnQ=", "whsec_not base64!"} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("ParseSecret(%q): the error repeats the secret: %v", bad, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://hooks.example/claims", false, true},
		{"http://127.0.0.1:8080/claims", false, true},
		{"http://[::1]:8080/claims", false, true},
		{"http://localhost:8080/claims", false, true},
		{"http://hooks.example/claims", false, false},
		{"http://hooks.example/claims", true, true},
		{"ftp://hooks.example/", false, false},
		{"/claims", false, false},
		{"https://user:pass@hooks.example/", false, false},
		{"https://hooks.example/#x", false, false},
		{"https://hooks.example/%zz", false, false},
	} {
		if err := CheckURL(tc.url, tc.insecure); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok %v", tc.url, tc.insecure, err, tc.ok)
		}
	}
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

// hookServer runs handler as the hook and returns a Hook for it.
func hookServer(t *testing.T, handler http.HandlerFunc) *Hook {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &Hook{URL: srv.URL + "/claims", Secret: testKey}
}

var testRequest = &auth.ClaimsRequest{UserID: "u1", Username: "alice", Roles: []string{"user"}, ClientID: "app", Scope: "openid", SessionID: "s1", IDToken: true}

func TestClaims(t *testing.T) {
	var body []byte
	var hdr http.Header
	h := hookServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		hdr = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"access_token": {"tenant": "acme"}, "id_token": {"locale": "fr"}}`)
	})
	cc, err := h.Claims(context.Background(), testRequest)
	if err != nil {
		t.Fatal(err)
	}
	if string(cc.AccessToken["tenant"]) != `"acme"` || string(cc.IDToken["locale"]) != `"fr"` {
		t.Errorf("claims %+v", cc)
	}
	// The request: signed over id.timestamp.body, and what it says.
	ts, err := strconv.ParseInt(hdr.Get("Webhook-Timestamp"), 10, 64)
	if err != nil || hdr.Get("Content-Type") != "application/json" || !strings.HasPrefix(hdr.Get("Webhook-Id"), "msg_") {
		t.Fatalf("headers %v", hdr)
	}
	if got, want := hdr.Get("Webhook-Signature"), Sign(testKey, hdr.Get("Webhook-Id"), ts, body); got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	u, _ := req["user"].(map[string]any)
	if req["type"] != EventType || req["client_id"] != "app" || req["session_id"] != "s1" || u["username"] != "alice" ||
		len(req["tokens"].([]any)) != 2 {
		t.Errorf("request body %s", body)
	}
}

// TestClaimsRefusals: every answer but a 200 with the JSON object, or a
// 204, is an error; none is a panic, and the error never repeats the URL.
func TestClaimsRefusals(t *testing.T) {
	answer := func(status int, ctype, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if ctype != "" {
				w.Header().Set("Content-Type", ctype)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	for name, handler := range map[string]http.HandlerFunc{
		"500":                  answer(500, "application/json", `{}`),
		"redirect":             func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
		"text":                 answer(200, "text/plain", `{}`),
		"no content type":      answer(200, "", `{}`),
		"not JSON":             answer(200, "application/json", `{"access_token":`),
		"an array":             answer(200, "application/json", `[]`),
		"unknown member":       answer(200, "application/json", `{"access_token": {}, "refresh_token": {}}`),
		"claims not an object": answer(200, "application/json", `{"access_token": ["x"]}`),
		"two objects":          answer(200, "application/json", `{} {}`),
		"over the size limit":  answer(200, "application/json", `{"access_token": {"x": "`+strings.Repeat("a", DefaultMaxBytes)+`"}}`),
		"no answer in time": func(w http.ResponseWriter, r *http.Request) {
			// With the body read, the server notices the client hang up.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := hookServer(t, handler)
			h.URL += "?key=s3cret"
			h.Timeout = 200 * time.Millisecond // only "no answer in time" waits for it
			cc, err := h.Claims(context.Background(), testRequest)
			if err == nil {
				t.Fatalf("accepted: %+v", cc)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the URL: %v", err)
			}
		})
	}
	t.Run("204", func(t *testing.T) {
		h := hookServer(t, answer(204, "", ""))
		if cc, err := h.Claims(context.Background(), testRequest); err != nil || len(cc.AccessToken)+len(cc.IDToken) != 0 {
			t.Errorf("204: %+v, %v; want no claims", cc, err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		h := &Hook{URL: srv.URL + "/claims?key=s3cret", Secret: testKey}
		if _, err := h.Claims(context.Background(), testRequest); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("closed server: %v", err)
		}
	})
}
