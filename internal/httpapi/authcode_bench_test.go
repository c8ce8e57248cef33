package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// BenchmarkAuthCodeGrant measures one whole authorization code flow per
// operation, from parallel workers, each signed in with a browser
// session of its own: the authorization request checked and a code issued
// for the session (auth.Service.Authorize and IssueCode, what GET
// /oauth/authorize does once it has found the single sign-on cookie's
// session), then the code exchange at POST /oauth/token by a confidential
// first-party client, which redeems the code into a grant session with a
// refresh token and mints an access token and an ID token — on SQLite.
// `keycard bench authcode` measures the same flow over HTTP from outside.
//
//	go test -run '^$' -bench AuthCodeGrant -benchtime 3s -count 6 ./internal/httpapi/
func BenchmarkAuthCodeGrant(b *testing.B) {
	benchAuthCodeGrant(b, newBenchServer(b))
}

// BenchmarkAuthCodeGrantPostgres is BenchmarkAuthCodeGrant over
// PostgreSQL (KEYCARD_TEST_POSTGRES, skipped without it).
func BenchmarkAuthCodeGrantPostgres(b *testing.B) {
	benchAuthCodeGrant(b, newBenchServerOn(b, benchPostgres(b)))
}

const benchRedirectURI = "http://127.0.0.1/callback"

func benchAuthCodeGrant(b *testing.B, s *benchServer) {
	ctx := context.Background()
	if err := s.register("authcode-user"); err != nil {
		b.Fatal(err)
	}
	c, secret, err := s.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "bench web", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, FirstParty: true, RedirectURIs: []string{benchRedirectURI}}})
	if err != nil {
		b.Fatal(err)
	}
	workers := benchWorkers()
	browsers := make(chan *auth.BrowserSession, workers)
	for range workers {
		tok, err := s.login("authcode-user")
		if err != nil {
			b.Fatal(err)
		}
		bs, err := s.svc.BrowserSession(ctx, tok.SessionID)
		if err != nil {
			b.Fatal(err)
		}
		browsers <- bs
	}
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		bs := <-browsers
		for pb.Next() {
			if err := authCodeFlow(s, bs, c.ID, secret); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu.report(b)
}

// authCodeFlow runs one authorization code flow with a fresh PKCE
// verifier.
func authCodeFlow(s *benchServer, bs *auth.BrowserSession, clientID, secret string) error {
	ctx := context.Background()
	v := make([]byte, 32)
	rand.Read(v)
	verifier := base64.RawURLEncoding.EncodeToString(v)
	sum := sha256.Sum256([]byte(verifier))
	a, err := s.svc.Authorize(ctx, url.Values{"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {benchRedirectURI},
		"scope": {"openid profile"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}})
	if err != nil {
		return err
	}
	if s.svc.NeedsLogin(a, bs) {
		return fmt.Errorf("the browser session needs a sign-in")
	}
	code, err := s.svc.IssueCode(ctx, a, bs)
	if err != nil {
		return err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {benchRedirectURI}, "code_verifier": {verifier}}
	req, err := http.NewRequest(http.MethodPost, s.url+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	var t struct {
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := doJSON(s, req, &t); err != nil {
		return err
	}
	if t.AccessToken == "" || t.IDToken == "" || t.RefreshToken == "" {
		return fmt.Errorf("the code exchange gave no access, ID or refresh token")
	}
	return nil
}
