package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/internal/demo"
	"github.com/keycard-auth/keycard/internal/tracing/otlptest"
)

// TestServeAndGatewayExportTraces runs keycard serve and keycard gateway
// with --otlp-endpoint pointing at an OTLP/HTTP receiver: the token
// request's span reaches it from the server, a request through the
// gateway continues the caller's trace in the gateway's spans, whose
// context the upstream receives, and at shutdown both flush what they
// queued. Neither the token nor the client secret is in any span.
func TestServeAndGatewayExportTraces(t *testing.T) {
	col := otlptest.NewReceiver(t)
	s := startServer(t, "--otlp-endpoint", col.URL)
	feed := addClient(t, s.data, "--name", "gateway")
	app := addClient(t, s.data, "--name", "weather app", "--scope", "weather:read")
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	config := fmt.Sprintf(`
listen: 127.0.0.1:0
issuer: %s
audience: api
client: {id: %s, secret_file: feed.secret}
otlp_endpoint: http://127.0.0.1:1  # the flag below wins
routes:
  - path: /weather/
    upstream: %s
    scopes: [weather:read]
`, s.base, feed.ClientID, up.URL)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath, "--otlp-endpoint", col.URL)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})

	token := clientToken(t, s, app, "weather:read")
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req, _ := http.NewRequest(http.MethodGet, g.base+"/weather/today?code=c0de-from-the-query", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("through the gateway: %d", res.StatusCode)
	}
	sent := up.last().Get("Traceparent")
	if !strings.HasPrefix(sent, "00-"+traceID+"-") || strings.Contains(sent, parentID) {
		t.Errorf("the upstream got traceparent %q: want the caller's trace, under the gateway's span", sent)
	}
	if code := g.stop(); code != 0 {
		t.Errorf("gateway exit %d", code)
	}
	if code := s.stop(); code != 0 {
		t.Errorf("serve exit %d", code)
	}

	byName := map[string]otlptest.Span{}
	for _, sp := range col.Spans() {
		byName[sp.Service+" "+sp.Name] = sp
	}
	tokenSpan, ok := byName["keycard POST /oauth/token"]
	if !ok {
		t.Fatalf("no token request span from keycard serve among %v", keys(byName))
	}
	if tokenSpan.Attr("http.response.status_code") != "200" {
		t.Errorf("token span attributes: %v", tokenSpan.Attributes)
	}
	gwServer, ok1 := byName["keycard-gateway GET /weather/"]
	gwClient, ok2 := byName["keycard-gateway GET"]
	if !ok1 || !ok2 {
		t.Fatalf("gateway spans missing among %v", keys(byName))
	}
	if gwServer.TraceID() != traceID || gwServer.ParentID() != parentID {
		t.Errorf("gateway server span in trace %s under %s, want %s under %s", gwServer.TraceID(), gwServer.ParentID(), traceID, parentID)
	}
	if gwClient.ParentID() != gwServer.SpanID() || sent != "00-"+traceID+"-"+gwClient.SpanID()+"-01" {
		t.Errorf("gateway client span %s under %s; upstream got %q", gwClient.SpanID(), gwClient.ParentID(), sent)
	}
	for _, text := range col.Texts() {
		for name, secret := range map[string]string{"token": token, "client secret": app.ClientSecret, "feed secret": feed.ClientSecret, "code": "c0de-from-the-query"} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s is in a span: %q", name, text)
			}
		}
	}
}

func keys(m map[string]otlptest.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTracingFlagsRefuseBadEndpoints: an endpoint with credentials or of
// the wrong scheme is a usage error that does not repeat the URL.
func TestTracingFlagsRefuseBadEndpoints(t *testing.T) {
	for _, endpoint := range []string{"https://user:s3cret@collector:4318", "grpc://collector:4317"} {
		code, _, errOut := run(t, "", "serve", "--dev", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--otlp-endpoint", endpoint)
		if code == 0 || !strings.Contains(errOut, "--otlp-endpoint") || strings.Contains(errOut, "s3cret") {
			t.Errorf("serve --otlp-endpoint %s: exit %d, stderr %q", endpoint, code, errOut)
		}
	}
	for _, endpoint := range []string{"https://user:s3cret@collector:4318", "grpc://collector:4317"} {
		data := t.TempDir()
		code, _, errOut := run(t, "", "demo", "--data", data, "--auth-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0",
			"--travel-addr", "127.0.0.1:0", "--otlp-endpoint", endpoint)
		if code != exitUsage || !strings.Contains(errOut, "--otlp-endpoint") || strings.Contains(errOut, "s3cret") {
			t.Errorf("demo --otlp-endpoint %s: exit %d, stderr %q", endpoint, code, errOut)
		}
		if entries, _ := os.ReadDir(data); len(entries) != 0 {
			t.Errorf("demo --otlp-endpoint %s wrote to its data directory: %v", endpoint, entries)
		}
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(configPath, []byte("issuer: http://127.0.0.1:4000\nclient: {id: g, secret_file: s}\nroutes: [{path: /a/, upstream: 'http://127.0.0.1:9'}]\n"), 0o600)
	code, _, errOut := run(t, "", "gateway", "--config", configPath, "--otlp-endpoint", "https://user:s3cret@collector:4318")
	if code != exitUsage || !strings.Contains(errOut, "otlp_endpoint") || strings.Contains(errOut, "s3cret") {
		t.Errorf("gateway --otlp-endpoint with credentials: exit %d, stderr %q", code, errOut)
	}
}

// TestDemoExportsTraces: keycard demo --otlp-endpoint sends the auth
// server's and the gateway's spans to the collector, as serve and gateway
// do with the same flag, and flushes them when it stops; no token is in
// any span.
func TestDemoExportsTraces(t *testing.T) {
	col := otlptest.NewReceiver(t)
	d := startDemo(t, t.TempDir(), "--otlp-endpoint", col.URL)
	var login tokenResponse
	body := `{"username":"` + demo.User + `","password":"` + d.demoPassword + `"}`
	if code, raw := call(t, "POST", d.auth+"/v1/login", "", "application/json", body, &login); code != http.StatusOK {
		t.Fatalf("login: %d %s", code, raw)
	}
	expectStatus(t, "GET", d.gateway+"/weather/paris", login.AccessToken, nil, "", http.StatusOK)
	if code := d.stop(); code != 0 {
		t.Fatalf("demo exit %d", code)
	}
	seen := map[string]bool{}
	for _, sp := range col.Spans() {
		seen[sp.Service+" "+sp.Name] = true
	}
	for _, want := range []string{"keycard POST /v1/login", "keycard-gateway GET /weather/"} {
		if !seen[want] {
			t.Errorf("no span %q among %v", want, seen)
		}
	}
	for _, text := range col.Texts() {
		if strings.Contains(text, login.AccessToken) || strings.Contains(text, d.demoPassword) {
			t.Errorf("a span holds the token or the password: %q", text)
		}
	}
}
