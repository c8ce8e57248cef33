package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestErrorKind(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	_, refused := http.Get("http://" + closed + "/")

	// A server that hangs up without an answer.
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer hangup.Close()
	_, eof := http.Get(hangup.URL)

	// A server slower than the client's timeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	_, timeout := (&http.Client{Timeout: 10 * time.Millisecond}).Get(slow.URL)

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"status", &StatusError{Code: 503}, "http_503"},
		{"wrapped status", fmt.Errorf("x: %w", &StatusError{Code: 429, OAuthError: "too_many_requests"}), "http_429"},
		{"kind", &KindError{Kind: KindInactive, Msg: "m"}, KindInactive},
		{"deadline", context.DeadlineExceeded, KindTimeout},
		{"client timeout", timeout, KindTimeout},
		{"refused", refused, KindConnectionRefused},
		{"hang-up", eof, KindEOF},
		{"unexpected EOF", io.ErrUnexpectedEOF, KindEOF},
		{"dns", &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, KindDNS},
		{"other network", &net.OpError{Op: "read", Net: "tcp", Err: fmt.Errorf("something")}, KindNetwork},
		{"other", fmt.Errorf("something else"), KindOther},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: the request did not fail", tt.name)
			continue
		}
		if got := ErrorKind(tt.err); got != tt.want {
			t.Errorf("%s: ErrorKind(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestStatusErrorKeepsOnlyACode(t *testing.T) {
	// The "error" member of an answer goes into messages; anything that
	// is not a short printable code is dropped.
	tests := []struct {
		body string
		want string
	}{
		{`{"error":"invalid_grant","error_description":"x"}`, "invalid_grant"},
		{`{"error":"line\nbreak"}`, ""},
		{`not json`, ""},
		{`{"error":"` + string(make([]byte, 100)) + `"}`, ""},
	}
	for _, tt := range tests {
		se := statusError(400, []byte(tt.body)).(*StatusError)
		if se.Code != 400 || se.OAuthError != tt.want {
			t.Errorf("statusError(400, %q) = %+v, want code 400 and %q", tt.body, se, tt.want)
		}
	}
}
