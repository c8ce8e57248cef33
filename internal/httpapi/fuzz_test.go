package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// FuzzJSONEndpoints posts arbitrary bodies with arbitrary content types to
// the endpoints that read a body, and fails on any 5xx, any panic (which
// the server would turn into a 500) and any error response without the
// {"error","error_description"} shape.
func FuzzJSONEndpoints(f *testing.F) {
	fx := newFixture(f)
	fx.register(f, "alice", testPassword)
	tok := fx.login(f, "alice", testPassword)
	device, _, err := fx.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "CLI", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantDeviceCode}, Public: true}})
	if err != nil {
		f.Fatal(err)
	}
	deviceCode := fx.deviceStart(f, device.ID, "openid").DeviceCode
	exchanger, exchangerSecret, err := fx.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "service A", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantTokenExchange}, TokenExchangeAudiences: []string{"orders-api", "https://orders.example/"}}})
	if err != nil {
		f.Fatal(err)
	}
	exchange := "grant_type=" + url.QueryEscape(keycard.GrantTokenExchange) + "&client_id=" + exchanger.ID + "&client_secret=" + exchangerSecret +
		"&subject_token_type=" + url.QueryEscape(auth.TokenTypeURIAccess)
	// The test clock stands still, so a refresh token the fuzzer rotates
	// stays within its grace window, and the access token never expires.
	endpoints := []struct {
		method, path string
		bearer       bool
	}{
		{http.MethodPost, "/v1/users", false},
		{http.MethodPost, "/v1/login", false},
		{http.MethodPost, "/oauth/token", false},
		{http.MethodPost, "/v1/password", true},
		{http.MethodDelete, "/v1/sessions/x", true},
		{http.MethodGet, "/v1/me", true},
		{http.MethodPost, "/v1/nope", false},
		{http.MethodPost, "/oauth/device_authorization", false},
	}
	seeds := []struct {
		endpoint    uint8
		contentType string
		body        string
	}{
		{0, "application/json", credentialsJSON("bob", testPassword)},
		{0, "application/json", `{"username":"bob"}`},
		{0, "application/json; charset=utf-8", `{"username":"b\u00f6b","password":"` + testPassword + `"}`},
		{1, "application/json", credentialsJSON("alice", testPassword)},
		{1, "application/json", credentialsJSON("alice", "wrong")},
		{1, "application/json", `{"username":"alice","password":"x","extra":[1,{"a":null}]}`},
		{1, "application/json", `{"username":"alice","password":"x"} trailing`},
		{1, "text/plain", credentialsJSON("alice", testPassword)},
		{1, "", ""},
		{1, "application/json", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`},
		{1, "application/json", "{\"username\":\"\xff\xfe\"}"},
		{1, "application/json", `{"username":"\ud800","password":1e400}`},
		{2, "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=" + tok.RefreshToken},
		{2, "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=a&client_secret=b"},
		{2, "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=a.b&refresh_token=c"},
		{2, "application/x-www-form-urlencoded", "grant_type=%zz;a=b"},
		{2, "application/x-www-form-urlencoded; charset=iso-8859-1", "grant_type=refresh_token"},
		{2, "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--x--"},
		{3, "application/json", `{"current_password":"wrong!!!!","new_password":"whatever whatever"}`},
		{3, "application/json", `{"current_password":"","new_password":""}`},
		{4, "", ""},
		{0x84, "", ""},
		{5, "application/json", "{}"},
		{6, "application/json", "{}"},
		{7, "application/x-www-form-urlencoded", "client_id=" + device.ID + "&scope=openid+profile"},
		{7, "application/x-www-form-urlencoded", "client_id=" + device.ID + "&scope=%00"},
		{2, "application/x-www-form-urlencoded", "grant_type=" + url.QueryEscape(keycard.GrantDeviceCode) + "&client_id=" + device.ID + "&device_code=" + deviceCode},
		{2, "application/x-www-form-urlencoded", "grant_type=" + url.QueryEscape(keycard.GrantDeviceCode) + "&client_id=" + device.ID + "&device_code=a.b"},
		{2, "application/x-www-form-urlencoded", exchange + "&subject_token=" + tok.AccessToken + "&audience=orders-api&scope="},
		{2, "application/x-www-form-urlencoded", exchange + "&subject_token=" + tok.AccessToken + "&resource=https%3A%2F%2Forders.example%2F&requested_token_type=" + url.QueryEscape(auth.TokenTypeURIAccess)},
		{2, "application/x-www-form-urlencoded", exchange + "&subject_token=" + tok.RefreshToken + "&audience=orders-api&actor_token=x&actor_token_type=y"},
		{2, "application/x-www-form-urlencoded", exchange + "&subject_token=" + tok.AccessToken + "&audience=orders-api&resource=%3A%2F%2F%23"},
	}
	for _, s := range seeds {
		f.Add(s.endpoint, s.contentType, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, endpoint uint8, contentType string, body []byte) {
		// The low bits pick the endpoint, the high bit leaves out the
		// access token.
		ep := endpoints[int(endpoint&0x7f)%len(endpoints)]
		r := httptest.NewRequest(ep.method, ep.path, strings.NewReader(string(body)))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if ep.bearer && endpoint&0x80 == 0 {
			r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		}
		w := httptest.NewRecorder()
		fx.server.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s (Content-Type %q, body %q): got status %d, body %s", ep.method, ep.path, contentType, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var e map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("%s %s: got status %d with a body that is not JSON: %q", ep.method, ep.path, w.Code, w.Body)
			}
			if c, _ := e["error"].(string); c == "" {
				t.Fatalf("%s %s: got status %d with body %s, want an error member", ep.method, ep.path, w.Code, w.Body)
			}
			if d, _ := e["error_description"].(string); d == "" {
				t.Fatalf("%s %s: got status %d with body %s, want an error_description", ep.method, ep.path, w.Code, w.Body)
			}
		}
	})
}
