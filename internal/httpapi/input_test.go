package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keycard-auth/keycard"
)

func TestMalformedInput(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)

	jsonCT := http.Header{"Content-Type": {"application/json"}}
	ct := func(v ...string) http.Header { return http.Header{"Content-Type": v} }
	deep := strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20)
	bodies := []struct {
		name   string
		header http.Header
		body   string
		status int
	}{
		{"no content type", nil, credentialsJSON("alice", testPassword), http.StatusUnsupportedMediaType},
		{"text/plain", ct("text/plain"), credentialsJSON("alice", testPassword), http.StatusUnsupportedMediaType},
		{"form content type", ct("application/x-www-form-urlencoded"), "username=alice&password=x", http.StatusUnsupportedMediaType},
		{"latin1 charset", ct("application/json; charset=latin1"), credentialsJSON("alice", testPassword), http.StatusUnsupportedMediaType},
		{"UTF-16 charset", ct("application/json; charset=utf-16"), credentialsJSON("alice", testPassword), http.StatusUnsupportedMediaType},
		{"malformed content type", ct("application/json; ="), credentialsJSON("alice", testPassword), http.StatusUnsupportedMediaType},
		{"two content types", ct("application/json", "application/json"), credentialsJSON("alice", testPassword), http.StatusUnsupportedMediaType},
		{"empty body", jsonCT, "", http.StatusBadRequest},
		{"whitespace body", jsonCT, " \n\t ", http.StatusBadRequest},
		{"null", jsonCT, "null", http.StatusBadRequest},
		{"array", jsonCT, "[]", http.StatusBadRequest},
		{"string", jsonCT, `"alice"`, http.StatusBadRequest},
		{"number", jsonCT, `1e999`, http.StatusBadRequest},
		{"truncated", jsonCT, `{"username":"alice"`, http.StatusBadRequest},
		{"unterminated string", jsonCT, `{"username":"alice`, http.StatusBadRequest},
		{"empty object", jsonCT, `{}`, http.StatusBadRequest},
		{"null members", jsonCT, `{"username":null,"password":null}`, http.StatusBadRequest},
		{"unknown field", jsonCT, `{"username":"alice","password":"correct horse battery","admin":true}`, http.StatusBadRequest},
		{"field in another case", jsonCT, `{"Username":"alice","password":"correct horse battery"}`, http.StatusBadRequest},
		{"duplicate field", jsonCT, `{"username":"bob","username":"alice","password":"correct horse battery"}`, http.StatusBadRequest},
		{"trailing object", jsonCT, credentialsJSON("alice", testPassword) + `{}`, http.StatusBadRequest},
		{"trailing garbage", jsonCT, credentialsJSON("alice", testPassword) + `x`, http.StatusBadRequest},
		{"number username", jsonCT, `{"username":1,"password":"correct horse battery"}`, http.StatusBadRequest},
		{"object password", jsonCT, `{"username":"alice","password":{"a":1}}`, http.StatusBadRequest},
		{"array password", jsonCT, `{"username":"alice","password":["correct horse battery"]}`, http.StatusBadRequest},
		{"deep nesting", jsonCT, `{"username":` + deep + `}`, http.StatusBadRequest},
		{"invalid UTF-8", jsonCT, "{\"username\":\"al\xffice\",\"password\":\"correct horse battery\"}", http.StatusBadRequest},
		{"comment", jsonCT, `{"username":"alice", /* hi */ "password":"x"}`, http.StatusBadRequest},
		{"single quotes", jsonCT, `{'username':'alice'}`, http.StatusBadRequest},
		{"oversized", jsonCT, `{"username":"` + strings.Repeat("a", MaxBodyBytes) + `","password":"x"}`, http.StatusRequestEntityTooLarge},
		{"NUL byte", jsonCT, "{\"username\":\"alice\x00\"}", http.StatusBadRequest},
	}
	endpoints := []struct {
		path  string
		token string
	}{
		{"/v1/users", ""},
		{"/v1/login", ""},
		{"/v1/password", tok.AccessToken},
	}
	for _, ep := range endpoints {
		for _, tt := range bodies {
			t.Run(ep.path+"/"+tt.name, func(t *testing.T) {
				h := http.Header{}
				for k, v := range tt.header {
					h[k] = v
				}
				if ep.token != "" {
					h.Set("Authorization", "Bearer "+ep.token)
				}
				res := f.do(t, request{method: http.MethodPost, path: ep.path, header: h, body: tt.body})
				if res.status != tt.status {
					t.Errorf("got status %d, want %d (body %s)", res.status, tt.status, res.body)
				}
				e := res.errorBody(t)
				if e.Error != codeInvalidRequest {
					t.Errorf("got error %q, want invalid_request", e.Error)
				}
			})
		}
	}

	// Semantically bad but well-formed values get the service's 4xx.
	values := []struct {
		path, body string
		status     int
	}{
		{"/v1/users", credentialsJSON("alice\u0007", testPassword), 400},
		{"/v1/users", credentialsJSON(strings.Repeat("a", 300), testPassword), 400},
		{"/v1/users", credentialsJSON("😀", testPassword), 400},
		{"/v1/users", credentialsJSON("eve", strings.Repeat("p", 60000)), 400},
		{"/v1/login", credentialsJSON(strings.Repeat("a", 60000), testPassword), 401},
		{"/v1/login", credentialsJSON("alice\u0000", testPassword), 401},
		{"/v1/login", `{"username":"\ud800","password":"\udfff\udfff\udfff\udfff"}`, 401},
	}
	for _, tt := range values {
		res := f.postJSON(t, tt.path, "", tt.body)
		if res.status != tt.status {
			t.Errorf("%s %.40q: got status %d, want %d (body %s)", tt.path, tt.body, res.status, tt.status, res.body)
		}
		res.errorBody(t)
	}
}

func TestErrorResponse(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
		desc   string
	}{
		{keycard.Errorf(keycard.EINVALID, "Bad."), 400, codeInvalidRequest, "Bad."},
		{keycard.Errorf(keycard.EUNAUTHORIZED, "Who?"), 401, codeUnauthorized, "Who?"},
		{keycard.Errorf(keycard.EFORBIDDEN, "No."), 403, codeAccessDenied, "No."},
		{keycard.Errorf(keycard.ENOTFOUND, "Gone."), 404, codeNotFound, "Gone."},
		{keycard.Errorf(keycard.ECONFLICT, "Taken."), 409, codeConflict, "Taken."},
		{keycard.Errorf(keycard.EINTERNAL, "secret detail"), 500, codeServerError, "Internal error."},
		{fmt.Errorf("wrapped: %w", keycard.Errorf(keycard.ENOTFOUND, "Gone.")), 404, codeNotFound, "Gone."},
		{errors.New("sqlite: disk I/O error at /var/lib/keycard"), 500, codeServerError, "Internal error."},
		{errorf(418, "teapot", "Short and stout."), 418, "teapot", "Short and stout."},
		{asGrantError(keycard.Errorf(keycard.EUNAUTHORIZED, "Invalid refresh token."), 400), 400, codeInvalidGrant, "Invalid refresh token."},
		{asGrantError(keycard.Errorf(keycard.EINVALID, "Bad."), 400), 400, codeInvalidRequest, "Bad."},
	}
	for _, tt := range tests {
		status, code, desc := errorResponse(tt.err)
		if status != tt.status || code != tt.code || desc != tt.desc {
			t.Errorf("errorResponse(%v) = %d, %q, %q; want %d, %q, %q", tt.err, status, code, desc, tt.status, tt.code, tt.desc)
		}
	}
}

func TestInternalErrorIsLoggedNotShown(t *testing.T) {
	logs := &syncBuffer{}
	s := New(nil, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	h := s.logRequests(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errors.New("sqlite: database is locked"))
	})))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
	if w.Code != 500 || strings.Contains(w.Body.String(), "locked") {
		t.Errorf("got %d %s, want 500 without the error's text", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "database is locked") {
		t.Errorf("log misses the error:\n%s", logs)
	}
}

func TestPanicRecovery(t *testing.T) {
	logs := &syncBuffer{}
	s := New(nil, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	h := s.logRequests(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/login?password=hunter2", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("got status %d, want 500", w.Code)
	}
	res := &response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	res.wantError(t, 500, codeServerError)
	out := logs.String()
	if !strings.Contains(out, `"panic":"boom"`) || !strings.Contains(out, `"status":500`) {
		t.Errorf("log misses the panic or the 500:\n%s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("log holds the query string:\n%s", out)
	}

	// http.ErrAbortHandler is left to net/http.
	abort := s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("got panic %v, want http.ErrAbortHandler re-raised", v)
		}
	}()
	abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

func TestConcurrentRefresh(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)

	const n = 50
	var wg sync.WaitGroup
	results := make([]*response, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = f.refresh(t, tok.RefreshToken)
		})
	}
	close(start)
	wg.Wait()

	successors := map[string]bool{}
	for i, res := range results {
		if res.status != http.StatusOK {
			t.Errorf("request %d: got status %d, want 200 (body %s)", i, res.status, res.body)
			continue
		}
		var next tokenResponse
		res.decode(t, &next)
		if next.SessionID != tok.SessionID {
			t.Errorf("request %d: got session %s, want %s", i, next.SessionID, tok.SessionID)
		}
		successors[next.RefreshToken] = true
	}
	if len(successors) != 1 {
		t.Fatalf("got %d different successors, want 1", len(successors))
	}
	var successor string
	for s := range successors {
		successor = s
	}
	// The one successor is the session's live token, and it rotates.
	res := f.refresh(t, successor)
	if res.status != http.StatusOK {
		t.Fatalf("successor: got status %d, want 200 (body %s)", res.status, res.body)
	}
	var next tokenResponse
	res.decode(t, &next)
	if next.RefreshToken == successor || next.SessionID != tok.SessionID {
		t.Errorf("successor's rotation: got %+v", next)
	}
}

// Form bodies (the token, introspection and revocation endpoints) may
// declare the charset UTF-8 or US-ASCII, under any registered name, in
// any case, quoted or not; any other charset is a clear 415, and a
// missing or other media type the 400 invalid_request RFC 6749 §5.2 asks
// for.
func TestFormContentType(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	rt := f.login(t, "alice", testPassword).RefreshToken
	c := f.newClient(t, nil, nil)
	ct := func(v ...string) http.Header {
		return http.Header{"Content-Type": v, "Authorization": {basic(c.id, c.secret)}}
	}
	tests := []struct {
		name       string
		header     http.Header
		status     int
		wantInDesc string // part of error_description, for errors
	}{
		{"no charset", ct("application/x-www-form-urlencoded"), http.StatusOK, ""},
		{"UTF-8", ct("application/x-www-form-urlencoded; charset=UTF-8"), http.StatusOK, ""},
		{"utf-8, lower case", ct("application/x-www-form-urlencoded; charset=utf-8"), http.StatusOK, ""},
		{"quoted", ct(`application/x-www-form-urlencoded; charset="UTF-8"`), http.StatusOK, ""},
		{"media type in upper case, no space", ct("Application/X-WWW-Form-Urlencoded;Charset=Utf-8"), http.StatusOK, ""},
		{"csUTF8 (the IANA alias)", ct("application/x-www-form-urlencoded; charset=csUTF8"), http.StatusOK, ""},
		{"US-ASCII", ct("application/x-www-form-urlencoded; charset=US-ASCII"), http.StatusOK, ""},
		{"us-ascii, quoted", ct(`application/x-www-form-urlencoded; charset="us-ascii"`), http.StatusOK, ""},
		{"ANSI_X3.4-1968 (US-ASCII's IANA name)", ct("application/x-www-form-urlencoded; charset=ANSI_X3.4-1968"), http.StatusOK, ""},
		{"ISO-8859-1", ct("application/x-www-form-urlencoded; charset=ISO-8859-1"), http.StatusUnsupportedMediaType, "UTF-8"},
		{"windows-1252", ct("application/x-www-form-urlencoded; charset=windows-1252"), http.StatusUnsupportedMediaType, "UTF-8"},
		{"UTF-16", ct("application/x-www-form-urlencoded; charset=UTF-16"), http.StatusUnsupportedMediaType, "UTF-8"},
		{"utf8, not a registered name", ct("application/x-www-form-urlencoded; charset=utf8"), http.StatusUnsupportedMediaType, "UTF-8"},
		{"empty charset", ct(`application/x-www-form-urlencoded; charset=""`), http.StatusUnsupportedMediaType, "UTF-8"},
		{"no content type", ct(), http.StatusBadRequest, "missing"},
		{"JSON", ct("application/json"), http.StatusBadRequest, "must be application/x-www-form-urlencoded"},
		{"JSON with UTF-8", ct("application/json; charset=utf-8"), http.StatusBadRequest, "must be application/x-www-form-urlencoded"},
		{"multipart", ct("multipart/form-data; boundary=x"), http.StatusBadRequest, "must be application/x-www-form-urlencoded"},
		{"text/plain in another charset", ct("text/plain; charset=latin1"), http.StatusBadRequest, "must be application/x-www-form-urlencoded"},
		{"malformed", ct("application/x-www-form-urlencoded; charset"), http.StatusBadRequest, "malformed"},
		{"charset twice", ct("application/x-www-form-urlencoded; charset=utf-8; charset=latin1"), http.StatusBadRequest, "malformed"},
		{"two headers", ct("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"), http.StatusBadRequest, "repeated"},
	}
	endpoints := []struct {
		path string
		body func() string
	}{
		{"/oauth/token", func() string { return "grant_type=refresh_token&refresh_token=" + rt }},
		{"/oauth/token", func() string { return "grant_type=client_credentials" }},
		{"/oauth/introspect", func() string { return "token=" + rt }},
		{"/oauth/revoke", func() string { return "token=not-a-token" }},
	}
	for _, ep := range endpoints {
		for _, tt := range tests {
			t.Run(ep.path+"/"+tt.name, func(t *testing.T) {
				res := f.do(t, request{method: http.MethodPost, path: ep.path, header: tt.header, body: ep.body()})
				if tt.status == http.StatusOK {
					if res.status != http.StatusOK {
						t.Fatalf("got status %d, want 200 (body %s)", res.status, res.body)
					}
					if ep.path == "/oauth/token" {
						var tok tokenResponse
						if res.decode(t, &tok); tok.RefreshToken != "" {
							rt = tok.RefreshToken
						}
					}
					return
				}
				e := res.wantError(t, tt.status, codeInvalidRequest)
				if !strings.Contains(e.Description, tt.wantInDesc) {
					t.Errorf("got error_description %q, want it to say %q", e.Description, tt.wantInDesc)
				}
			})
		}
	}
}
