package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/federation"
)

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFederationProvidersAPI adds a provider through the admin API at a
// downstream Keycard whose configuration file has another, signs in
// through it at an upstream Keycard, rotates its secret, removes it: the
// sign-in is then refused. Malformed and forbidden changes get a 4xx;
// the secret is in no answer, no log line and no file of the store in
// clear.
func TestFederationProvidersAPI(t *testing.T) {
	ctx := context.Background()
	downLn, downPort := listen(t)
	downBase := "http://127.0.0.1:" + downPort
	upLn, upPort := listen(t)
	e := &fedEnv{up: serveOn(t, testConfig(t), upLn, "http://localhost:"+upPort)}
	client, secret, err := e.up.Service().CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "Downstream Keycard", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{downBase + "/federation/corp/callback"}, FirstParty: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.upUser(t, "ann", "ann@corp.example", true, "eng")

	logs := &lockedBuffer{}
	downCfg := testConfig(t)
	downCfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	downCfg.Federation = []federation.Config{{Name: "static", Issuer: e.up.base, ClientID: "static-client", ClientSecret: "static-secret-value"}}
	e.down = serveOn(t, downCfg, downLn, downBase)
	svc := e.down.Service()
	if _, err := svc.CreateUser(ctx, auth.Operator(), "root", fedPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	root, err := svc.Login(ctx, "root", fedPassword, auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	var answers strings.Builder
	api := func(method, path, contentType, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, downBase+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+root.AccessToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		answers.Write(b)
		return res.StatusCode, string(b)
	}
	const js = "application/json"
	const wrongSecret = "wrong-secret-0123456789"
	corp := map[string]any{"name": "corp", "display_name": "Corp SSO", "issuer": e.up.base, "client_id": client.ID, "client_secret": wrongSecret,
		"claims": map[string]string{"groups": "roles"}, "roles": map[string][]string{"eng": {"developer"}}, "create_users": true}
	with := func(change map[string]any) string {
		m := map[string]any{}
		for k, v := range corp {
			m[k] = v
		}
		for k, v := range change {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}

	// Malformed or refused additions.
	for _, tc := range []struct {
		name, ct, body string
		want           int
		in             string // in the error description
	}{
		{"not JSON", js, `{"name":`, 400, ""},
		{"form body", "application/x-www-form-urlencoded", "name=corp", 415, ""},
		{"unknown member", js, with(map[string]any{"client_secrets": "x"}), 400, "client_secrets"},
		{"wrong type", js, with(map[string]any{"domains": "corp.example"}), 400, "domains"},
		{"bad name", js, with(map[string]any{"name": "Corp SSO"}), 400, "name"},
		{"no client id", js, with(map[string]any{"client_id": nil}), 400, "client_id"},
		{"http issuer", js, with(map[string]any{"issuer": "http://idp.example"}), 400, "https"},
		{"issuer with fragment", js, with(map[string]any{"issuer": "https://idp.example/#x"}), 400, "issuer"},
		{"bad kind", js, with(map[string]any{"kind": "saml"}), 400, "kind"},
		{"oauth2 without endpoints", js, with(map[string]any{"kind": "oauth2", "issuer": nil}), 400, "endpoint"},
		{"bad auth method", js, with(map[string]any{"auth_method": "private_key_jwt"}), 400, "auth_method"},
		{"the configuration file's name", js, with(map[string]any{"name": "static"}), 409, "configuration file"},
	} {
		code, body := api("POST", "/admin/v1/federation/providers", tc.ct, tc.body)
		if code != tc.want || !strings.Contains(body, tc.in) {
			t.Errorf("%s: status %d %s; want %d mentioning %q", tc.name, code, body, tc.want, tc.in)
		}
	}

	// Added with a wrong secret: listed (without it), its sign-in fails
	// at the token exchange.
	code, body := api("POST", "/admin/v1/federation/providers", js, with(nil))
	if code != http.StatusCreated || !strings.Contains(body, `"source":"api"`) || !strings.Contains(body, `"has_client_secret":true`) ||
		!strings.Contains(body, `"callback_url":"`+downBase+`/federation/corp/callback"`) {
		t.Fatalf("create: status %d %s", code, body)
	}
	if code, body := api("POST", "/admin/v1/federation/providers", js, with(nil)); code != http.StatusConflict {
		t.Errorf("create again: status %d %s; want 409", code, body)
	}
	if code, body := api("POST", "/admin/v1/federation/providers", js, with(map[string]any{"name": "corp2", "domains": []string{"x.example"}})); code != http.StatusCreated {
		t.Fatalf("create corp2: status %d %s", code, body)
	}
	if code, body := api("POST", "/admin/v1/federation/providers", js, with(map[string]any{"name": "corp3", "domains": []string{"X.example"}})); code != http.StatusBadRequest || !strings.Contains(body, "corp2") {
		t.Errorf("a domain routed elsewhere: status %d %s; want 400 naming corp2", code, body)
	}
	code, body = api("GET", "/admin/v1/federation/providers", "", "")
	var list struct {
		Providers []struct {
			Name, Source    string
			HasClientSecret bool `json:"has_client_secret"`
		}
	}
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil || len(list.Providers) != 3 ||
		list.Providers[0].Name != "static" || list.Providers[0].Source != "config" || list.Providers[1].Name != "corp" || list.Providers[1].Source != "api" {
		t.Fatalf("list: status %d %s", code, body)
	}
	b := newFedBrowser(t)
	if p := b.get(downBase + "/signin"); !strings.Contains(p.body, "Sign in with Corp SSO") {
		t.Fatalf("the sign-in page has no button for the added provider:\n%s", p.body)
	}
	cb := e.toCallback(t, b, downBase+"/signin/corp?next=%2Faccount", "ann")
	if p := b.get(cb); p.status < 400 {
		t.Fatalf("callback with the wrong secret: status %d, want a refusal", p.status)
	}
	if _, err := svc.UserByName(ctx, "ann"); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Fatalf("a user was made through the wrong secret: %v", err)
	}

	// The configuration file's provider is read-only; a rename and an
	// unknown provider are refused.
	if code, body := api("PUT", "/admin/v1/federation/providers/static", js, with(map[string]any{"name": "static"})); code != http.StatusConflict || !strings.Contains(body, "configuration file") {
		t.Errorf("update the configuration file's provider: status %d %s; want 409", code, body)
	}
	if code, body := api("DELETE", "/admin/v1/federation/providers/static", "", ""); code != http.StatusConflict || !strings.Contains(body, "configuration file") {
		t.Errorf("delete the configuration file's provider: status %d %s; want 409", code, body)
	}
	if code, body := api("PUT", "/admin/v1/federation/providers/corp", js, with(map[string]any{"name": "other"})); code != http.StatusBadRequest {
		t.Errorf("rename: status %d %s; want 400", code, body)
	}
	if code, body := api("PUT", "/admin/v1/federation/providers/nobody", js, with(map[string]any{"name": nil})); code != http.StatusNotFound {
		t.Errorf("update an unknown provider: status %d %s; want 404", code, body)
	}
	if code, body := api("PUT", "/admin/v1/federation/providers/corp", js, with(map[string]any{"issuer": "ftp://x"})); code != http.StatusBadRequest {
		t.Errorf("update with a bad issuer: status %d %s; want 400", code, body)
	}

	// Rotating the secret: a PUT without client_secret keeps it (the
	// sign-in still fails), one with the right secret makes it work.
	if code, body := api("PUT", "/admin/v1/federation/providers/corp", js, with(map[string]any{"client_secret": nil, "display_name": "Corp"})); code != http.StatusOK ||
		!strings.Contains(body, `"has_client_secret":true`) || !strings.Contains(body, `"display_name":"Corp"`) {
		t.Fatalf("update keeping the secret: status %d %s", code, body)
	}
	b = newFedBrowser(t)
	if p := b.get(e.toCallback(t, b, downBase+"/signin/corp?next=%2Faccount", "ann")); p.status < 400 {
		t.Fatalf("callback with the kept wrong secret: status %d, want a refusal", p.status)
	}
	if code, body := api("PUT", "/admin/v1/federation/providers/corp", js, with(map[string]any{"client_secret": secret})); code != http.StatusOK {
		t.Fatalf("rotate the secret: status %d %s", code, body)
	}
	b = newFedBrowser(t)
	if p := b.get(e.toCallback(t, b, downBase+"/signin/corp?next=%2Faccount", "ann")); p.status != http.StatusOK || !strings.Contains(p.body, `action="/account"`) {
		t.Fatalf("callback after the rotation: status %d:\n%s", p.status, p.body)
	}
	ann, err := svc.UserByName(ctx, "ann")
	if err != nil || len(ann.Roles) != 1 || ann.Roles[0] != "developer" {
		t.Fatalf("the user made through the added provider: %+v, %v", ann, err)
	}
	if c := b.accessClaims(t, "127.0.0.1"); c["idp"] != "corp" {
		t.Errorf("access token idp %v, want corp", c["idp"])
	}

	// Removed: its sign-in is refused, its button gone.
	if code, body := api("DELETE", "/admin/v1/federation/providers/corp", "", ""); code != http.StatusNoContent {
		t.Fatalf("delete: status %d %s", code, body)
	}
	if code, _ := api("DELETE", "/admin/v1/federation/providers/corp", "", ""); code != http.StatusNotFound {
		t.Errorf("delete again: status %d, want 404", code)
	}
	b = newFedBrowser(t)
	if p := b.get(downBase + "/signin/corp"); p.status != http.StatusNotFound {
		t.Errorf("sign-in through the removed provider: status %d, want 404", p.status)
	}
	if p := b.get(downBase + "/signin"); strings.Contains(p.body, `id="signin-with-corp"`) || !strings.Contains(p.body, `id="signin-with-corp2"`) {
		t.Errorf("the sign-in page still has the removed provider's button, or lost the other's")
	}

	// A provider written to the store by another instance (here, the
	// service directly, bypassing this instance's API) is used within a
	// second (federation.DefaultMaxAge) without a restart.
	cfg, _ := json.Marshal(federation.Config{Name: "corp", DisplayName: "Corp again", Kind: federation.KindOIDC, Issuer: e.up.base, ClientID: client.ID,
		AuthMethod: "client_secret_basic", Scopes: []string{"openid", "email", "profile"}, Claims: federation.ClaimMap{Groups: "roles"}})
	if err := svc.CreateUpstreamProvider(ctx, auth.Operator(), "corp", cfg, secret); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(b.get(downBase+"/signin").body, `id="signin-with-corp"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the provider another instance added: no button on the sign-in page within 30 s")
		}
	}
	b = newFedBrowser(t)
	if p := b.get(e.toCallback(t, b, downBase+"/signin/corp?next=%2Faccount", "ann")); p.status != http.StatusOK {
		t.Fatalf("callback through the provider another instance added: status %d:\n%s", p.status, p.body)
	}

	// Audited, without the secret.
	for _, typ := range []string{auth.AuditProviderCreated, auth.AuditProviderUpdated, auth.AuditProviderDeleted} {
		evs, err := svc.AuditEvents(ctx, keycard.AuditFilter{Type: typ, Limit: 10})
		if err != nil || len(evs) == 0 {
			t.Errorf("audit %s: %v, %v", typ, evs, err)
		}
		for _, ev := range evs {
			if d := string(ev.Detail); strings.Contains(d, secret) || strings.Contains(d, wrongSecret) || !strings.Contains(d, "corp") {
				t.Errorf("audit %s detail %s", typ, d)
			}
		}
	}

	// The secrets appear in no answer, no log line, no file of the store.
	for _, s := range []string{secret, wrongSecret, "static-secret-value"} {
		if strings.Contains(answers.String(), s) {
			t.Errorf("an API answer holds a client secret")
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds a client secret")
		}
	}
	err = filepath.WalkDir(downCfg.Data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte(wrongSecret)) {
			t.Errorf("%s holds a client secret in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFederationProvidersConsole adds and removes a provider from the
// admin console's providers page.
func TestFederationProvidersConsole(t *testing.T) {
	ctx := context.Background()
	ln, port := listen(t)
	base := "http://127.0.0.1:" + port
	cfg := testConfig(t)
	cfg.Federation = []federation.Config{{Name: "static", Issuer: "https://static.example", ClientID: "static-client"}}
	a := serveOn(t, cfg, ln, base)
	if _, err := a.Service().CreateUser(ctx, auth.Operator(), "root", fedPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	b := newFedBrowser(t)
	p := b.get(base + "/signin")
	if p = b.send(http.MethodPost, base+"/signin", url.Values{"csrf_token": {csrfOf(t, p)}, "username": {"root"}, "password": {fedPassword}, "next": {"/admin/providers"}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d:\n%s", p.status, p.body)
	}
	p = b.get(base + "/admin/providers")
	if p.status != http.StatusOK || !strings.Contains(p.body, `data-provider="static"`) || strings.Contains(p.body, `action="/admin/providers/static/delete"`) {
		t.Fatalf("providers page: status %d; want the configuration file's provider, without a remove button:\n%s", p.status, p.body)
	}
	csrf := csrfOf(t, p)
	form := url.Values{"csrf_token": {csrf}, "name": {"corp"}, "display_name": {"Corp SSO"}, "issuer": {"http://idp.example"},
		"client_id": {"kc"}, "client_secret": {"console-secret-value"}, "domains": {"corp.example"}}
	if p = b.send(http.MethodPost, base+"/admin/providers", form); p.status != http.StatusBadRequest || !strings.Contains(p.body, "https") ||
		!strings.Contains(p.body, `value="corp"`) || strings.Contains(p.body, "console-secret-value") {
		t.Fatalf("an http issuer: status %d; want 400 with the reason and the form kept, without the secret:\n%s", p.status, p.body)
	}
	form.Set("name", "static")
	form.Set("issuer", "https://idp.example")
	if p = b.send(http.MethodPost, base+"/admin/providers", form); p.status != http.StatusConflict || !strings.Contains(p.body, "configuration file") {
		t.Fatalf("the configuration file's name: status %d; want 409:\n%s", p.status, p.body)
	}
	form.Set("name", "corp")
	if p = b.send(http.MethodPost, base+"/admin/providers", form); p.status != http.StatusSeeOther {
		t.Fatalf("add: status %d:\n%s", p.status, p.body)
	}
	p = b.get(base + "/admin/providers")
	if !strings.Contains(p.body, `data-provider="corp"`) || !strings.Contains(p.body, "secret set") || strings.Contains(p.body, "console-secret-value") ||
		!strings.Contains(p.body, base+"/federation/corp/callback") {
		t.Fatalf("the providers page after the addition:\n%s", p.body)
	}
	if p := newFedBrowser(t).get(base + "/signin"); !strings.Contains(p.body, `id="signin-with-corp"`) {
		t.Fatalf("the sign-in page has no button for the added provider")
	}
	if p = b.send(http.MethodPost, base+"/admin/providers/static/delete", url.Values{"csrf_token": {csrf}}); p.status != http.StatusConflict {
		t.Errorf("remove the configuration file's provider: status %d, want 409", p.status)
	}
	if p = b.send(http.MethodPost, base+"/admin/providers/corp/delete", url.Values{"csrf_token": {csrf}}); p.status != http.StatusSeeOther {
		t.Fatalf("remove: status %d:\n%s", p.status, p.body)
	}
	if p := newFedBrowser(t).get(base + "/signin/corp"); p.status != http.StatusNotFound {
		t.Errorf("sign-in through the removed provider: status %d, want 404", p.status)
	}
	if p = b.send(http.MethodPost, base+"/admin/providers/corp/delete", url.Values{"csrf_token": {csrf}}); p.status != http.StatusNotFound {
		t.Errorf("remove again: status %d, want 404", p.status)
	}
}
