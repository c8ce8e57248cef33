package verifier

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/jose"
)

// serve runs r through h and returns the recorder.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// echoClaims answers 200 with the subject and the Sec-WebSocket-Protocol
// it was given.
var echoClaims = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := FromContext(r.Context())
	if !ok {
		w.Write([]byte("anonymous"))
		return
	}
	w.Header().Set("X-Protocols", r.Header.Get("Sec-WebSocket-Protocol"))
	w.Write([]byte(c.Subject))
})

func errorBody(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if body.Description == "" {
		t.Errorf("error body %q has no description", w.Body)
	}
	return body.Error
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	tok := f.sign(t, f.claims())
	h := f.v.Middleware(FromCookie(AccessCookie), FromWebSocketProtocol())(echoClaims)
	req := func(mod func(r *http.Request)) *http.Request {
		r := httptest.NewRequest("GET", "/weather", nil)
		mod(r)
		return r
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	cookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: AccessCookie, Value: tok}) }
	ws := func(r *http.Request) {
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Sec-WebSocket-Protocol", "chat, "+WebSocketProtocolPrefix+tok+", v2")
	}
	for _, tc := range []struct {
		name      string
		mod       func(r *http.Request)
		status    int
		code      string // error code in the body
		challenge string // WWW-Authenticate
	}{
		{"bearer", bearer, 200, "", ""},
		{"lower-case scheme", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+tok) }, 200, "", ""},
		{"cookie", cookie, 200, "", ""},
		{"websocket protocol", ws, 200, "", ""},
		{"no token", func(*http.Request) {}, 401, "invalid_token", `Bearer realm="keycard"`},
		{"basic credentials", func(r *http.Request) { r.SetBasicAuth("u", "p") }, 401, "invalid_token", `Bearer realm="keycard"`},
		{"bad token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok[:len(tok)-4]+"AAAA") }, 401, "invalid_token", `error="invalid_token"`},
		{"empty bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, 400, "invalid_request", ""},
		{"bearer with a comma", func(r *http.Request) { r.Header.Set("Authorization", "Bearer a, b") }, 400, "invalid_request", ""},
		{"two authorization headers", func(r *http.Request) { bearer(r); r.Header.Add("Authorization", "Bearer "+tok) }, 400, "invalid_request", ""},
		{"header and cookie", func(r *http.Request) { bearer(r); cookie(r) }, 400, "invalid_request", ""},
		{"header and websocket", func(r *http.Request) { bearer(r); ws(r) }, 400, "invalid_request", ""},
		{"two cookies", func(r *http.Request) { cookie(r); cookie(r) }, 400, "invalid_request", ""},
		{"token in the query", func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }, 400, "invalid_request", ""},
		{"token in the query beside a header", func(r *http.Request) { bearer(r); r.URL.RawQuery = "x=1&access_token=" + tok }, 400, "invalid_request", ""},
		{"token in the query, upper case", func(r *http.Request) { r.URL.RawQuery = "ACCESS_TOKEN=" + tok }, 400, "invalid_request", ""},
		{"token in the query, percent-encoded name", func(r *http.Request) { r.URL.RawQuery = "access%5Ftoken=" + tok }, 400, "invalid_request", ""},
		{"token in the query after a semicolon", func(r *http.Request) { r.URL.RawQuery = "a=1;access_token=" + tok }, 400, "invalid_request", ""},
		{"a parameter that only looks alike", func(r *http.Request) { bearer(r); r.URL.RawQuery = "access_tokens=1&my_access_token=2" }, 200, "", ""},
		{"two websocket tokens", func(r *http.Request) {
			ws(r)
			r.Header.Add("Sec-WebSocket-Protocol", WebSocketProtocolPrefix+tok)
		}, 400, "invalid_request", ""},
		{"empty websocket token", func(r *http.Request) {
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Sec-WebSocket-Protocol", WebSocketProtocolPrefix)
		}, 400, "invalid_request", ""},
		{"websocket protocol without an upgrade", func(r *http.Request) {
			r.Header.Set("Sec-WebSocket-Protocol", WebSocketProtocolPrefix+tok)
		}, 401, "invalid_token", `Bearer realm="keycard"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req(tc.mod)
			w := serve(h, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if tc.status == 200 {
				if w.Body.String() != "user-1" {
					t.Errorf("handler saw %q", w.Body)
				}
				return
			}
			if code := errorBody(t, w); code != tc.code {
				t.Errorf("error %q, want %q", code, tc.code)
			}
			if got := w.Header().Get("WWW-Authenticate"); tc.challenge != "" && !strings.HasPrefix(got, "Bearer") || !strings.Contains(got, tc.challenge) {
				t.Errorf("WWW-Authenticate %q, want it to contain %q", got, tc.challenge)
			}
			if tc.status == 401 && tc.challenge == `Bearer realm="keycard"` && strings.Contains(w.Header().Get("WWW-Authenticate"), "error=") {
				t.Errorf("a request without a token got an error code in its challenge (RFC 6750 section 3.1): %q", w.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(w.Body.String(), tok) || strings.Contains(w.Header().Get("WWW-Authenticate"), tok) {
				t.Error("the answer echoes the token")
			}
		})
	}
	t.Run("websocket protocol removed", func(t *testing.T) {
		r := req(ws)
		w := serve(h, r)
		if got := w.Header().Get("X-Protocols"); got != "chat, v2" {
			t.Errorf("handler saw protocols %q, want %q", got, "chat, v2")
		}
		if got := r.Header.Get("Sec-WebSocket-Protocol"); !strings.Contains(got, tok) {
			t.Errorf("the caller's request was changed: %q", got)
		}
	})
	t.Run("cookie ignored unless asked for", func(t *testing.T) {
		w := serve(f.v.Middleware()(echoClaims), req(cookie))
		if w.Code != 401 {
			t.Errorf("status %d, want 401", w.Code)
		}
	})
}

func TestMiddlewareOptional(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	h := f.v.Middleware(Optional())(echoClaims)
	if w := serve(h, httptest.NewRequest("GET", "/", nil)); w.Code != 200 || w.Body.String() != "anonymous" {
		t.Errorf("no token: %d %q, want 200 anonymous", w.Code, w.Body)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer nonsense")
	if w := serve(h, r); w.Code != 401 {
		t.Errorf("bad token on an optional route: %d, want 401", w.Code)
	}
}

func TestMiddlewareErrorHandler(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	var got error
	h := f.v.Middleware(WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	}))(echoClaims)
	if w := serve(h, httptest.NewRequest("GET", "/", nil)); w.Code != http.StatusTeapot {
		t.Errorf("status %d", w.Code)
	}
	wantRefused(t, got, 401, ErrNoToken)
}

func TestRequire(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	tok := f.sign(t, f.claims()) // scopes weather:read profile orders:write billing; role user
	for _, tc := range []struct {
		name   string
		mw     func(http.Handler) http.Handler
		status int
		scope  string // the challenge's scope parameter
	}{
		{"scope present", RequireScope("weather:read"), 200, ""},
		{"scope from scp", RequireScope("orders:write"), 200, ""},
		{"all scopes present", RequireScope("weather:read", "billing"), 200, ""},
		{"one scope missing", RequireScope("weather:read", "orders:read"), 403, "weather:read orders:read"},
		{"any scope", RequireAnyScope("nope", "billing"), 200, ""},
		{"no scope of any", RequireAnyScope("nope", "none"), 403, "nope none"},
		{"role", RequireRole("user"), 200, ""},
		{"missing role", RequireRole("admin"), 403, ""},
		{"any role", RequireAnyRole("admin", "user"), 200, ""},
		{"no role of any", RequireAnyRole("admin", "ops"), 403, ""},
		{"nothing required", RequireScope(), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := serve(f.v.Middleware()(tc.mw(echoClaims)), r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status != 403 {
				return
			}
			if code := errorBody(t, w); code != "insufficient_scope" {
				t.Errorf("error %q", code)
			}
			ch := w.Header().Get("WWW-Authenticate")
			if !strings.Contains(ch, `error="insufficient_scope"`) {
				t.Errorf("challenge %q", ch)
			}
			if tc.scope != "" && !strings.Contains(ch, `scope="`+tc.scope+`"`) {
				t.Errorf("challenge %q lacks scope=%q", ch, tc.scope)
			}
		})
	}
	t.Run("without the middleware", func(t *testing.T) {
		w := serve(RequireScope("x")(echoClaims), httptest.NewRequest("GET", "/", nil))
		if w.Code != 401 {
			t.Errorf("status %d, want 401", w.Code)
		}
	})
}

func TestWriteErrorQuotes(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, insufficient("needs \"x\"\r\n", "a\"b c\\d"))
	ch := w.Header().Get("WWW-Authenticate")
	if strings.ContainsAny(strings.TrimPrefix(strings.ReplaceAll(ch, `="`, ""), "Bearer"), "\r\n\\") {
		t.Errorf("challenge %q carries characters RFC 6750 forbids", ch)
	}
	if !strings.Contains(ch, `scope="ab c\d"`) && !strings.Contains(ch, `scope="ab cd"`) {
		t.Errorf("challenge %q", ch)
	}
}

// queryTokenSpellings are query strings that carry an access token under
// a name that PHP ($_GET) or Rails (params) reads as access_token. Each
// is refused by CheckQuery.
var queryTokenSpellings = []string{
	"access_token=T",
	"ACCESS_TOKEN=T",
	"Access_Token=T",
	"x=1&access_token=T",
	"x=1;access_token=T",
	"access%5Ftoken=T",
	"access%5ftoken=T",
	"%61ccess_token=T",
	"%41CCESS%5FTOKEN=T",
	"access.token=T",
	"access+token=T",
	"access%20token=T",
	"access%2Etoken=T",
	"access%5btoken=T",
	"access%5Btoken=T",
	"access[token=T",
	"access_token[]=T",
	"access_token%5B%5D=T",
	"access_token[x]=T",
	"access_token[x][y]=T",
	"access.token[]=T",
	"Access+Token[0]=T",
	"+access_token=T",
	"%20access_token%20=T",
	"access_token",
	"access_token[" + strings.Repeat("x", 300) + "]=T",
}

func TestCheckQuery(t *testing.T) {
	for _, q := range queryTokenSpellings {
		r := httptest.NewRequest("GET", "/?"+q, nil)
		err := CheckQuery(r)
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || e.Code != CodeInvalidRequest || !errors.Is(err, ErrMalformedRequest) {
			t.Errorf("query %.60q: got %v, want a 400 invalid_request *Error", q, err)
		}
		if _, err := TokenFrom(r, Sources{}); !errors.Is(err, ErrMalformedRequest) {
			t.Errorf("TokenFrom, query %.60q: got %v, want ErrMalformedRequest", q, err)
		}
	}
	// Names that merely look alike, and the word in a value, pass.
	for _, q := range []string{
		"", "x=1", "access_tokens=T", "my_access_token=T", "access=1&token=2", "accesstoken=T",
		"q=access_token", "next=%2Fx%3Faccess_token%3DT", "access_token_x=T", "access[token]=T",
		"access_tokenx[]=T", "access%5Gtoken=T", "%zz=1", "access%_token=T",
	} {
		if err := CheckQuery(httptest.NewRequest("GET", "/?"+q, nil)); err != nil {
			t.Errorf("query %q: got %v, want no error", q, err)
		}
	}
}

func TestQueryHasTokenDoesNotAllocate(t *testing.T) {
	for _, q := range []string{"page=2&sort=name", "q=%C3%A9t%C3%A9&access_level=3", "access.level=1"} {
		if n := testing.AllocsPerRun(100, func() { queryHasToken(q) }); n != 0 {
			t.Errorf("query %q: got %v allocations, want 0", q, n)
		}
	}
}
