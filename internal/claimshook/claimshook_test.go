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
	"github.com/keycard-auth/keycard/internal/webhook"
)

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

// testSecret is the Standard Webhooks specification's test secret.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// hookServer runs handler as the hook and returns a Hook for it.
func hookServer(t *testing.T, handler http.HandlerFunc) *Hook {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &Hook{URL: srv.URL + "/claims", Secret: testSecret}
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
	if want, err := webhook.Sign(testSecret, hdr.Get("Webhook-Id"), time.Unix(ts, 0), body); err != nil || hdr.Get("Webhook-Signature") != want {
		got := hdr.Get("Webhook-Signature")
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
		h := &Hook{URL: srv.URL + "/claims?key=s3cret", Secret: testSecret}
		if _, err := h.Claims(context.Background(), testRequest); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("closed server: %v", err)
		}
	})
}

func TestNew(t *testing.T) {
	if _, err := New("https://hooks.example/c", testSecret, false); err != nil {
		t.Errorf("New: %v", err)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_c2hvcnQ=", "whsec_not base64!"} {
		if _, err := New("https://hooks.example/c", bad, false); err == nil {
			t.Errorf("New with secret %q accepted", bad)
		} else if len(bad) > len("whsec_") && strings.Contains(err.Error(), bad) {
			t.Errorf("New with secret %q: the error repeats the secret: %v", bad, err)
		}
	}
	if _, err := New("http://hooks.example/c", testSecret, false); err == nil {
		t.Error("New accepted plain http to a remote host")
	}
}
