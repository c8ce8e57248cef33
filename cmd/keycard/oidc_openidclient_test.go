package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keycard-auth/keycard/internal/chrometest"
	"github.com/keycard-auth/keycard/jose"
)

// openidClientDir holds the relying party written with openid-client
// (rp.mjs) and its locked dependencies; .ci/run runs npm ci there.
const openidClientDir = "../../interop/openid-client"

// nodeRP returns node's path, skipping the test without node or without
// the script's node_modules, unless KEYCARD_TEST_NODE=1 (CI), which makes
// it fail instead.
func nodeRP(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(openidClientDir, "node_modules", "openid-client", "package.json"))
	}
	if err != nil {
		if os.Getenv("KEYCARD_TEST_NODE") == "1" {
			t.Fatalf("KEYCARD_TEST_NODE=1 but no node or no openid-client (npm ci in interop/openid-client): %v", err)
		}
		t.Skipf("skipping: no node or no openid-client (npm ci in interop/openid-client; KEYCARD_TEST_NODE=1 makes this fail): %v", err)
	}
	return node
}

// rpMessage is a line of rp.mjs's output.
type rpMessage struct {
	Step string `json:"step"`
	URL  string `json:"url"`
	// signed-in, par-done, device-done
	Sub, SID, Username, UsernameAfterRefresh, AccessToken string
	TokenType, RefreshedTokenType                         string
	ResourceStatus                                        int
	ResourceBody                                          string
	IntrospectedActive                                    bool
	IntrospectedSub                                       string
	RefreshAfterRevocation                                string
	// device
	UserCode, VerificationURI, VerificationURIComplete string
	Interval                                           int
	// logout
	State string
	// done
	RefreshAfterLogout string
}

// TestOpenIDClient runs a relying party written with openid-client v6
// for Node.js (interop/openid-client/rp.mjs) against a real keycard
// serve, with Chromium as the browser: discovery, the authorization URL
// with PKCE, state and nonce; the callback checked (state, iss) and the
// code exchanged, the ID token validated; userinfo; a refresh; the
// pushed authorization request, introspection and revocation; the
// device grant, approved at /device in the same browser; the
// end-session URL, which signs the browser out and comes back to the
// post-logout URI; after it, the refresh token is refused.
// It runs twice: the client authenticating with its secret
// (client_secret_post, openid-client's default), then with
// private_key_jwt, its assertions signed by openid-client.
func TestOpenIDClient(t *testing.T) {
	node := nodeRP(t)
	// "dpop": client_secret_post, with a DPoP key (RFC 9449) for the code
	// grant, the refresh and userinfo.
	for _, method := range []string{"client_secret_post", "private_key_jwt", "dpop"} {
		t.Run(method, func(t *testing.T) { testOpenIDClient(t, node, method) })
	}
}

func testOpenIDClient(t *testing.T, node, method string) {
	browser := chrometest.Start(t)
	s, admin := interopServer(t)

	ln, base := loopbackListener(t)
	callbacks := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		callbacks <- base + r.URL.RequestURI()
		fmt.Fprint(w, "<!doctype html><title>rp</title><h1>Callback</h1>")
	})
	loggedOut := make(chan string, 1)
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		loggedOut <- r.URL.Query().Get("state")
		fmt.Fprint(w, "<!doctype html><title>rp</title><h1>Signed out</h1>")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	registration := fmt.Sprintf(`"name":"openid-client app","first_party":true,
		"grant_types":["authorization_code","refresh_token","urn:ietf:params:oauth:grant-type:device_code"],
		"redirect_uris":[%q],"post_logout_redirect_uris":[%q]`, base+"/callback", base+"/logged-out")
	var env []string
	if method == "private_key_jwt" {
		key, err := jose.GenerateKey(jose.ES256, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if key, err = key.WithKeyID("rp-1"); err != nil {
			t.Fatal(err)
		}
		set, err := jose.NewKeySet(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		jwks, _ := json.Marshal(set)
		private, err := key.MarshalPrivateJWK()
		if err != nil {
			t.Fatal(err)
		}
		registration += `,"token_endpoint_auth_method":"private_key_jwt","jwks":` + string(jwks)
		env = append(env, "KEYCARD_RP_PRIVATE_JWK="+string(private))
	}
	var (
		up       *recordingUpstream
		resource string // behind the gateway
	)
	if method == "dpop" {
		resource, up = dpopResource(t, s)
		env = append(env, "KEYCARD_RP_DPOP=1", "KEYCARD_RP_RESOURCE="+resource)
	}
	clientID, secret := registerClient(t, s, admin, "{"+registration+"}")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "rp.mjs", s.base, clientID, secret, base+"/callback", base+"/logged-out")
	cmd.Dir = openidClientDir
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	messages := make(chan rpMessage)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m rpMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = rpMessage{Step: "unreadable: " + sc.Text()}
			}
			messages <- m
		}
		io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
		close(messages)
	}()
	t.Cleanup(func() {
		cancel()
		for range messages {
		}
	})
	next := func(step string) rpMessage {
		t.Helper()
		select {
		case m, ok := <-messages:
			if !ok || m.Step != step {
				t.Fatalf("openid-client: got step %q (ended: %t), want %q; stderr:\n%s", m.Step, !ok, step, stderr.String())
			}
			return m
		case <-time.After(90 * time.Second):
			t.Fatalf("openid-client: no step %q; stderr:\n%s", step, stderr.String())
		}
		return rpMessage{}
	}
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatalf("writing to rp.mjs: %v; stderr:\n%s", err, stderr.String())
		}
	}
	wait := func(ch chan string) string {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(30 * time.Second):
			t.Fatal("the browser did not come back to the app")
			return ""
		}
	}

	b := newTab(t, browser)
	auth := next("authorize")
	if !strings.HasPrefix(auth.URL, s.base+"/oauth/authorize?") {
		t.Errorf("authorization URL %s", auth.URL)
	}
	b.do("the authorization URL to the sign-in page", chromedp.Navigate(auth.URL), chromedp.WaitVisible(chromedp.ID("username")))
	b.do("signing in", signIn(), h1Is("Callback"))
	send(wait(callbacks))

	in := next("signed-in")
	if in.Sub == "" || in.SID == "" || in.Username != "alice" || in.UsernameAfterRefresh != "alice" {
		t.Errorf("signed in: %+v", in)
	}
	if method == "dpop" {
		// Bound to openid-client's key: the token alone, as a bearer
		// token, is refused.
		if !strings.EqualFold(in.TokenType, "DPoP") || !strings.EqualFold(in.RefreshedTokenType, "DPoP") {
			t.Errorf("token types %q and %q, want DPoP", in.TokenType, in.RefreshedTokenType)
		}
		msg, err := jose.UnsafeParse(in.AccessToken)
		var c struct {
			Cnf struct {
				JKT string `json:"jkt"`
			} `json:"cnf"`
		}
		if err != nil || json.Unmarshal(msg.Payload, &c) != nil || c.Cnf.JKT == "" {
			t.Errorf("openid-client's DPoP access token has no cnf.jkt (%v)", err)
		}
		if code, _ := userInfo(t, s, in.AccessToken); code != http.StatusUnauthorized {
			t.Errorf("userinfo with openid-client's DPoP-bound token as a bearer token: %d, want 401", code)
		}
		// Through the gateway with openid-client's proof: the upstream
		// sees alice and the key; the same token alone does not pass.
		if in.ResourceStatus != http.StatusOK {
			t.Errorf("openid-client through the gateway: %d %s", in.ResourceStatus, in.ResourceBody)
		} else if h := up.last(); h == nil || h.Get("X-Keycard-Subject") != in.Sub || h.Get("X-Keycard-Key-Thumbprint") != c.Cnf.JKT {
			t.Errorf("the upstream got %v; want alice's subject %q and the key %q", h, in.Sub, c.Cnf.JKT)
		}
		if code, _ := call(t, "GET", resource, in.AccessToken, "", "", nil); code != http.StatusUnauthorized {
			t.Errorf("the same token as a bearer token at the gateway: %d, want 401", code)
		}
	} else if code, name := userInfo(t, s, in.AccessToken); code != http.StatusOK || name != "alice" {
		t.Errorf("userinfo with openid-client's refreshed token: %d %q", code, name)
	}
	if !in.IntrospectedActive || in.IntrospectedSub != in.Sub {
		t.Errorf("introspection of the access token: active %t, sub %q", in.IntrospectedActive, in.IntrospectedSub)
	}

	// The pushed request: signed in already, the browser comes straight
	// back with a code.
	par := next("authorize-par")
	if u, err := url.Parse(par.URL); err != nil || !strings.HasPrefix(par.URL, s.base+"/oauth/authorize?") || !strings.HasPrefix(u.Query().Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Errorf("authorization URL of the pushed request %s", par.URL)
	}
	b.do("the pushed request", chromedp.Navigate(par.URL), h1Is("Callback"))
	send(wait(callbacks))
	if done := next("par-done"); done.Sub != in.Sub || done.RefreshAfterRevocation != "invalid_grant" || done.IntrospectedActive {
		t.Errorf("pushed request, then revocation: %+v; want the same sub, invalid_grant and inactive", done)
	}

	dev := next("device")
	if dev.VerificationURI != s.base+"/device" || dev.VerificationURIComplete != s.base+"/device?user_code="+dev.UserCode || dev.Interval <= 0 {
		t.Errorf("device authorization: %+v", dev)
	}
	b.do("the device page", chromedp.Navigate(dev.VerificationURIComplete), chromedp.WaitVisible(chromedp.ID("device-continue")), chromedp.Click(chromedp.ID("device-continue")),
		chromedp.WaitVisible(chromedp.ID("device-approve")))
	b.do("approving the device", chromedp.Click(chromedp.ID("device-approve")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	if done := next("device-done"); done.Sub != in.Sub || done.Username != "alice" {
		t.Errorf("device grant: %+v, want alice's sub %q", done, in.Sub)
	}

	out := next("logout")
	if !strings.HasPrefix(out.URL, s.base+"/oauth/logout?") {
		t.Errorf("end-session URL %s", out.URL)
	}
	b.do("the end-session URL", chromedp.Navigate(out.URL), h1Is("Signed out"))
	if state := wait(loggedOut); state != out.State {
		t.Errorf("post-logout redirect with state %q, want %q", state, out.State)
	}
	send("logged out")
	if done := next("done"); done.RefreshAfterLogout != "invalid_grant" {
		t.Errorf("a refresh after the logout: %q, want invalid_grant", done.RefreshAfterLogout)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("rp.mjs: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Error("rp.mjs did not exit")
	}
}

// dpopResource starts keycard gateway, following s's feed, in front of a
// recording upstream on a route that requires DPoP (/orders/), and
// returns a URL under that route.
func dpopResource(t *testing.T, s *runningServer) (string, *recordingUpstream) {
	t.Helper()
	up := newRecordingUpstream(t)
	feed := addClient(t, s.data, "--name", "gateway")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	config := fmt.Sprintf("listen: 127.0.0.1:0\nissuer: %s\naudience: api\nclient: {id: %s, secret_file: feed.secret}\nroutes:\n  - path: /orders/\n    upstream: %s\n    dpop: required\n",
		s.base, feed.ClientID, up.URL)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})
	return g.base + "/orders/7", up
}
