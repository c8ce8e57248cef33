package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
)

// dpopProver returns a client's DPoP key and prover.
func dpopProver(t *testing.T) *dpop.Prover {
	t.Helper()
	p, err := dpop.GenerateProver(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dpopDo sends method to u with the Authorization and DPoP headers given
// (empty: none) and returns the answer's status, headers and body.
func dpopDo(t *testing.T, method, u, authorization, proof, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestDPoPEndToEnd runs a real auth server and a real gateway, and a
// client holding an ECDSA key: its DPoP-bound token works through the
// gateway only with a fresh proof of its key; stolen, the token is
// refused as a bearer token, with the thief's own key, and with a
// replayed proof.
func TestDPoPEndToEnd(t *testing.T) {
	s := startServer(t)
	feed := addClient(t, s.data, "--name", "gateway")
	app := addClient(t, s.data, "--name", "weather app", "--scope", "weather:read", "--dpop", "required")
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	config := fmt.Sprintf(`
listen: 127.0.0.1:0
issuer: %s
audience: api
client: {id: %s, secret_file: feed.secret}
routes:
  - path: /weather/
    upstream: %s
    scopes: [weather:read]
    dpop: required
`, s.base, feed.ClientID, up.URL)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})

	client, thief := dpopProver(t), dpopProver(t)
	tokenURL := s.base + "/oauth/token"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}.Encode()
	// The client's policy requires DPoP: no proof, no token.
	if code, _, body := dpopDo(t, "POST", tokenURL, "", "", form); code != http.StatusBadRequest || !strings.Contains(string(body), "invalid_dpop_proof") {
		t.Fatalf("token without a proof: %d %s", code, body)
	}
	proof, err := client.Proof("POST", tokenURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := dpopDo(t, "POST", tokenURL, "", proof, form)
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); code != http.StatusOK || err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("token with a proof: %d %s", code, body)
	}

	target := g.base + "/weather/today"
	use := func(p *dpop.Prover) string {
		proof, err := p.Proof("GET", target, tok.AccessToken, "")
		if err != nil {
			t.Fatal(err)
		}
		return proof
	}
	fresh := use(client)
	if code, _, body := dpopDo(t, "GET", target+"?city=paris", "DPoP "+tok.AccessToken, fresh, ""); code != http.StatusOK {
		t.Fatalf("the key holder through the gateway: %d %s", code, body)
	}
	if got := up.last().Get("X-Keycard-Key-Thumbprint"); got != client.Thumbprint() {
		t.Errorf("upstream saw X-Keycard-Key-Thumbprint %q, want %q", got, client.Thumbprint())
	}
	for name, req := range map[string][2]string{
		"stolen token as Bearer":         {"Bearer " + tok.AccessToken, ""},
		"stolen token, the thief's key":  {"DPoP " + tok.AccessToken, use(thief)},
		"the client's proof, replayed":   {"DPoP " + tok.AccessToken, fresh},
		"stolen token, no proof":         {"DPoP " + tok.AccessToken, ""},
		"a proof for another path":       {"DPoP " + tok.AccessToken, mustProofFor(t, client, "GET", g.base+"/weather/admin", tok.AccessToken)},
		"a proof for the upstream's URL": {"DPoP " + tok.AccessToken, mustProofFor(t, client, "GET", up.URL+"/weather/today", tok.AccessToken)},
	} {
		code, h, body := dpopDo(t, "GET", target, req[0], req[1], "")
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "DPoP ") {
			t.Errorf("%s: got %d %q %s, want 401 with a DPoP challenge", name, code, h.Get("WWW-Authenticate"), body)
		}
	}
}

func mustProofFor(t *testing.T, p *dpop.Prover, method, u, token string) string {
	t.Helper()
	proof, err := p.Proof(method, u, token, "")
	if err != nil {
		t.Fatal(err)
	}
	return proof
}

// TestDPoPNonceEndToEnd: with --dpop-nonce the token endpoint answers a
// proof without the server's nonce use_dpop_nonce with a DPoP-Nonce, and
// takes the proof made again with it; a made-up nonce is refused.
func TestDPoPNonceEndToEnd(t *testing.T) {
	s := startServer(t, "--dpop-nonce")
	app := addClient(t, s.data, "--name", "svc", "--scope", "weather:read")
	client := dpopProver(t)
	tokenURL := s.base + "/oauth/token"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}.Encode()
	withNonce := func(nonce string) (int, http.Header, []byte) {
		proof, err := client.Proof("POST", tokenURL, "", nonce)
		if err != nil {
			t.Fatal(err)
		}
		return dpopDo(t, "POST", tokenURL, "", proof, form)
	}
	code, h, body := withNonce("")
	nonce := h.Get("DPoP-Nonce")
	if code != http.StatusBadRequest || !strings.Contains(string(body), "use_dpop_nonce") || nonce == "" {
		t.Fatalf("no nonce: got %d, DPoP-Nonce %q, %s", code, nonce, body)
	}
	if code, _, body := withNonce("made-up"); code != http.StatusBadRequest || !strings.Contains(string(body), "use_dpop_nonce") {
		t.Errorf("a made-up nonce: got %d %s", code, body)
	}
	if code, _, body := withNonce(nonce); code != http.StatusOK || !strings.Contains(string(body), `"token_type":"DPoP"`) {
		t.Errorf("the server's nonce: got %d %s", code, body)
	}
}

// TestDPoPReplayAcrossGateways: two gateway instances behind one public
// URL (as behind a load balancer). Each alone lets a proof accepted by
// the other through once more within its window; with --redis they share
// the replay cache and the replay is refused.
func TestDPoPReplayAcrossGateways(t *testing.T) {
	redis := redisURL(t)
	s := startServer(t)
	feed := addClient(t, s.data, "--name", "gateway")
	app := addClient(t, s.data, "--name", "svc", "--scope", "weather:read")
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	const public = "https://api.example.com"
	if err := os.WriteFile(configPath, fmt.Appendf(nil, `
listen: 127.0.0.1:0
issuer: %s
audience: api
public_url: %s
client: {id: %s, secret_file: feed.secret}
routes:
  - path: /weather/
    upstream: %s
`, s.base, public, feed.ClientID, up.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	client := dpopProver(t)
	tokenURL := s.base + "/oauth/token"
	proof, err := client.Proof("POST", tokenURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := dpopDo(t, "POST", tokenURL, "", proof, url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}.Encode())
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("token: %s", body)
	}
	ready := func(g *gatewayProc) {
		eventually(t, "gateway ready", func() bool {
			code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
			return code == http.StatusOK
		})
	}
	replayTo := func(a, b *gatewayProc) (first, second int) {
		p, err := client.Proof("GET", public+"/weather/today", tok.AccessToken, "")
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ = dpopDo(t, "GET", a.base+"/weather/today", "DPoP "+tok.AccessToken, p, "")
		second, _, _ = dpopDo(t, "GET", b.base+"/weather/today", "DPoP "+tok.AccessToken, p, "")
		return first, second
	}

	a, b := startGateway(t, configPath), startGateway(t, configPath)
	ready(a)
	ready(b)
	if first, second := replayTo(a, b); first != http.StatusOK || second != http.StatusOK {
		t.Errorf("each instance alone: got %d then %d, want 200 twice (the window each instance leaves open)", first, second)
	}
	a.stop()
	b.stop()

	// A Redis call slower than --redis-timeout falls back to the instance's
	// own cache, which would let the replay through: on a loaded machine
	// the first call (which dials) can take longer than the default 100 ms.
	a, b = startGateway(t, configPath, "--redis", redis, "--redis-timeout", "30s"), startGateway(t, configPath, "--redis", redis, "--redis-timeout", "30s")
	ready(a)
	ready(b)
	if first, second := replayTo(a, b); first != http.StatusOK || second != http.StatusUnauthorized {
		t.Errorf("sharing Redis: got %d then %d, want 200 then 401", first, second)
	}
}

// TestDPoPGatewayNonce: with dpop_nonce_secret_file the gateway answers
// a proof without its nonce 401 use_dpop_nonce with a DPoP-Nonce, and
// takes the proof made again with it.
func TestDPoPGatewayNonce(t *testing.T) {
	s := startServer(t)
	feed := addClient(t, s.data, "--name", "gateway")
	app := addClient(t, s.data, "--name", "svc", "--scope", "weather:read")
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	for name, secret := range map[string]string{"feed.secret": feed.ClientSecret, "nonce.secret": "a nonce key of at least thirty-two bytes, shared"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(configPath, fmt.Appendf(nil, `
listen: 127.0.0.1:0
issuer: %s
audience: api
dpop_nonce_secret_file: nonce.secret
client: {id: %s, secret_file: feed.secret}
routes:
  - path: /weather/
    upstream: %s
`, s.base, feed.ClientID, up.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})
	client := dpopProver(t)
	tokenURL := s.base + "/oauth/token"
	_, _, body := dpopDo(t, "POST", tokenURL, "", mustProofFor(t, client, "POST", tokenURL, ""),
		url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}.Encode())
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("token: %s", body)
	}
	target := g.base + "/weather/today"
	withNonce := func(nonce string) (int, http.Header, []byte) {
		proof, err := client.Proof("GET", target, tok.AccessToken, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return dpopDo(t, "GET", target, "DPoP "+tok.AccessToken, proof, "")
	}
	code, h, body := withNonce("")
	nonce := h.Get("DPoP-Nonce")
	if code != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("no nonce: got %d, WWW-Authenticate %q, DPoP-Nonce %q, %s", code, h.Get("WWW-Authenticate"), nonce, body)
	}
	if code, _, body := withNonce(nonce); code != http.StatusOK {
		t.Errorf("with the gateway's nonce: %d %s", code, body)
	}
}
