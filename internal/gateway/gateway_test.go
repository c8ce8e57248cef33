package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jwt"
)

func TestRouting(t *testing.T) {
	api, weather, weatherTop, orders, exact := newUpstream(t), newUpstream(t), newUpstream(t), newUpstream(t), newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /, upstream: '`+api.URL+`', auth: none}
  - {path: /weather/, upstream: '`+weather.URL+`', auth: none}
  - {path: /weather/top/, upstream: '`+weatherTop.URL+`', auth: none}
  - {path: /orders/, methods: [POST, DELETE], upstream: '`+orders.URL+`', auth: none}
  - {path: /exact, upstream: '`+exact.URL+`', auth: none}
`)
	tests := []struct {
		method, path string
		want         *upstream
	}{
		{"GET", "/", api},
		{"GET", "/other", api},
		{"GET", "/weather/", weather},
		{"GET", "/weather/today", weather},
		{"GET", "/weather", api}, // "/weather/" does not cover "/weather"
		{"GET", "/weather/top/", weatherTop},
		{"GET", "/weather/top/x", weatherTop},
		{"GET", "/weather/topx", weather},
		{"POST", "/orders/1", orders},
		{"DELETE", "/orders/1", orders},
		{"GET", "/orders/1", api}, // method not accepted by the longer route: the next one that does
		{"GET", "/exact", exact},
		{"GET", "/exact/sub", exact},
		{"GET", "/exactly", api}, // "/exact" covers itself and what is under "/exact/"
	}
	for _, tt := range tests {
		before := tt.want.count()
		w := g.do(t, tt.method, tt.path, "", nil)
		if w.Code != 200 || tt.want.count() != before+1 || tt.want.last().URL.Path != tt.path {
			t.Errorf("%s %s: %d %q; want it forwarded to its upstream unchanged", tt.method, tt.path, w.Code, w.Body)
		}
	}
}

func TestRoutingNotFoundAndMethodNotAllowed(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /orders/, methods: [POST, PUT], upstream: '`+up.URL+`'}
  - {path: /orders/, methods: [GET], upstream: '`+up.URL+`', auth: none}
  - {path: /orders/admin/, methods: [DELETE], upstream: '`+up.URL+`'}
`)
	w := g.do(t, "GET", "/nothing/here?x=1", "", nil)
	var body map[string]string
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 404 || body["error"] != "not_found" || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("no route: %d %q", w.Code, w.Body)
	}
	w = g.do(t, "PATCH", "/orders/admin/1", "", nil)
	if w.Code != 405 || w.Header().Get("Allow") != "DELETE, POST, PUT, GET" {
		t.Errorf("method of no route: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	if w := g.do(t, "GET", "/orders/admin/1", "", nil); w.Code != 200 {
		t.Errorf("GET under the GET route: %d", w.Code)
	}
	if up.count() != 1 {
		t.Errorf("upstream got %d requests, want 1", up.count())
	}
}

// TestPathTricks sends paths that an upstream could read as another path
// than the one the gateway routed on: each is refused with 400 and never
// reaches an upstream.
func TestPathTricks(t *testing.T) {
	public, private := newUpstream(t), newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /public/, upstream: '`+public.URL+`', auth: none}
  - {path: /private/, upstream: '`+private.URL+`', roles: [admin]}
`)
	for _, target := range []string{
		"/public/../private/x",
		"/public/%2e%2e/private/x",
		"/public/%2E%2E/private/x",
		"/public/./x",
		"/public/..",
		"/public//x",
		"/public/..%2fprivate/x",
		"/public/%2F..%2Fprivate",
		"/public/..%5cprivate",
		"/public/%252e%252e/private",
		"/public/%252f",
		"/public/a%00b",
		"/public/a%0d%0ab",
	} {
		w := g.do(t, "GET", target, "", nil)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "invalid_request") {
			t.Errorf("GET %s: %d %q, want 400 invalid_request", target, w.Code, w.Body)
		}
	}
	if public.count()+private.count() != 0 {
		t.Errorf("upstreams got %d requests", public.count()+private.count())
	}
	// Ordinary escapes are fine.
	if w := g.do(t, "GET", "/public/a%20b", "", nil); w.Code != 200 || public.last().URL.Path != "/public/a b" {
		t.Errorf("escaped space: %d", w.Code)
	}
}

// TestPathConfusion: with an open route at / and a protected one below
// it, a path that a servlet container or a case-insensitive upstream
// would read as the protected one is refused, not routed to the open
// one.
func TestPathConfusion(t *testing.T) {
	open, admin := newUpstream(t), newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /, upstream: '`+open.URL+`', auth: none}
  - {path: /admin, upstream: '`+admin.URL+`', roles: [admin]}
  - {path: /api/, upstream: '`+open.URL+`', auth: optional}
  - {path: /api/Admin/, upstream: '`+admin.URL+`', roles: [admin]}
`)
	for _, target := range []string{
		"/admin;x=1", "/admin;/users", "/admin%3B/users", "/x;y",
		"/ADMIN/users", "/Admin", "/aDmIn", "/api/admin/x", "/API/ADMIN/x",
		"/API/x", // / would route it, /api/ (with other checks) would serve it
	} {
		w := g.do(t, "GET", target, "", nil)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "invalid_request") {
			t.Errorf("GET %s: %d %q, want 400 invalid_request", target, w.Code, w.Body)
		}
	}
	if open.count()+admin.count() != 0 {
		t.Errorf("upstreams got %d requests", open.count()+admin.count())
	}
	// Paths that merely share letters with a protected route pass.
	for _, target := range []string{"/Administrators", "/about", "/api/x"} {
		if w := g.do(t, "GET", target, "", nil); w.Code != 200 {
			t.Errorf("GET %s: %d, want 200", target, w.Code)
		}
	}
}

// TestForgedIdentityHeaders sends X-Keycard-* headers in every spelling
// a server could confuse with the real ones: none reaches the upstream,
// whatever the route's auth mode, and the real ones are set from the
// token.
func TestForgedIdentityHeaders(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /api/, upstream: '`+up.URL+`'}
  - {path: /open/, upstream: '`+up.URL+`', auth: optional}
  - {path: /public/, upstream: '`+up.URL+`', auth: none}
`)
	forged := http.Header{
		"X-Keycard-Subject": {"root", "admin"},
		"x-keycard-roles":   {"admin"},
		"X-KEYCARD-SCOPES":  {"everything"},
		"X-Keycard-Session": {"stolen"},
		"X_Keycard_Subject": {"root"},
		"x_keycard-roles":   {"admin"},
		"X-Keycard-Future":  {"whatever"},
		"X-Keycard-Actor":   {"trusted-service"},
		"x_keycard_actor":   {"trusted-service"},
		// Hop-by-hop names may not remove the headers the gateway sets.
		"Connection": {"X-Keycard-Subject, X-Keycard-Roles, x-keycard-scopes"},
	}
	tok := g.auth.token(t, "alice", "api", "read write", "user", "editor")
	check := func(name string, wantIdentity bool) {
		t.Helper()
		r := up.last()
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-keycard-") {
				switch {
				case !wantIdentity:
					t.Errorf("%s: upstream got %s: %q", name, k, v)
				case k != HeaderSubject && k != HeaderSession && k != HeaderScopes && k != HeaderRoles:
					t.Errorf("%s: upstream got forged %s: %q", name, k, v)
				}
			}
		}
		if !wantIdentity {
			return
		}
		want := map[string]string{HeaderSubject: "alice", HeaderSession: "sid-alice", HeaderScopes: "read,write", HeaderRoles: "user,editor"}
		for k, v := range want {
			if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s: upstream %s: %q, want [%q]", name, k, got, v)
			}
		}
	}
	for _, tt := range []struct {
		name, path, token string
		identity          bool
	}{
		{"required with token", "/api/x", tok, true},
		{"optional with token", "/open/x", tok, true},
		{"optional anonymous", "/open/x", "", false},
		{"none", "/public/x", "", false},
		{"none with a token", "/public/x", tok, false},
	} {
		r := httptest.NewRequest("GET", tt.path, nil)
		for k, v := range forged {
			r.Header[k] = v // raw keys: as a client could spell them
		}
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s: %d %q", tt.name, w.Code, w.Body)
		}
		check(tt.name, tt.identity)
	}
}

func TestIdentityOfAServiceClient(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+"routes:\n  - {path: /, upstream: '"+up.URL+"'}\n")
	// No sid, no scopes, no roles: only the subject is set.
	tok := g.auth.token(t, "svc", "api", "")
	if w := g.do(t, "GET", "/x", tok, nil); w.Code != 200 {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
	h := up.last().Header
	if h.Get(HeaderSubject) != "svc" {
		t.Errorf("subject %q", h.Get(HeaderSubject))
	}
	if h.Get(HeaderScopes) != "" || h.Get(HeaderRoles) != "" {
		t.Errorf("scopes %q, roles %q; want none", h.Get(HeaderScopes), h.Get(HeaderRoles))
	}
	if h.Get("Authorization") == "" {
		t.Error("Authorization not forwarded (strip_authorization is off)")
	}
	if h.Get("X-Forwarded-For") == "" || h.Get("X-Forwarded-Host") == "" || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-*: %v", h)
	}
}

// newAuthModesGateway is a gateway with a required (/req/), an optional
// (/opt/) and an auth: none (/none/) route to one upstream.
func newAuthModesGateway(t *testing.T) (*testGateway, *upstream) {
	t.Helper()
	up := newUpstream(t)
	return newTestGateway(t, header+`
routes:
  - {path: /req/, upstream: '`+up.URL+`'}
  - {path: /opt/, upstream: '`+up.URL+`', auth: optional}
  - {path: /none/, upstream: '`+up.URL+`', auth: none}
`), up
}

func TestAuthModes(t *testing.T) {
	g, _ := newAuthModesGateway(t)
	good := g.auth.token(t, "alice", "api", "")
	tests := []struct {
		name, path, bearer string
		status             int
		challenge          string // in WWW-Authenticate
	}{
		{"required, no token", "/req/x", "", 401, `Bearer realm="keycard"`},
		{"required, bad token", "/req/x", "not.a.token", 401, `error="invalid_token"`},
		{"required, good token", "/req/x", good, 200, ""},
		{"optional, no token", "/opt/x", "", 200, ""},
		{"optional, bad token", "/opt/x", "not.a.token", 401, `error="invalid_token"`},
		{"optional, good token", "/opt/x", good, 200, ""},
		{"none, no token", "/none/x", "", 200, ""},
		{"none, bad token", "/none/x", "not.a.token", 200, ""},
	}
	for _, tt := range tests {
		w := g.do(t, "GET", tt.path, tt.bearer, nil)
		if w.Code != tt.status || !strings.Contains(w.Header().Get("WWW-Authenticate"), tt.challenge) {
			t.Errorf("%s: %d %q, challenge %q; want %d with %q", tt.name, w.Code, w.Body, w.Header().Get("WWW-Authenticate"), tt.status, tt.challenge)
		}
		if w.Code == 401 && !strings.Contains(w.Body.String(), `"error":"invalid_token"`) {
			t.Errorf("%s: body %q", tt.name, w.Body)
		}
	}
	// A token in the query string is refused, not used and not forwarded.
	if w := g.do(t, "GET", "/opt/x?access_token="+good, "", nil); w.Code != 400 {
		t.Errorf("token in the URL: %d", w.Code)
	}
	// Two Authorization headers: 400.
	if w := g.do(t, "GET", "/req/x", "", http.Header{"Authorization": {"Bearer " + good, "Bearer " + good}}); w.Code != 400 {
		t.Errorf("two Authorization headers: %d", w.Code)
	}
}

func TestScopesAndRoles(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /all-scopes/, upstream: '`+up.URL+`', scopes: [read, write]}
  - {path: /any-scope/, upstream: '`+up.URL+`', any_scopes: [read, write]}
  - {path: /all-roles/, upstream: '`+up.URL+`', roles: [admin, ops]}
  - {path: /any-role/, upstream: '`+up.URL+`', any_roles: [admin, ops]}
  - {path: /both/, upstream: '`+up.URL+`', scopes: [read], any_roles: [admin]}
`)
	tests := []struct {
		path, scope string
		roles       []string
		status      int
		scopeAttr   string // scope="…" in the challenge, for 403
	}{
		{"/all-scopes/", "read write", nil, 200, ""},
		{"/all-scopes/", "write read extra", nil, 200, ""},
		{"/all-scopes/", "read", nil, 403, `scope="read write"`},
		{"/all-scopes/", "", nil, 403, `scope="read write"`},
		{"/any-scope/", "write", nil, 200, ""},
		{"/any-scope/", "other", nil, 403, `scope="read write"`},
		{"/all-roles/", "", []string{"ops", "admin"}, 200, ""},
		{"/all-roles/", "", []string{"admin"}, 403, ""},
		{"/all-roles/", "admin ops", nil, 403, ""}, // scopes are not roles
		{"/any-role/", "", []string{"ops"}, 200, ""},
		{"/any-role/", "", []string{"user"}, 403, ""},
		{"/both/", "read", []string{"admin"}, 200, ""},
		{"/both/", "read", []string{"user"}, 403, ""},
		{"/both/", "", []string{"admin"}, 403, `scope="read"`},
	}
	for _, tt := range tests {
		tok := g.auth.token(t, "alice", "api", tt.scope, tt.roles...)
		w := g.do(t, "GET", tt.path+"x", tok, nil)
		if w.Code != tt.status {
			t.Errorf("%s with scope %q roles %v: %d %q, want %d", tt.path, tt.scope, tt.roles, w.Code, w.Body, tt.status)
			continue
		}
		if w.Code == 403 {
			ch := w.Header().Get("WWW-Authenticate")
			if !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, tt.scopeAttr) || !strings.Contains(w.Body.String(), `"error":"insufficient_scope"`) {
				t.Errorf("%s with scope %q roles %v: challenge %q body %q", tt.path, tt.scope, tt.roles, ch, w.Body)
			}
			if tt.scopeAttr == "" && strings.Contains(ch, "scope=") {
				t.Errorf("%s: a role refusal names scopes: %q", tt.path, ch)
			}
		}
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_auth_failures_total", `reason="insufficient_scope"`); got != 4 {
		t.Errorf("insufficient_scope failures counted: %v, want 4", got)
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_auth_failures_total", `reason="insufficient_role"`); got != 4 {
		t.Errorf("insufficient_role failures counted: %v, want 4", got)
	}
}

func TestAudience(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /api/, upstream: '`+up.URL+`'}
  - {path: /billing/, upstream: '`+up.URL+`', audience: billing}
  - {path: /open/, upstream: '`+up.URL+`', auth: optional, audience: web}
`)
	tests := []struct {
		path, aud string
		status    int
	}{
		{"/api/x", "api", 200},
		{"/api/x", "billing", 401},
		{"/billing/x", "billing", 200},
		{"/billing/x", "api", 401},
		{"/open/x", "web", 200},
		{"/open/x", "api", 401},
	}
	for _, tt := range tests {
		w := g.do(t, "GET", tt.path, g.auth.token(t, "alice", tt.aud, ""), nil)
		if w.Code != tt.status {
			t.Errorf("%s with aud %s: %d, want %d", tt.path, tt.aud, w.Code, tt.status)
		}
		if w.Code == 401 && !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s with aud %s: challenge %q", tt.path, tt.aud, w.Header().Get("WWW-Authenticate"))
		}
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_auth_failures_total", `reason="wrong_audience"`); got != 3 {
		t.Errorf("wrong_audience failures counted: %v, want 3", got)
	}
}

func TestStripAuthorization(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /keep/, upstream: '`+up.URL+`'}
  - {path: /strip/, upstream: '`+up.URL+`', strip_authorization: true}
`)
	tok := g.auth.token(t, "alice", "api", "")
	g.do(t, "GET", "/keep/x", tok, nil)
	if up.last().Header.Get("Authorization") != "Bearer "+tok {
		t.Error("Authorization not forwarded on /keep/")
	}
	g.do(t, "GET", "/strip/x", tok, nil)
	if h := up.last().Header; h.Get("Authorization") != "" || h.Get(HeaderSubject) != "alice" {
		t.Errorf("on /strip/: Authorization %q, subject %q", h.Get("Authorization"), h.Get(HeaderSubject))
	}
}

func TestUpstreamPathAndQuery(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+"routes:\n  - {path: /svc/, upstream: '"+up.URL+"/base/', auth: none}\n")
	g.do(t, "GET", "/svc/a?b=c&d=e", "", nil)
	if r := up.last(); r.URL.Path != "/base/svc/a" || r.URL.RawQuery != "b=c&d=e" {
		t.Errorf("upstream got %s?%s", r.URL.Path, r.URL.RawQuery)
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	g := newTestGateway(t, header+"routes:\n  - {path: /, upstream: 'http://"+addr+"'}\n")
	tok := g.auth.token(t, "alice", "api", "")
	w := g.do(t, "GET", "/x?secret=in-the-query", tok, nil)
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 502 || body["error"] != "bad_gateway" {
		t.Errorf("upstream down: %d %q", w.Code, w.Body)
	}
	logs := g.log.String()
	if !strings.Contains(logs, `"msg":"upstream error"`) || !strings.Contains(logs, `"route":"/"`) {
		t.Errorf("log: %s", logs)
	}
	if strings.Contains(logs, tok) || strings.Contains(logs, "in-the-query") {
		t.Errorf("the log holds the token or the query string: %s", logs)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	g := newTestGateway(t, header+"upstream_timeout: 50ms\nroutes:\n  - {path: /, upstream: '"+slow.URL+"', auth: none}\n")
	w := g.do(t, "GET", "/x", "", nil)
	if w.Code != 504 || !strings.Contains(w.Body.String(), "gateway_timeout") {
		t.Errorf("slow upstream: %d %q, want 504", w.Code, w.Body)
	}
}

// TestUpstreamBreaksOff: an upstream that breaks off its body after the
// headers makes the proxy abort the response (it panics with
// http.ErrAbortHandler, which the server handles by closing the
// connection); the client sees a cut-off body and the request is still
// counted.
func TestUpstreamBreaksOff(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write([]byte("short"))
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}))
	defer broken.Close()
	g := newTestGateway(t, header+"routes:\n  - {path: /, upstream: '"+broken.URL+"', auth: none}\n")
	srv := httptest.NewServer(g)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a cut-off body arrived whole")
	}
	eventually(t, "request counted", func() bool {
		return testutilCount(t, g.Metrics(), "keycard_gateway_requests_total", `route="/"`) == 1
	})
}

// TestWebSocket proxies a WebSocket upgrade to a hand-written upstream
// that echoes bytes, with the token in the Sec-WebSocket-Protocol offer
// as browsers must send it.
func TestWebSocket(t *testing.T) {
	gotHeaders := make(chan http.Header, 1)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", 400)
			return
		}
		gotHeaders <- r.Header.Clone()
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the client closes
	}))
	defer echo.Close()
	g := newTestGateway(t, header+"routes:\n  - {path: /ws/, upstream: '"+echo.URL+"', scopes: [chat]}\n")
	srv := httptest.NewServer(g)
	defer srv.Close()

	dial := func(protocols string) (net.Conn, *bufio.Reader, *http.Response) {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET /ws/room HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
			"X-Keycard-Subject: root\r\nSec-WebSocket-Protocol: "+protocols+"\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return conn, br, resp
	}

	// Without a token: 401, no upgrade.
	conn, _, resp := dial("chat")
	conn.Close()
	if resp.StatusCode != 401 {
		t.Errorf("upgrade without a token: %d", resp.StatusCode)
	}
	// With a token lacking the scope: 403.
	conn, _, resp = dial("keycard.bearer." + g.auth.token(t, "alice", "api", "other") + ", chat")
	conn.Close()
	if resp.StatusCode != 403 {
		t.Errorf("upgrade without the scope: %d", resp.StatusCode)
	}

	tok := g.auth.token(t, "alice", "api", "chat")
	conn, br, resp := dial("keycard.bearer." + tok + ", chat")
	defer conn.Close()
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "chat" {
		t.Fatalf("upgrade: %d %v", resp.StatusCode, resp.Header)
	}
	h := <-gotHeaders
	if h.Get(HeaderSubject) != "alice" || h.Get(HeaderScopes) != "chat" {
		t.Errorf("upstream identity: subject %q scopes %q", h.Get(HeaderSubject), h.Get(HeaderScopes))
	}
	if p := h.Values("Sec-WebSocket-Protocol"); len(p) != 1 || p[0] != "chat" {
		t.Errorf("upstream Sec-WebSocket-Protocol %q: the token offer must be removed", p)
	}
	for _, msg := range []string{"hello", "über"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo: %q %v, want %q", buf, err, msg)
		}
	}
	conn.Close()
	eventually(t, "upgrade counted as 101", func() bool {
		return testutilCount(t, g.Metrics(), "keycard_gateway_requests_total", `code="101"`) == 1
	})
	if strings.Contains(g.log.String(), tok) {
		t.Error("the token reached the log")
	}
}

func TestReservedPaths(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+"routes:\n  - {path: /, upstream: '"+up.URL+"', auth: none}\n")
	if w := g.do(t, "GET", "/healthz", "", nil); w.Code != 200 {
		t.Errorf("healthz: %d", w.Code)
	}
	g.auth.setReady(errNotReady)
	w := g.do(t, "GET", "/readyz", "", nil)
	if w.Code != 503 || !strings.Contains(w.Body.String(), "revocation feed not loaded") {
		t.Errorf("readyz while not ready: %d %q", w.Code, w.Body)
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_verifier_ready", ""); got != 0 {
		t.Errorf("verifier_ready while not ready: %v", got)
	}
	g.auth.setReady(nil)
	if w := g.do(t, "GET", "/readyz", "", nil); w.Code != 200 {
		t.Errorf("readyz when ready: %d %q", w.Code, w.Body)
	}
	if w := g.do(t, "POST", "/healthz", "", nil); w.Code != 405 {
		t.Errorf("POST /healthz: %d", w.Code)
	}
	w = g.do(t, "GET", "/metrics", "", nil)
	if w.Code != 200 || !contains(w.Body.String(), "keycard_gateway_requests_total", "keycard_gateway_verifier_ready 1", "keycard_gateway_config_reloads_total") {
		t.Errorf("metrics: %d %.500s", w.Code, w.Body)
	}
	if up.count() != 0 {
		t.Error("a reserved path reached the upstream")
	}
	// Paths next to the reserved ones are routed.
	if w := g.do(t, "GET", "/healthz/x", "", nil); w.Code != 200 || up.count() != 1 {
		t.Errorf("/healthz/x: %d", w.Code)
	}
}

func TestMetricsListener(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+"metrics_listen: 127.0.0.1:0\nroutes:\n  - {path: /, upstream: '"+up.URL+"', auth: none}\n")
	if w := g.do(t, "GET", "/metrics", "", nil); w.Code != 404 {
		t.Errorf("/metrics on the proxy listener with metrics_listen: %d", w.Code)
	}
	if up.count() != 0 {
		t.Error("/metrics reached the upstream")
	}
	admin := g.AdminHandler()
	for path, want := range map[string]int{"/metrics": 200, "/healthz": 200, "/readyz": 200, "/other": 404} {
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("admin %s: %d, want %d", path, w.Code, want)
		}
	}
}

func TestAccessLog(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+"routes:\n  - {path: /api/, upstream: '"+up.URL+"'}\n")
	tok := g.auth.token(t, "alice", "api", "")
	g.do(t, "GET", "/api/x?q=private", tok, nil)
	g.do(t, "GET", "/api/y", "", nil)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(g.log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("access log lines: %v", lines)
	}
	a, b := lines[0], lines[1]
	if a["method"] != "GET" || a["path"] != "/api/x" || a["route"] != "/api/" || a["status"] != 200.0 || a["subject"] != "alice" || a["duration_ms"] == nil {
		t.Errorf("access log: %v", a)
	}
	if b["status"] != 401.0 || b["subject"] != "" {
		t.Errorf("access log of a refusal: %v", b)
	}
	if logs := g.log.String(); strings.Contains(logs, tok) || strings.Contains(logs, "private") {
		t.Errorf("the log holds the token or the query: %s", logs)
	}

	// access_log: false turns it off.
	quiet := newTestGateway(t, header+"access_log: false\nroutes:\n  - {path: /api/, upstream: '"+up.URL+"'}\n")
	quiet.do(t, "GET", "/api/x", "", nil)
	if strings.Contains(quiet.log.String(), `"msg":"request"`) {
		t.Errorf("access log written with access_log: false: %s", quiet.log)
	}
}

// TestQueryTokens sends a token in the query string, in the spellings
// that PHP or Rails reads as access_token, to a required, an optional and
// an auth: none route, with and without a valid Authorization header:
// every one is refused with 400 and reaches no upstream.
func TestQueryTokens(t *testing.T) {
	g, up := newAuthModesGateway(t)
	good := g.auth.token(t, "alice", "api", "")
	for _, name := range []string{
		"access_token", "ACCESS_TOKEN", "Access_Token", "access%5Ftoken", "%61ccess_token",
		"access.token", "access+token", "access%20token", "access%5btoken", "access[token",
		"access_token[]", "access_token%5B%5D", "access_token[x]", "access.token[]",
	} {
		for _, path := range []string{"/req/x", "/opt/x", "/none/x"} {
			for _, bearer := range []string{"", good} {
				target := path + "?page=1&" + name + "=" + good
				w := g.do(t, "GET", target, bearer, nil)
				if w.Code != 400 || !strings.Contains(w.Body.String(), `"error":"invalid_request"`) {
					t.Errorf("GET %s?…&%s=<token> (header: %v): got %d %q, want 400 invalid_request", path, name, bearer != "", w.Code, w.Body)
				}
			}
		}
	}
	if n := up.count(); n != 0 {
		t.Fatalf("the upstream got %d requests, want none", n)
	}
	if got := testutilCount(t, g.metrics, "keycard_gateway_auth_failures_total", `reason="malformed_request"`); got == 0 {
		t.Error("refusals not counted as malformed_request")
	}
	// A query without a token still passes on every route.
	for _, path := range []string{"/req/x", "/opt/x", "/none/x"} {
		if w := g.do(t, "GET", path+"?access_level=2", good, nil); w.Code != 200 {
			t.Errorf("GET %s?access_level=2: got %d %q, want 200", path, w.Code, w.Body)
		}
	}
}

// TestActorHeader forwards the actor chain of an exchanged token (RFC 8693
// act claim) as X-Keycard-Actor, most recent first; a token without act
// gets none, and a client's forged copy never passes.
func TestActorHeader(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+"routes:\n  - {path: /, upstream: '"+up.URL+"'}\n")
	now := time.Now()
	delegated, err := jwt.Sign(g.auth.key, &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: "alice", Audience: jwt.Audience{"api"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "jti-delegated",
		},
		SessionID: "sid-alice", ClientID: "service-b", Scope: "read",
		Act: &jwt.Actor{Subject: "service-b", Act: &jwt.Actor{Subject: "service-a"}},
	}, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	forged := http.Header{"X-Keycard-Actor": {"root"}}
	if w := g.do(t, "GET", "/x", delegated, forged); w.Code != 200 {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
	if got := up.last().Header.Values(HeaderActor); len(got) != 1 || got[0] != "service-b,service-a" {
		t.Errorf("delegated token: upstream %s %q, want [service-b,service-a]", HeaderActor, got)
	}
	if w := g.do(t, "GET", "/x", g.auth.token(t, "alice", "api", "read"), forged); w.Code != 200 {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
	if got := up.last().Header.Values(HeaderActor); len(got) != 0 {
		t.Errorf("the user's own token: upstream %s %q, want none", HeaderActor, got)
	}
}
