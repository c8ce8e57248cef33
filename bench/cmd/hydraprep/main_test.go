package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeHydra plays Hydra's part of the authorization code flow: the
// challenge of each step must come back, the browser must carry the
// flow's cookie, and the code is redeemed only with the PKCE verifier.
type fakeHydra struct {
	t       *testing.T
	mu      sync.Mutex
	n       int
	public  string
	clients map[string]map[string]any
	flows   map[string]url.Values // login challenge → the authorization request
	codes   map[string]string     // code → code_challenge
}

func (f *fakeHydra) next(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%d", prefix, f.n)
}

func (f *fakeHydra) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	switch {
	case r.Method == "POST" && r.URL.Path == "/admin/clients":
		var spec map[string]any
		json.NewDecoder(r.Body).Decode(&spec)
		id := f.next("client")
		f.clients[id] = spec
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]string{"client_id": id, "client_secret": "s3cret"})
	case r.URL.Path == "/oauth2/auth" && q.Get("login_verifier") != "":
		if c, err := r.Cookie("flow"); err != nil || c.Value != q.Get("login_verifier") {
			http.Error(w, "no CSRF cookie", http.StatusForbidden)
			return
		}
		http.Redirect(w, r, "http://login.invalid/consent?consent_challenge="+q.Get("login_verifier"), http.StatusFound)
	case r.URL.Path == "/oauth2/auth" && q.Get("consent_verifier") != "":
		code := f.next("code")
		f.codes[code] = f.flows[q.Get("consent_verifier")].Get("code_challenge")
		http.Redirect(w, r, redirectURI+"?code="+code, http.StatusFound)
	case r.URL.Path == "/oauth2/auth":
		spec := f.clients[q.Get("client_id")]
		if spec == nil || q.Get("redirect_uri") != redirectURI || q.Get("code_challenge_method") != "S256" || !strings.Contains(q.Get("scope"), "offline_access") {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		ch := f.next("login")
		f.flows[ch] = q
		http.SetCookie(w, &http.Cookie{Name: "flow", Value: ch, Path: "/"})
		http.Redirect(w, r, "http://login.invalid/login?login_challenge="+ch, http.StatusFound)
	case r.Method == "PUT" && r.URL.Path == "/admin/oauth2/auth/requests/login/accept":
		ch := q.Get("login_challenge")
		if f.flows[ch] == nil {
			http.Error(w, "unknown challenge", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"redirect_to": f.public + "/oauth2/auth?login_verifier=" + ch})
	case r.Method == "PUT" && r.URL.Path == "/admin/oauth2/auth/requests/consent/accept":
		var body struct {
			GrantScope []string `json:"grant_scope"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		if strings.Join(body.GrantScope, " ") != "offline_access "+scope {
			http.Error(w, "wrong scope", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"redirect_to": f.public + "/oauth2/auth?consent_verifier=" + q.Get("consent_challenge")})
	case r.Method == "POST" && r.URL.Path == "/oauth2/token":
		r.ParseForm()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		want, ok := f.codes[r.PostForm.Get("code")]
		if !ok || want != base64.RawURLEncoding.EncodeToString(sum[:]) {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		delete(f.codes, r.PostForm.Get("code"))
		json.NewEncoder(w).Encode(map[string]string{"access_token": f.next("at"), "refresh_token": f.next("rt")})
	default:
		http.NotFound(w, r)
	}
}

func TestHydraprep(t *testing.T) {
	f := &fakeHydra{t: t, clients: map[string]map[string]any{}, flows: map[string]url.Values{}, codes: map[string]string{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	f.public = srv.URL
	dir := t.TempDir()
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"-public", srv.URL, "-admin", srv.URL, "-dir", dir, "-n", "3"}, &stderr); err != nil {
		t.Fatalf("run: %v (%s)", err, stderr.String())
	}
	read := func(name string) []string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	if rt := read("refresh"); len(rt) != 3 || !strings.HasPrefix(rt[0], "rt-") {
		t.Errorf("refresh tokens %q, want 3", rt)
	}
	if at := read("access"); len(at) != 3 || !strings.HasPrefix(at[0], "at-") {
		t.Errorf("access tokens %q, want 3", at)
	}
	env := strings.Join(read("env"), "\n")
	basic := base64.StdEncoding.EncodeToString([]byte("client-1:s3cret"))
	for _, want := range []string{"WRK_AUTH='Basic " + basic + "'", "WRK_SCOPE='bench:read'", "WRK_FORM='&client_id=client-2'"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if m := f.clients["client-2"]; m["token_endpoint_auth_method"] != "none" || f.clients["client-1"]["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Errorf("clients %v: want a confidential one, then a public one", f.clients)
	}
	if err := run(context.Background(), []string{"-public", srv.URL}, &stderr); err == nil {
		t.Error("no -admin and -dir: no error")
	}
}
