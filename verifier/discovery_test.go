package verifier

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// discoveryServer answers the discovery paths with documents built
// from its own URL ("$ISSUER" in a body is replaced by it); paths not in
// docs get 404. It counts the requests for each path.
type discoveryServer struct {
	*httptest.Server
	requests map[string]*atomic.Int64
}

type discoveryDoc struct {
	status      int // 0: 200
	contentType string
	body        string
}

func newDiscoveryServer(t *testing.T, tls bool, docs map[string]discoveryDoc) *discoveryServer {
	t.Helper()
	s := &discoveryServer{requests: map[string]*atomic.Int64{}}
	for path := range docs {
		s.requests[path] = new(atomic.Int64)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.requests[r.URL.Path].Add(1)
		ct := doc.contentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		if doc.status != 0 {
			w.WriteHeader(doc.status)
		}
		w.Write([]byte(strings.ReplaceAll(doc.body, "$ISSUER", s.URL)))
	})
	if tls {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

// keycardMetadata is the document the auth server serves, trimmed.
const keycardMetadata = `{
	"issuer": "$ISSUER",
	"jwks_uri": "$ISSUER/.well-known/jwks.json",
	"token_endpoint": "$ISSUER/oauth/token",
	"grant_types_supported": ["refresh_token", "client_credentials"],
	"response_types_supported": [],
	"keycard_revocation_feed_endpoint": "$ISSUER/v1/revocations",
	"keycard_revocation_stream_endpoint": "$ISSUER/v1/revocations/stream"
}`

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	t.Run("openid-configuration", func(t *testing.T) {
		srv := newDiscoveryServer(t, false, map[string]discoveryDoc{OpenIDConfigurationPath: {body: keycardMetadata}})
		md, err := Discover(ctx, srv.Client(), srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		want := Metadata{
			Issuer:                   srv.URL,
			JWKSURI:                  srv.URL + "/.well-known/jwks.json",
			RevocationFeedEndpoint:   srv.URL + "/v1/revocations",
			RevocationStreamEndpoint: srv.URL + "/v1/revocations/stream",
		}
		if *md != want {
			t.Errorf("got %+v, want %+v", *md, want)
		}
	})
	t.Run("falls back to oauth-authorization-server on 404", func(t *testing.T) {
		srv := newDiscoveryServer(t, false, map[string]discoveryDoc{OAuthMetadataPath: {body: keycardMetadata}})
		md, err := Discover(ctx, srv.Client(), srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if md.JWKSURI != srv.URL+"/.well-known/jwks.json" {
			t.Errorf("got jwks_uri %q", md.JWKSURI)
		}
	})
	t.Run("no fallback on other errors", func(t *testing.T) {
		srv := newDiscoveryServer(t, false, map[string]discoveryDoc{
			OpenIDConfigurationPath: {status: http.StatusServiceUnavailable, body: `{}`},
			OAuthMetadataPath:       {body: keycardMetadata},
		})
		_, err := Discover(ctx, srv.Client(), srv.URL)
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Errorf("got %v, want the 503", err)
		}
		if n := srv.requests[OAuthMetadataPath].Load(); n != 0 {
			t.Errorf("the fallback path was asked %d times after a 503", n)
		}
	})
	t.Run("neither path", func(t *testing.T) {
		srv := newDiscoveryServer(t, false, nil)
		_, err := Discover(ctx, srv.Client(), srv.URL)
		if err == nil || !strings.Contains(err.Error(), OAuthMetadataPath) || !strings.Contains(err.Error(), "404") {
			t.Errorf("got %v, want a 404 for %s", err, OAuthMetadataPath)
		}
	})
	t.Run("issuer with a path", func(t *testing.T) {
		srv := newDiscoveryServer(t, false, map[string]discoveryDoc{
			"/tenant" + OpenIDConfigurationPath: {body: strings.ReplaceAll(keycardMetadata, "$ISSUER", "$ISSUER/tenant")},
		})
		md, err := Discover(ctx, srv.Client(), srv.URL+"/tenant")
		if err != nil {
			t.Fatal(err)
		}
		if md.Issuer != srv.URL+"/tenant" || md.JWKSURI != srv.URL+"/tenant/.well-known/jwks.json" {
			t.Errorf("got %+v", md)
		}
	})
	t.Run("issuer with a trailing slash", func(t *testing.T) {
		srv := newDiscoveryServer(t, false, map[string]discoveryDoc{
			OpenIDConfigurationPath: {body: `{"issuer":"$ISSUER/","jwks_uri":"$ISSUER/jwks"}`},
		})
		if _, err := Discover(ctx, srv.Client(), srv.URL+"/"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("https issuer", func(t *testing.T) {
		srv := newDiscoveryServer(t, true, map[string]discoveryDoc{OpenIDConfigurationPath: {body: keycardMetadata}})
		md, err := Discover(ctx, srv.Client(), srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(md.JWKSURI, "https://") {
			t.Errorf("got jwks_uri %q", md.JWKSURI)
		}
	})
}

// Documents that must be refused, each an attack or a misconfiguration.
func TestDiscoverRefuses(t *testing.T) {
	tests := []struct {
		name    string
		tls     bool
		doc     discoveryDoc
		issuer  string // appended to the server's URL
		wantErr string
	}{
		{name: "another issuer", doc: discoveryDoc{body: `{"issuer":"https://evil.example","jwks_uri":"https://evil.example/jwks"}`}, wantErr: `names issuer "https://evil.example"`},
		{name: "issuer with a trailing slash added", doc: discoveryDoc{body: `{"issuer":"$ISSUER/","jwks_uri":"$ISSUER/jwks"}`}, wantErr: "must be the same"},
		{name: "issuer with a trailing slash removed", issuer: "/", doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"$ISSUER/jwks"}`}, wantErr: "must be the same"},
		{name: "issuer in other case", doc: discoveryDoc{body: `{"issuer":"$ISSUER/A","jwks_uri":"$ISSUER/jwks"}`}, issuer: "/a", wantErr: "must be the same"},
		{name: "no issuer", doc: discoveryDoc{body: `{"jwks_uri":"$ISSUER/jwks"}`}, wantErr: `names issuer ""`},
		{name: "issuer in two cases", doc: discoveryDoc{body: `{"Issuer":"https://evil.example","issuer":"$ISSUER","jwks_uri":"$ISSUER/jwks"}`}, wantErr: "duplicate"},
		{name: "duplicate issuer", doc: discoveryDoc{body: `{"issuer":"https://evil.example","issuer":"$ISSUER","jwks_uri":"$ISSUER/jwks"}`}, wantErr: "duplicate"},
		{name: "issuer not a string", doc: discoveryDoc{body: `{"issuer":["$ISSUER"],"jwks_uri":"$ISSUER/jwks"}`}, wantErr: `"issuer" must be a string`},
		{name: "no jwks_uri", doc: discoveryDoc{body: `{"issuer":"$ISSUER"}`}, wantErr: "no jwks_uri"},
		{name: "jwks_uri not a string", doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":42}`}, wantErr: `"jwks_uri" must be a string`},
		{name: "relative jwks_uri", doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"/jwks"}`}, wantErr: "not an absolute URL"},
		{name: "jwks_uri of another scheme", doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"file://host/etc/jwks"}`}, wantErr: "not an http or https URL"},
		{name: "http jwks_uri for an https issuer", tls: true, doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"http://example.com/jwks"}`}, wantErr: "is http, but the issuer is https"},
		{name: "http feed for an https issuer", tls: true, doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"$ISSUER/jwks","keycard_revocation_feed_endpoint":"http://example.com/feed"}`}, wantErr: "keycard_revocation_feed_endpoint"},
		{name: "stream endpoint not a URL", doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"$ISSUER/jwks","keycard_revocation_stream_endpoint":"::"}`}, wantErr: "keycard_revocation_stream_endpoint"},
		{name: "not JSON", doc: discoveryDoc{body: `issuer=$ISSUER`}, wantErr: "malformed"},
		{name: "trailing data", doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"$ISSUER/jwks"}{}`}, wantErr: "trailing data"},
		{name: "array", doc: discoveryDoc{body: `[]`}, wantErr: "not a JSON object"},
		{name: "too deep", doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"$ISSUER/jwks","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`}, wantErr: "malformed"},
		{name: "HTML", doc: discoveryDoc{contentType: "text/html; charset=utf-8", body: `<html></html>`}, wantErr: "not JSON"},
		{name: "too large", doc: discoveryDoc{body: `{"issuer":"$ISSUER","jwks_uri":"$ISSUER/jwks","x":"` + strings.Repeat("a", MaxMetadataSize) + `"}`}, wantErr: "exceeds the limit"},
		{name: "server error", doc: discoveryDoc{status: http.StatusInternalServerError, body: keycardMetadata}, wantErr: "HTTP status 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newDiscoveryServer(t, tt.tls, map[string]discoveryDoc{
				OpenIDConfigurationPath: tt.doc,
				strings.TrimSuffix(tt.issuer, "/") + OpenIDConfigurationPath: tt.doc,
			})
			md, err := Discover(context.Background(), srv.Client(), srv.URL+tt.issuer)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Discover = %+v, %v; want an error containing %q", md, err, tt.wantErr)
			}
			if md != nil {
				t.Errorf("Discover returned metadata %+v with its error", md)
			}
		})
	}
}

// An issuer that is not a URL the metadata could be fetched from is
// refused before any request.
func TestDiscoverBadIssuer(t *testing.T) {
	srv := newDiscoveryServer(t, false, map[string]discoveryDoc{OpenIDConfigurationPath: {body: keycardMetadata}})
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, issuer := range []string{
		"",
		host,
		"ftp://" + host,
		"http://" + host + "?tenant=a",
		"http://" + host + "?",
		"http://" + host + "#frag",
		"http://user:pass@" + host,
		"http://",
		"http://" + host + "/%zz",
	} {
		if md, err := Discover(context.Background(), srv.Client(), issuer); err == nil {
			t.Errorf("Discover(%q) = %+v, want an error", issuer, md)
		}
	}
	if n := srv.requests[OpenIDConfigurationPath].Load(); n != 0 {
		t.Errorf("bad issuers made %d requests, want 0", n)
	}
}

// A nil client uses a default one.
func TestDiscoverNilClient(t *testing.T) {
	srv := newDiscoveryServer(t, false, map[string]discoveryDoc{OpenIDConfigurationPath: {body: keycardMetadata}})
	if _, err := Discover(context.Background(), nil, srv.URL); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseMetadata checks that the metadata reader never panics and,
// when it accepts a document, reads what encoding/json reads from it.
func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(strings.ReplaceAll(keycardMetadata, "$ISSUER", "https://auth.example")))
	f.Add([]byte(`{"issuer":"a","issuer":"b"}`))
	f.Add([]byte(`{"issuer":"\u0061\ud800","jwks_uri":null}`))
	f.Add([]byte(`{"jwks_uri":"x","nested":{"a":[1,2,{"b":true}]}}`))
	f.Add([]byte(`{"Jwks_uri":{}}`))
	f.Add([]byte(`{"issuer":"a","ISSUER":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := parseMetadata(data)
		if err != nil {
			return
		}
		// encoding/json matches struct fields regardless of case, so
		// compare through a map, whose names are exact.
		var members map[string]json.RawMessage
		if err := json.Unmarshal(data, &members); err != nil {
			t.Fatalf("parseMetadata accepted %q, which encoding/json refuses: %v", data, err)
		}
		var want Metadata
		for name, dst := range map[string]*string{
			"issuer": &want.Issuer, "jwks_uri": &want.JWKSURI,
			"keycard_revocation_feed_endpoint": &want.RevocationFeedEndpoint, "keycard_revocation_stream_endpoint": &want.RevocationStreamEndpoint,
		} {
			if raw, ok := members[name]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					t.Fatalf("parseMetadata accepted %q, whose %s encoding/json does not read as a string: %v", data, name, err)
				}
			}
		}
		folded := map[string]string{}
		for name := range members {
			lower := strings.Map(func(r rune) rune {
				if 'A' <= r && r <= 'Z' {
					return r + 'a' - 'A'
				}
				return r
			}, name)
			if other, dup := folded[lower]; dup {
				t.Fatalf("parseMetadata accepted %q, which has both %q and %q", data, name, other)
			}
			folded[lower] = name
		}
		if *md != want {
			t.Fatalf("parseMetadata(%q) = %+v, encoding/json reads %+v", data, *md, want)
		}
	})
}

func ExampleDiscover() {
	// A stand-in for the auth server's discovery document.
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"keycard_revocation_feed_endpoint":%q}`,
			issuer, issuer+"/.well-known/jwks.json", issuer+"/v1/revocations")
	}))
	defer srv.Close()
	issuer = srv.URL

	md, err := Discover(context.Background(), nil, issuer)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.TrimPrefix(md.JWKSURI, issuer))
	fmt.Println(strings.TrimPrefix(md.RevocationFeedEndpoint, issuer))
	// Output:
	// /.well-known/jwks.json
	// /v1/revocations
}
