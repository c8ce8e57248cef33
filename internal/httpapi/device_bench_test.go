package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// BenchmarkDeviceGrant measures one whole device sign-in per operation,
// from parallel workers: POST /oauth/device_authorization (a device code
// and a user code stored), the user's approval in a signed-in browser
// session (auth.Service.DecideDevice, what POST /device/decide does after
// its CSRF check), and the device's poll at POST /oauth/token, which
// redeems the code into a grant session and mints an access token, an ID
// token and a refresh token — on SQLite.
//
//	go test -run '^$' -bench DeviceGrant ./internal/httpapi/
func BenchmarkDeviceGrant(b *testing.B) {
	s := newBenchServer(b)
	ctx := context.Background()
	if err := s.register("device-user"); err != nil {
		b.Fatal(err)
	}
	tok, err := s.login("device-user")
	if err != nil {
		b.Fatal(err)
	}
	browser, err := s.svc.BrowserSession(ctx, tok.SessionID)
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := s.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "bench CLI", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantDeviceCode, keycard.GrantRefreshToken}, Public: true, FirstParty: true}})
	if err != nil {
		b.Fatal(err)
	}
	start := url.Values{"client_id": {c.ID}, "scope": {"openid profile"}}.Encode()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := deviceSignIn(s, browser, c.ID, start); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu.report(b)
}

// deviceSignIn runs one device sign-in.
func deviceSignIn(s *benchServer, browser *auth.BrowserSession, clientID, start string) error {
	var d struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	if err := postJSONAnswer(s, "/oauth/device_authorization", start, &d); err != nil {
		return err
	}
	if _, err := s.svc.DecideDevice(context.Background(), browser, d.UserCode, true, auth.Agent{Addr: "192.0.2.1"}); err != nil {
		return err
	}
	var t struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	poll := url.Values{"grant_type": {keycard.GrantDeviceCode}, "client_id": {clientID}, "device_code": {d.DeviceCode}}.Encode()
	if err := postJSONAnswer(s, "/oauth/token", poll, &t); err != nil {
		return err
	}
	if t.AccessToken == "" || t.IDToken == "" {
		return fmt.Errorf("the device got no access or ID token")
	}
	return nil
}

// postJSONAnswer posts a form and decodes a 200 answer into out.
func postJSONAnswer(s *benchServer, path, form string, out any) error {
	req, err := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(form))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doJSON(s, req, out)
}

// doJSON sends req and decodes a 200 answer into out.
func doJSON(s *benchServer, req *http.Request, out any) error {
	res, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, res.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}
