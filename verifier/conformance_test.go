package verifier_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/verifier"
)

// The shared conformance table (testdata/conformance at the repository
// root, described in its README): tokens, key sets, revocation feed
// entries and requests with the answers the verifier must give. This test
// runs every case through the Go verifier; js/node's test suite runs the
// same files through @keycard/node. With -update-conformance it first
// writes the files again from the generator below (new ECDSA signatures,
// same keys).

var updateConformance = flag.Bool("update-conformance", false, "regenerate testdata/conformance from the generator in conformance_test.go")

const conformanceDir = "../testdata/conformance"

// conformanceFile is one file of the table.
type conformanceFile struct {
	Description string            `json:"description"`
	Config      conformanceConfig `json:"config"`
	JWKS        json.RawMessage   `json:"jwks"`
	Revocations []verifier.Entry  `json:"revocations"`
	// Feed, when set, replaces Revocations: a revocation feed served to
	// the verifier's follower over HTTP, which the cases run after.
	Feed  *conformanceFeed  `json:"feed,omitempty"`
	Cases []conformanceCase `json:"cases"`
}

// conformanceFeed is a revocation feed: the first page of GET
// /v1/revocations and the raw text of GET /v1/revocations/stream, which
// the follower must have read up to Cursor before the cases run.
type conformanceFeed struct {
	Page   json.RawMessage `json:"page"`
	Stream string          `json:"stream"`
	Cursor int64           `json:"cursor"`
}

type conformanceConfig struct {
	Issuer    string `json:"issuer"`
	Audience  string `json:"audience"`
	PublicURL string `json:"publicUrl"`
	// Now is the verifier's clock, in Unix seconds, unless a case names its own.
	Now int64 `json:"now"`
	// DPoPNonceSecret, when set (base64url), turns server nonces on (RFC
	// 9449 section 8) with this secret and the default period.
	DPoPNonceSecret string `json:"dpopNonceSecret,omitempty"`
	// RemoteJWKS, when true, has the runner serve jwks on a loopback URL
	// and the verifier fetch it from there, as it fetches an auth
	// server's jwks_uri, instead of being given the keys.
	RemoteJWKS bool `json:"remoteJwks,omitempty"`
}

type conformanceCase struct {
	Name string `json:"name"`
	Now  int64  `json:"now,omitempty"`
	// Token, for a case that calls Verify directly (tokens no HTTP header
	// can carry: white space, control characters).
	Token *string `json:"token,omitempty"`
	// Request, for a case that goes through the middleware.
	Request *conformanceRequest `json:"request,omitempty"`
	Require *conformanceRequire `json:"require,omitempty"`
	Expect  conformanceExpect   `json:"expect"`
}

type conformanceRequest struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`
}

type conformanceRequire struct {
	Scopes    []string `json:"scopes,omitempty"`
	AnyScopes []string `json:"anyScopes,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	AnyRoles  []string `json:"anyRoles,omitempty"`
	// ACR and MaxAge (seconds) are step-up requirements (RFC 9470),
	// checked after the others: acr alone is RequireACR, max_age alone
	// Verifier.RequireMaxAge, both Verifier.RequireStepUp naming what fails.
	ACR    []string `json:"acr,omitempty"`
	MaxAge int64    `json:"maxAge,omitempty"`
}

type conformanceExpect struct {
	Status           int    `json:"status"`
	WWWAuthenticate  string `json:"wwwAuthenticate,omitempty"`
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"errorDescription,omitempty"`
	// DPoPNonce is the DPoP-Nonce header of the answer, if any.
	DPoPNonce string `json:"dpopNonce,omitempty"`
	// Claims, for an accepted token: what the verifier made of it.
	Claims *conformanceClaims `json:"claims,omitempty"`
}

type conformanceClaims struct {
	Sub      string   `json:"sub"`
	Sid      string   `json:"sid"`
	Jti      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Kid      string   `json:"kid"`
	Scopes   []string `json:"scopes"`
	Roles    []string `json:"roles"`
	Actors   []string `json:"actors"`
	JKT      string   `json:"jkt"`
}

func claimsOf(c *verifier.Claims) *conformanceClaims {
	return &conformanceClaims{
		Sub: c.Subject, Sid: c.SessionID, Jti: c.ID, ClientID: c.ClientID, Kid: c.KeyID,
		Scopes: orEmpty(c.ScopeList()), Roles: orEmpty(c.Roles), Actors: orEmpty(c.Actors()), JKT: c.Confirmation.JKT,
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestConformance(t *testing.T) {
	if *updateConformance {
		writeConformance(t)
	}
	files, err := filepath.Glob(filepath.Join(conformanceDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance files in %s (%v): run go test ./verifier -run TestConformance -update-conformance", conformanceDir, err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var f conformanceFile
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		keys, err := jose.ParseKeySet(f.JWKS)
		if err != nil {
			t.Fatalf("%s: jwks: %v", name, err)
		}
		var fed *verifier.Verifier
		if f.Feed != nil {
			fed = feedVerifier(t, &f, keys)
		}
		for _, c := range f.Cases {
			t.Run(filepath.Base(name)+"/"+c.Name, func(t *testing.T) {
				runConformanceCase(t, &f, keys, fed, c)
			})
		}
	}
}

// feedVerifier serves f.Feed on a loopback server and returns a verifier
// that follows it, once its follower has read the feed up to its cursor.
func feedVerifier(t *testing.T, f *conformanceFile, keys *jose.KeySet) *verifier.Verifier {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/revocations", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if after := r.URL.Query().Get("after"); after != "0" {
			// Nothing after the first page: answer a long-poll empty.
			fmt.Fprintf(w, `{"entries":[],"next":%s,"snapshot":false}`, after)
			return
		}
		w.Write(f.Feed.Page)
	})
	mux.HandleFunc("GET /v1/revocations/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, f.Feed.Stream)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // held open, as the server does
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	clock := func() time.Time { return time.Unix(f.Config.Now, 0) }
	v, err := verifier.New(context.Background(), verifier.Config{
		Issuer: f.Config.Issuer, Audience: f.Config.Audience, PublicURL: f.Config.PublicURL, Keys: keys,
		FeedURL: srv.URL + "/v1/revocations", StreamURL: srv.URL + "/v1/revocations/stream",
		ClientID: "conformance", ClientSecret: "conformance", Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	deadline := time.Now().Add(30 * time.Second)
	for v.Follower().Status().Cursor != f.Feed.Cursor {
		if time.Now().After(deadline) {
			t.Fatalf("the follower did not reach cursor %d: %+v", f.Feed.Cursor, v.Follower().Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return v
}

func runConformanceCase(t *testing.T, f *conformanceFile, keys *jose.KeySet, fed *verifier.Verifier, c conformanceCase) {
	now := f.Config.Now
	if c.Now != 0 {
		now = c.Now
	}
	clock := func() time.Time { return time.Unix(now, 0) }
	v := fed
	if v == nil {
		var err error
		checker := &dpop.Checker{Now: clock}
		if f.Config.DPoPNonceSecret != "" {
			secret, err := base64.RawURLEncoding.DecodeString(f.Config.DPoPNonceSecret)
			if err != nil {
				t.Fatal(err)
			}
			checker.Nonces = &dpop.Nonces{Secret: secret, Now: clock}
		}
		cfg := verifier.Config{
			Issuer: f.Config.Issuer, Audience: f.Config.Audience, PublicURL: f.Config.PublicURL,
			Keys: keys, NoRevocationFeed: true, Now: clock, DPoP: checker,
		}
		if f.Config.RemoteJWKS {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/jwk-set+json")
				w.Write(f.JWKS)
			}))
			defer srv.Close()
			cfg.Keys, cfg.JWKSURL = nil, srv.URL+"/jwks.json"
		}
		v, err = verifier.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		v.Revocations().Reset(f.Revocations)
	}

	var (
		status          int
		challenge, code string
		nonce           string
		desc            string
		got             *conformanceClaims
	)
	switch {
	case c.Token != nil:
		claims, err := v.Verify(*c.Token)
		if err != nil {
			e, ok := errors.AsType[*verifier.Error](err)
			if !ok {
				t.Fatalf("Verify: %v, not a *verifier.Error", err)
			}
			rec := httptest.NewRecorder()
			verifier.WriteError(rec, e)
			status, challenge = rec.Code, rec.Header().Get("WWW-Authenticate")
			code, desc = bodyError(t, rec)
		} else {
			status, got = 200, claimsOf(claims)
		}
	case c.Request != nil:
		var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims, _ := verifier.FromContext(r.Context())
			got = claimsOf(claims)
		})
		if rq := c.Require; rq != nil {
			switch {
			case len(rq.ACR) > 0 && rq.MaxAge > 0:
				h = v.RequireStepUp(verifier.StepUp{ACR: rq.ACR, MaxAge: time.Duration(rq.MaxAge) * time.Second})(h)
			case len(rq.ACR) > 0:
				h = verifier.RequireACR(rq.ACR...)(h)
			case rq.MaxAge > 0:
				h = v.RequireMaxAge(time.Duration(rq.MaxAge) * time.Second)(h)
			}
			for _, m := range []func(http.Handler) http.Handler{
				verifier.RequireAnyRole(rq.AnyRoles...), verifier.RequireRole(rq.Roles...),
				verifier.RequireAnyScope(rq.AnyScopes...), verifier.RequireScope(rq.Scopes...),
			} {
				h = m(h)
			}
		}
		h = v.Middleware()(h)
		r := httptest.NewRequest(c.Request.Method, "http://api.internal"+c.Request.Path, nil)
		for _, kv := range c.Request.Headers {
			r.Header.Add(kv[0], kv[1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		status, challenge, nonce = rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Header().Get("DPoP-Nonce")
		if status != 200 {
			code, desc = bodyError(t, rec)
		}
	default:
		t.Fatal("a case needs a token or a request")
	}
	want := c.Expect
	if status != want.Status || challenge != want.WWWAuthenticate || code != want.Error || desc != want.ErrorDescription || nonce != want.DPoPNonce {
		t.Errorf("got %d %q %q %q nonce %q\nwant %d %q %q %q nonce %q", status, challenge, code, desc, nonce,
			want.Status, want.WWWAuthenticate, want.Error, want.ErrorDescription, want.DPoPNonce)
	}
	if want.Status == 200 && !reflect.DeepEqual(got, want.Claims) {
		t.Errorf("claims: got %+v, want %+v", got, want.Claims)
	}
}

func bodyError(t *testing.T, rec *httptest.ResponseRecorder) (string, string) {
	t.Helper()
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	return b.Error, b.Description
}

// ---- the generator ----

// The table's keys: the fixed test keys of jose/strict_test.go. The files
// carry only their public halves.
const (
	confEC256JWK    = `{"crv":"P-256","kty":"EC","x":"QpvNHBHnH_pCo-wBrxj-4SGGNDnuvcEyhVezKomvZBs","y":"ihJoKT4cqhpsszDBKJ92q4_yqWpCVBk9OJEXxatNCfo","alg":"ES256","use":"sig","kid":"ec-1","d":"P7Bschw4vhZJv_5uKRVx_3LHf61mzIbhkoIXvpfTSD4"}`
	confEd25519JWK  = `{"crv":"Ed25519","kty":"OKP","x":"nX5uKXS-idQlsnrc3QjmIQuEfaeqmGrQG1hSTkEiHKk","alg":"EdDSA","use":"sig","kid":"ed-1","d":"Qe1PLNd09xg0y0-4VAC03nMrCVXY2OysyifIcAh20Sg"}`
	confAttackerJWK = `{"crv":"P-256","kty":"EC","x":"i7ikTvljYgkOhbcSTGP7_C2trTBgsfZ478B7MQoP6q0","y":"TgvGA8rUhOjp_a9Zl9NE75ZW4mv9zLNGrlWNPL66IEU","alg":"ES256","use":"sig","kid":"attacker","d":"DyybMxXsp61Bq8-WKnagNt8vBNItU7zmC1jqUJBmf30"}`
	confRSAJWK      = `{"e":"AQAB","kty":"RSA","n":"2MjnaFbEszp2D7x9DuzvX9sP0cNyDfDHhXqwzvv60GReOgMOjHddn8i_DBJmmhUXaEAmpd94SL1ibxlUMdCdc9GC4ydIhSCZT9vnWRxuMG4ZBP4C65CNfoExNT-cgw2ASHCeggkAhHsz10gOKlby1qngf5VvRRH77usGP5ibQl2PpPLgrSigax-5ZYhfrjAzT_IyxJiSQ96_dVIk2pj9WiYHMyybA2UTRLvV7J2GstdwoNPncbERVcvErWTvNeLkZKXXLdKeUW1HqdnBV5Ucud5vA-tzZOCcuoAtq5OJlIFwN7otjeWSM11UjpzFce8x3l3sh8KZNkMMpGN-LBZgXw","alg":"RS256","use":"sig","kid":"rsa-1","d":"DpAwkN8uB6b9whY02zPU65OZKcuqIIBJvGXUSui9SL1KtzWiseey78ZZ-e2ihudefdpmvkNCSWCvpCxcw5vyzT0IlfSloovgwMSnyLdoOkirKvKwL4heeQkkzSGg2gz7eTes7lS8fCnqqaO65TfsyGRRI0EJYJJ8t5LXsJ4H5W_-ogZIuYhlxNh4idZOP6WoGzsm9TMfnu29-o4rCRiAMVTlQHB9MQu_ko45gOMrWrL8_IG-GLYcKqekTNDDhHMyYT1aij2XMqMaDWl2VvOLOkNRIeZ7VUwAz0W2Druc1823bcLicFt97H06MQ7QtVuiwLJFtJbS9rZEKDyW4_LkAQ","p":"7PHkq2QsTZNd0lWWv09DAdKiYBNLWlT7qWZYaioOQ_HPAv7TPs1Nf26NJhcDrBTHx5gB7C3IiZAD0WzHa81UDwZqYH97Ud700__5i-eZYe6Ni4z8i_2taDtvFnoBpvjYKm_BCgV9vkELgiT9gmeTP4K3GUm-U3htU7QYXdCn8cE","q":"6jf2yianFSKY9uYlQXCH9IARhIXraDEYS7DssH-l8IBjWS0JpLBguotq7FvDoL_1yLIP2mfKySmSXG6u3ENrPP-ppREa5ckrRUWBGGrpdhOAmpgjUbU7iICMXI5aKqqNj9n6_OPa01PSmK0Dez0e2Pyei4RN82TqVVLd3JDSmh8","dp":"n2w1vje9M0jnBIE_12J-JDjTta7lsVaiqRzKekvno0GMVmicO5IpBYedgrZTazHkJWAaUw2O8zepyfvVxau2VhGr-1dq4vAPbKC7B64BXooCRJXMymgZh5sNqGLYv76IuyzMBnEhZKQhGSTISThlM4NArMwYOdM6Q-pVxrGAfkE","dq":"pt-KqIqTfl5xB2__2Tj41H2ufXIAv_JCsiLy7-lybAC9R9rrxPeZYy9T1eSnY8-AqSYcX2qVs284BT0ivnIWZJZu4tlmBZOnjaowiRobDfJlLT_54gwyx1V3K7aMjVuIkpYm2ajpzqkpIXgbQ-HPKaAKwbJY63HZ90KcKbrRIdc","qi":"V_RVfw_SnuWtFxJkCywoOTjEdt0gm57PGVXvHxXNHSRb2ukr7HyxRZsfAhjFPCviGhfWSdfsZV49GL4_4yCcmyPSN_qj-RQ5XiC88DEB80vgEhfC7qsByglhI6RgvVlfft6VKLi54iRDrbGWgMTk0N5PuiodTVFj5Az7PU45b70"}`

	confIssuer   = "https://auth.example.com"
	confAudience = "api"
	confPublic   = "https://api.example.com"
	confNow      = 1800000000
)

// confKey signs raw signing inputs, so that the generator can write
// headers and payloads no well-behaved signer would.
type confKey struct {
	alg  string
	priv crypto.Signer
	pub  *jose.Key
}

func mustConfKey(t *testing.T, jwk string) confKey {
	t.Helper()
	k, err := jose.ParseJWK([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	return confKey{alg: string(k.Algorithm()), priv: k.Signer(), pub: k.Public()}
}

func (k confKey) sign(t *testing.T, input string) string {
	t.Helper()
	var sig []byte
	var err error
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256([]byte(input))
		r, s, serr := ecdsa.Sign(rand.Reader, p, d[:])
		if serr != nil {
			t.Fatal(serr)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case *rsa.PrivateKey:
		d := sha256.Sum256([]byte(input))
		sig, err = rsa.SignPKCS1v15(nil, p, crypto.SHA256, d[:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(p, []byte(input))
	default:
		t.Fatalf("no signer for %T", p)
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func (k confKey) token(t *testing.T, header, payload string) string {
	t.Helper()
	return k.sign(t, b64([]byte(header))+"."+b64([]byte(payload)))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// claimsJSON is the payload of a good token, with overrides: a nil value
// drops the claim.
func claimsJSON(over map[string]any) string {
	c := map[string]any{
		"iss": confIssuer, "sub": "alice", "aud": confAudience, "exp": confNow + 840, "iat": confNow - 60,
		"jti": "tok-1", "sid": "sess-1", "client_id": "web", "scope": "orders:read profile", "roles": []string{"customer"},
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// Expected answers.
func accept(c *conformanceClaims) conformanceExpect { return conformanceExpect{Status: 200, Claims: c} }

func refuse(desc string) conformanceExpect {
	return conformanceExpect{Status: 401, Error: "invalid_token", ErrorDescription: desc,
		WWWAuthenticate: `Bearer realm="keycard", error="invalid_token", error_description="` + desc + `"`}
}

var (
	invalid    = refuse("The access token is invalid.")
	expired    = refuse("The access token expired.")
	notYet     = refuse("The access token is not valid yet.")
	wasRevoked = refuse("The access token was revoked.")
)

func alice() *conformanceClaims {
	return &conformanceClaims{Sub: "alice", Sid: "sess-1", Jti: "tok-1", ClientID: "web", Kid: "ec-1",
		Scopes: []string{"orders:read", "profile"}, Roles: []string{"customer"}, Actors: []string{}}
}

func writeConformance(t *testing.T) {
	ec := mustConfKey(t, confEC256JWK)
	ed := mustConfKey(t, confEd25519JWK)
	rs := mustConfKey(t, confRSAJWK)
	atk := mustConfKey(t, confAttackerJWK)
	set, err := jose.NewKeySet(ec.pub, ed.pub, rs.pub)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	cfg := conformanceConfig{Issuer: confIssuer, Audience: confAudience, PublicURL: confPublic, Now: confNow}
	hdr := `{"alg":"ES256","typ":"at+jwt","kid":"ec-1"}`
	good := ec.token(t, hdr, claimsJSON(nil))
	gh, gp, gs := splitDots(good)
	tok := func(s string) *string { return &s }
	vcase := func(name, token string, want conformanceExpect) conformanceCase {
		return conformanceCase{Name: name, Token: tok(token), Expect: want}
	}

	// tokens.json: the token core's attack tokens, through Verify.
	var cases []conformanceCase
	cases = append(cases,
		vcase("control: a good ES256 token", good, accept(alice())),
		vcase("control: a good EdDSA token", ed.token(t, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1"}`, claimsJSON(nil)), accept(withKid(alice(), "ed-1"))),
		vcase("control: a good RS256 token", rs.token(t, `{"alg":"RS256","typ":"at+jwt","kid":"rsa-1"}`, claimsJSON(nil)), accept(withKid(alice(), "rsa-1"))),
		vcase("alg none, unsigned", b64([]byte(`{"alg":"none","typ":"at+jwt","kid":"ec-1"}`))+"."+gp+".", invalid),
		vcase("alg none with the good signature", b64([]byte(`{"alg":"none","typ":"at+jwt","kid":"ec-1"}`))+"."+gp+"."+gs, invalid),
		vcase("alg None", b64([]byte(`{"alg":"None","typ":"at+jwt","kid":"ec-1"}`))+"."+gp+"."+gs, invalid),
		vcase("alg confusion: HS256 keyed with the EC public key's JWK", hmacToken(`{"alg":"HS256","typ":"at+jwt","kid":"ec-1"}`, claimsJSON(nil), publicJWK(t, ec)), invalid),
		vcase("alg confusion: HS256 keyed with the RSA public key's JWK", hmacToken(`{"alg":"HS256","typ":"at+jwt","kid":"rsa-1"}`, claimsJSON(nil), publicJWK(t, rs)), invalid),
		vcase("alg confusion: HS256 keyed with the RSA modulus", hmacToken(`{"alg":"HS256","typ":"at+jwt","kid":"rsa-1"}`, claimsJSON(nil), rs.pub.PublicKey().(*rsa.PublicKey).N.Bytes()), invalid),
		vcase("alg mismatch: RS256 header on the EC key", ec.token(t, `{"alg":"RS256","typ":"at+jwt","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("alg mismatch: ES256 header on the Ed25519 key", ed.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ed-1"}`, claimsJSON(nil)), invalid),
		vcase("unsupported alg ES256K", ec.token(t, `{"alg":"ES256K","typ":"at+jwt","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("no kid", ec.token(t, `{"alg":"ES256","typ":"at+jwt"}`, claimsJSON(nil)), invalid),
		vcase("empty kid", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":""}`, claimsJSON(nil)), invalid),
		vcase("kid unknown (the attacker's key)", atk.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"attacker"}`, claimsJSON(nil)), invalid),
		vcase("kid not a string", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":1}`, claimsJSON(nil)), invalid),
		vcase("bad signature: the attacker's key under the trusted kid", atk.token(t, hdr, claimsJSON(nil)), invalid),
		vcase("bad signature: the payload changed after signing", gh+"."+b64([]byte(claimsJSON(map[string]any{"sub": "admin"})))+"."+gs, invalid),
		vcase("bad signature: zero bytes", gh+"."+gp+"."+b64(make([]byte, 64)), invalid),
		vcase("embedded jwk of the attacker, attacker kid", atk.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"attacker","jwk":`+publicJWKString(t, atk)+`}`, claimsJSON(nil)), invalid),
		vcase("embedded jwk of the attacker, trusted kid", atk.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","jwk":`+publicJWKString(t, atk)+`}`, claimsJSON(nil)), invalid),
		vcase("jku to the attacker", atk.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","jku":"https://attacker.example/jwks.json"}`, claimsJSON(nil)), invalid),
		vcase("typ JWT", ec.token(t, `{"alg":"ES256","typ":"JWT","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("typ missing", ec.token(t, `{"alg":"ES256","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("typ AT+JWT (case folded)", ec.token(t, `{"alg":"ES256","typ":"AT+JWT","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("typ application/at+jwt", ec.token(t, `{"alg":"ES256","typ":"application/at+jwt","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("typ dpop+jwt", ec.token(t, `{"alg":"ES256","typ":"dpop+jwt","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("crit naming a header", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","crit":["exp"],"exp":1}`, claimsJSON(nil)), invalid),
		vcase("crit empty", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","crit":[]}`, claimsJSON(nil)), invalid),
		vcase("b64 false with crit", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","b64":false,"crit":["b64"]}`, claimsJSON(nil)), invalid),
		vcase("b64 true", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","b64":true}`, claimsJSON(nil)), invalid),
		vcase("duplicate alg: none, then ES256", ec.token(t, `{"alg":"none","alg":"ES256","typ":"at+jwt","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("duplicate kid", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"rsa-1","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("duplicate kid through an escape", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"rsa-1","k\u0069d":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("duplicate typ", ec.token(t, `{"alg":"ES256","typ":"JWT","typ":"at+jwt","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("duplicate in a nested header object", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","x":{"a":1,"a":2}}`, claimsJSON(nil)), invalid),
		vcase("duplicate claim sub", ec.token(t, hdr, `{"iss":"`+confIssuer+`","sub":"alice","sub":"admin","aud":"api","exp":`+fmt.Sprint(confNow+840)+`}`), invalid),
		vcase("duplicate claim exp", ec.token(t, hdr, `{"iss":"`+confIssuer+`","sub":"alice","aud":"api","exp":1,"exp":`+fmt.Sprint(confNow+840)+`}`), invalid),
		vcase("duplicate claim roles", ec.token(t, hdr, `{"iss":"`+confIssuer+`","sub":"alice","aud":"api","exp":`+fmt.Sprint(confNow+840)+`,"roles":["customer"],"roles":["admin"]}`), invalid),
		vcase("case-variant header ALG", ec.token(t, `{"alg":"ES256","ALG":"none","typ":"at+jwt","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("case-variant header Kid", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","Kid":"rsa-1"}`, claimsJSON(nil)), invalid),
		vcase("case-variant header TYP", ec.token(t, `{"alg":"ES256","typ":"at+jwt","TYP":"JWT","kid":"ec-1"}`, claimsJSON(nil)), invalid),
		vcase("case-variant header Crit", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","Crit":["x"],"x":1}`, claimsJSON(nil)), invalid),
		vcase("case-variant header with a Kelvin sign", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","\u212aid":"rsa-1"}`, claimsJSON(nil)), invalid),
		vcase("case-variant unregistered header names", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","foo":1,"Foo":2}`, claimsJSON(nil)), invalid),
		vcase("control: an unregistered header name in upper case", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","Foo":1}`, claimsJSON(nil)), accept(alice())),
		vcase("case-variant claim Sub", ec.token(t, hdr, claimsJSON(map[string]any{"Sub": "admin"})), invalid),
		vcase("case-variant claim EXP", ec.token(t, hdr, claimsJSON(map[string]any{"EXP": 1})), invalid),
		vcase("header: invalid UTF-8 in kid", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","x":"`+"\xff"+`"}`, claimsJSON(nil)), invalid),
		vcase("header: overlong UTF-8", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","x":"`+"\xc0\xaf"+`"}`, claimsJSON(nil)), invalid),
		vcase("header: lone surrogate escape", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","x":"\ud800"}`, claimsJSON(nil)), invalid),
		vcase("header: reversed surrogate pair", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","x":"\udc00\ud800"}`, claimsJSON(nil)), invalid),
		vcase("control: header with an escaped surrogate pair", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","x":"\ud83d\udd11"}`, claimsJSON(nil)), accept(alice())),
		vcase("control: header nested exactly 32 deep", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","x":`+strings.Repeat("[", 31)+strings.Repeat("]", 31)+`}`, claimsJSON(nil)), accept(alice())),
		vcase("header nested 33 deep", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","x":`+strings.Repeat("[", 32)+strings.Repeat("]", 32)+`}`, claimsJSON(nil)), invalid),
		vcase("payload nested 2000 deep", ec.token(t, hdr, `{"iss":"`+confIssuer+`","x":`+strings.Repeat("[", 2000)+strings.Repeat("]", 2000)+`}`), invalid),
		vcase("header: byte order mark", ec.token(t, "\ufeff"+hdr, claimsJSON(nil)), invalid),
		vcase("header: trailing garbage", ec.token(t, hdr+"x", claimsJSON(nil)), invalid),
		vcase("header: two objects", ec.token(t, hdr+hdr, claimsJSON(nil)), invalid),
		vcase("header: an array", ec.token(t, `["alg","ES256"]`, claimsJSON(nil)), invalid),
		vcase("header: trailing comma", ec.token(t, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1",}`, claimsJSON(nil)), invalid),
		vcase("header: single quotes", ec.token(t, `{'alg':'ES256'}`, claimsJSON(nil)), invalid),
		vcase("payload: not an object", ec.token(t, hdr, `"alice"`), invalid),
		vcase("payload: NUL after the object", ec.token(t, hdr, claimsJSON(nil)+"\x00"), invalid),
		vcase("one segment", gh, invalid),
		vcase("two segments", gh+"."+gp, invalid),
		vcase("four segments", good+"."+gs, invalid),
		vcase("five segments (JWE)", b64([]byte(`{"alg":"dir","enc":"A128GCM"}`))+"..48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ", invalid),
		vcase("empty token", "", invalid),
		vcase("two dots", "..", invalid),
		vcase("JSON serialization", `{"payload":"`+gp+`","protected":"`+gh+`","signature":"`+gs+`"}`, invalid),
		vcase("base64 padding on the signature", good+"==", invalid),
		vcase("standard alphabet in the signature", gh+"."+gp+"."+strings.NewReplacer("-", "+", "_", "/").Replace(gs)+mustDiffer(gs), invalid),
		vcase("non-zero trailing bits in the signature", gh+"."+gp+"."+trailingBits(gs), invalid),
		vcase("non-zero trailing bits in the header", ec.sign(t, trailingBits(b64([]byte(hdr+" ")))+"."+gp), invalid),
		vcase("space inside the payload", gh+"."+gp[:4]+" "+gp[4:]+"."+gs, invalid),
		vcase("LF inside the header", gh[:4]+"\n"+gh[4:]+"."+gp+"."+gs, invalid),
		vcase("leading space", " "+good, invalid),
		vcase("trailing CRLF", good+"\r\n", invalid),
		vcase("Bearer prefix left on", "Bearer "+good, invalid),
		vcase("larger than 8 KiB", ec.token(t, hdr, claimsJSON(map[string]any{"pad": strings.Repeat("x", 8<<10)})), invalid),
	)
	writeConformanceFile(t, "tokens.json", conformanceFile{
		Description: "The token core's attack tokens (jose/strict_test.go, jwt/strict_test.go) through Verify: structure, base64url, strict JSON, duplicate and case-variant members, alg none and confusion, kid, typ, crit and b64.",
		Config:      cfg, JWKS: jwks, Revocations: []verifier.Entry{}, Cases: cases,
	})

	// claims.json: the claims rules.
	exp := func(over map[string]any) string { return ec.token(t, hdr, claimsJSON(over)) }
	cases = []conformanceCase{
		vcase("expired 31 s ago (beyond the 30 s leeway)", exp(map[string]any{"exp": confNow - 31}), expired),
		vcase("expired exactly 30 s ago", exp(map[string]any{"exp": confNow - 30}), expired),
		vcase("control: expired 29 s ago, within the leeway", exp(map[string]any{"exp": confNow - 29}), accept(alice())),
		vcase("not valid for 31 s more", exp(map[string]any{"nbf": confNow + 31}), notYet),
		vcase("control: nbf 30 s ahead, within the leeway", exp(map[string]any{"nbf": confNow + 30}), accept(alice())),
		vcase("issued 31 s in the future", exp(map[string]any{"iat": confNow + 31}), invalid),
		vcase("no exp", exp(map[string]any{"exp": nil}), invalid),
		vcase("exp a string", exp(map[string]any{"exp": fmt.Sprint(confNow + 840)}), invalid),
		vcase("exp negative", exp(map[string]any{"exp": -1}), invalid),
		vcase("exp beyond the year 9999", exp(map[string]any{"exp": 253402300800}), invalid),
		vcase("expired and with the wrong issuer: expiry is told", exp(map[string]any{"exp": confNow - 100, "iss": "https://evil.example"}), expired),
		vcase("expired with a bad signature: invalid, not expired", atk.token(t, hdr, claimsJSON(map[string]any{"exp": confNow - 100})), invalid),
		vcase("wrong issuer", exp(map[string]any{"iss": "https://evil.example"}), invalid),
		vcase("issuer with a trailing slash", exp(map[string]any{"iss": confIssuer + "/"}), invalid),
		vcase("no issuer", exp(map[string]any{"iss": nil}), invalid),
		vcase("wrong audience", exp(map[string]any{"aud": "other"}), invalid),
		vcase("no audience", exp(map[string]any{"aud": nil}), invalid),
		vcase("control: audience among several", exp(map[string]any{"aud": []string{"other", confAudience}}), accept(alice())),
		vcase("audience a number", exp(map[string]any{"aud": 1}), invalid),
		vcase("sub a number", exp(map[string]any{"sub": 7}), invalid),
		vcase("roles a string", exp(map[string]any{"roles": "admin"}), invalid),
		vcase("scope an array", exp(map[string]any{"scope": []string{"orders:read"}}), invalid),
		vcase("cnf not an object", exp(map[string]any{"cnf": "x"}), invalid),
		vcase("act without sub", exp(map[string]any{"act": map[string]any{"iss": "x"}}), invalid),
		vcase("control: scp and scopes merged with scope", exp(map[string]any{"scp": []string{"a", "profile"}, "scopes": []string{"b"}}),
			accept(withScopes(alice(), "orders:read", "profile", "a", "b"))),
		vcase("control: an actor chain", exp(map[string]any{"act": map[string]any{"sub": "svc-b", "act": map[string]any{"sub": "svc-a"}}}),
			accept(withActors(alice(), "svc-b", "svc-a"))),
	}
	writeConformanceFile(t, "claims.json", conformanceFile{
		Description: "Claims: exp, nbf and iat with the 30 s leeway, iss, aud, claim types, scopes and actors; which description each refusal gets.",
		Config:      cfg, JWKS: jwks, Revocations: []verifier.Entry{}, Cases: cases,
	})

	// revocation.json: feed entries, and the tokens they refuse.
	at := time.Unix(confNow-30, 123456000).UTC()
	until := at.Add(15*time.Minute + 30*time.Second)
	entries := []verifier.Entry{
		{Seq: 1, Kind: "session", Value: "sess-revoked", At: at, ExpiresAt: until},
		{Seq: 2, Kind: "token", Value: "tok-revoked", At: at, ExpiresAt: until},
		{Seq: 3, Kind: "user", Value: "bob", At: at, ExpiresAt: until},
		{Seq: 4, Kind: "key", Value: "ed-1", At: at},
		{Seq: 5, Kind: "all", At: time.Unix(confNow-600, 500000000).UTC(), ExpiresAt: until},
		{Seq: 6, Kind: "a-kind-from-the-future", Value: "alice", At: at, ExpiresAt: until},
	}
	cases = []conformanceCase{
		vcase("control: nothing revokes it", good, accept(alice())),
		vcase("its session revoked", exp(map[string]any{"sid": "sess-revoked"}), wasRevoked),
		vcase("its jti revoked", exp(map[string]any{"jti": "tok-revoked"}), wasRevoked),
		vcase("its user cut off, issued before", exp(map[string]any{"sub": "bob", "iat": confNow - 31}), wasRevoked),
		vcase("its user cut off, issued in the same second, after it: refused (fails closed)", exp(map[string]any{"sub": "bob", "iat": confNow - 30}), wasRevoked),
		vcase("control: its user cut off, issued the second after", exp(map[string]any{"sub": "bob", "iat": confNow - 29}), accept(withSub(alice(), "bob"))),
		vcase("its key revoked", ed.token(t, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1"}`, claimsJSON(nil)), wasRevoked),
		vcase("issued before the global cut-off", exp(map[string]any{"iat": confNow - 601}), wasRevoked),
		vcase("control: issued after the global cut-off", exp(map[string]any{"iat": confNow - 599}), accept(alice())),
		vcase("no iat: before every cut-off", exp(map[string]any{"iat": nil}), wasRevoked),
	}
	writeConformanceFile(t, "revocation.json", conformanceFile{
		Description: "Revocation feed entries (the wire format of GET /v1/revocations) and the tokens they refuse: session, token, user and global cut-offs compared to the microsecond, key, and an unknown kind ignored.",
		Config:      cfg, JWKS: jwks, Revocations: entries, Cases: cases,
	})

	// http.json: requests through the middleware.
	auth := func(v string) [2]string { return [2]string{"Authorization", v} }
	req := func(path string, h ...[2]string) *conformanceRequest {
		return &conformanceRequest{Method: "GET", Path: path, Headers: h}
	}
	hcase := func(name string, r *conformanceRequest, rq *conformanceRequire, want conformanceExpect) conformanceCase {
		return conformanceCase{Name: name, Request: r, Require: rq, Expect: want}
	}
	bad := func(desc string) conformanceExpect {
		return conformanceExpect{Status: 400, Error: "invalid_request", ErrorDescription: desc}
	}
	forbid := func(desc, scope string) conformanceExpect {
		ch := `Bearer realm="keycard", error="insufficient_scope", error_description="` + desc + `"`
		if scope != "" {
			ch += `, scope="` + scope + `"`
		}
		return conformanceExpect{Status: 403, Error: "insufficient_scope", ErrorDescription: desc, WWWAuthenticate: ch}
	}
	noTok := conformanceExpect{Status: 401, WWWAuthenticate: `Bearer realm="keycard"`, Error: "invalid_token", ErrorDescription: "An access token is required."}
	inURL := bad("Access tokens are not accepted in the URL; send an Authorization: Bearer header.")
	cases = []conformanceCase{
		hcase("control: Bearer", req("/orders", auth("Bearer "+good)), nil, accept(alice())),
		hcase("control: bearer in lower case", req("/orders", auth("bearer "+good)), nil, accept(alice())),
		hcase("no token", req("/orders"), nil, noTok),
		hcase("Basic credentials are not a token", req("/orders", auth("Basic YTpi")), nil, noTok),
		hcase("two Authorization headers", req("/orders", auth("Bearer "+good), auth("Bearer "+good)), nil, bad("Send one Authorization header.")),
		hcase("Bearer without a token", req("/orders", auth("Bearer ")), nil, bad(`The Authorization header must be "Bearer <token>" or "DPoP <token>".`)),
		hcase("Bearer with two tokens", req("/orders", auth("Bearer "+good+" "+good)), nil, bad(`The Authorization header must be "Bearer <token>" or "DPoP <token>".`)),
		hcase("Bearer with a comma", req("/orders", auth("Bearer "+good+",x")), nil, bad(`The Authorization header must be "Bearer <token>" or "DPoP <token>".`)),
		hcase("token in the query", req("/orders?access_token="+good), nil, inURL),
		hcase("token in the query and the header", req("/orders?access_token=x", auth("Bearer "+good)), nil, inURL),
		hcase("token in the query, upper case", req("/orders?ACCESS_TOKEN=x"), nil, inURL),
		hcase("token in the query, percent-encoded", req("/orders?%61ccess_token=x"), nil, inURL),
		hcase("token in the query, PHP's access.token", req("/orders?access.token=x"), nil, inURL),
		hcase("token in the query, access+token", req("/orders?access+token=x"), nil, inURL),
		hcase("token in the query, access_token[]", req("/orders?access_token[]=x"), nil, inURL),
		hcase("token in the query after a semicolon", req("/orders?a=1;access_token=x"), nil, inURL),
		hcase("control: a query without a token", req("/orders?page=2&access=1", auth("Bearer "+good)), nil, accept(alice())),
		hcase("an invalid token", req("/orders", auth("Bearer "+gh+"."+gp+"."+b64(make([]byte, 64)))), nil, invalid),
		hcase("control: the scope it has", req("/orders", auth("Bearer "+good)), &conformanceRequire{Scopes: []string{"orders:read"}}, accept(alice())),
		hcase("a scope it lacks", req("/orders", auth("Bearer "+good)), &conformanceRequire{Scopes: []string{"orders:read", "orders:write"}},
			forbid("The access token lacks the scope orders:write.", "orders:read orders:write")),
		hcase("none of the scopes", req("/orders", auth("Bearer "+good)), &conformanceRequire{AnyScopes: []string{"a", "b"}},
			forbid("The access token needs one of the scopes a, b.", "a b")),
		hcase("control: one of the scopes", req("/orders", auth("Bearer "+good)), &conformanceRequire{AnyScopes: []string{"a", "profile"}}, accept(alice())),
		hcase("a role it lacks", req("/orders", auth("Bearer "+good)), &conformanceRequire{Roles: []string{"admin"}},
			forbid("The access token lacks the role admin.", "")),
		hcase("none of the roles", req("/orders", auth("Bearer "+good)), &conformanceRequire{AnyRoles: []string{"admin", "staff"}},
			forbid("The access token needs one of the roles admin, staff.", "")),
		hcase("control: the role it has", req("/orders", auth("Bearer "+good)), &conformanceRequire{Roles: []string{"customer"}}, accept(alice())),
		hcase("an expired token with a requirement: 401, not 403", req("/orders", auth("Bearer "+exp(map[string]any{"exp": confNow - 100}))),
			&conformanceRequire{Scopes: []string{"x"}}, expired),
	}
	writeConformanceFile(t, "http.json", conformanceFile{
		Description: "Requests through the middleware: where the token may be, malformed requests, tokens in the URL, scope and role requirements, and the exact RFC 6750 answers.",
		Config:      cfg, JWKS: jwks, Revocations: []verifier.Entry{}, Cases: cases,
	})

	// feed.json: a revocation feed as the follower reads it: a first page,
	// then a stream with a heartbeat, CRLF line ends, an unknown event, an
	// entry already applied (ignored), an entry whose data spans two
	// lines, and a key revocation.
	ent := func(seq int64, kind, value string) string {
		b, _ := json.Marshal(verifier.Entry{Seq: seq, Kind: kind, Value: value, At: at, ExpiresAt: until})
		return string(b)
	}
	multi := ent(7, "session", "s-multi")
	split := strings.Index(multi, `"value"`)
	page, _ := json.Marshal(map[string]any{"entries": []json.RawMessage{json.RawMessage(ent(1, "session", "s-boot"))}, "next": 1, "snapshot": false})
	stream := ": heartbeat\n\n" +
		"id: 2\nevent: revocation\ndata: " + ent(2, "session", "s-stream") + "\n\n" +
		"id: 3\r\nevent: revocation\r\ndata: " + ent(3, "token", "jti-stream") + "\r\n\r\n" +
		"event: an-event-from-the-future\ndata: {}\n\n" +
		"id: 2\nevent: revocation\ndata: " + ent(2, "session", "s-replayed") + "\n\n" +
		"id: 4\nevent: revocation\ndata: " + ent(4, "user", "bob") + "\n\n" +
		": heartbeat\n\n" +
		"id: 5\nevent: revocation\ndata: " + ent(5, "key", "ed-1") + "\n\n" +
		"id: 6\nevent: revocation\ndata: " + ent(6, "a-kind-from-the-future", "alice") + "\n\n" +
		"id: 7\nevent: revocation\ndata: " + multi[:split] + "\ndata: " + multi[split:] + "\n\n"
	cases = []conformanceCase{
		vcase("control: nothing revokes it", good, accept(alice())),
		vcase("its session, from the first page", exp(map[string]any{"sid": "s-boot"}), wasRevoked),
		vcase("its session, from the stream", exp(map[string]any{"sid": "s-stream"}), wasRevoked),
		vcase("its jti, from an event with CRLF line ends", exp(map[string]any{"jti": "jti-stream"}), wasRevoked),
		vcase("control: an entry sent again under an applied seq is ignored", exp(map[string]any{"sid": "s-replayed"}), accept(withSid(alice(), "s-replayed"))),
		vcase("its user cut off", exp(map[string]any{"sub": "bob", "iat": confNow - 31}), wasRevoked),
		vcase("its key revoked", ed.token(t, `{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1"}`, claimsJSON(nil)), wasRevoked),
		vcase("its session, from data on two lines", exp(map[string]any{"sid": "s-multi"}), wasRevoked),
	}
	writeConformanceFile(t, "feed.json", conformanceFile{
		Description: "A revocation feed read by the follower over HTTP (the first page of GET /v1/revocations, then GET /v1/revocations/stream): heartbeats, CRLF, unknown events and kinds, an entry under an applied seq, data on two lines; the tokens it then refuses.",
		Config:      cfg, JWKS: jwks, Revocations: []verifier.Entry{},
		Feed: &conformanceFeed{Page: page, Stream: stream, Cursor: 7}, Cases: cases,
	})

	// dpop.json: DPoP-bound tokens (RFC 9449).
	prover := mustProver(t, confEC256JWK)
	other := mustProver(t, confAttackerJWK)
	jkt := prover.Thumbprint()
	bound := exp(map[string]any{"cnf": map[string]any{"jkt": jkt}})
	url := confPublic + "/orders"
	proof := func(p *dpop.Prover, method, u, token string, iat int64) string {
		p.Now = func() time.Time { return time.Unix(iat, 0) }
		s, err := p.Proof(method, u, token, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	algs := "ES256 ES384 ES512 EdDSA PS256 PS384 PS512 RS256 RS384 RS512"
	dpopRefuse := func(code, desc string) conformanceExpect {
		return conformanceExpect{Status: 401, Error: code, ErrorDescription: desc,
			WWWAuthenticate: `DPoP realm="keycard", error="` + code + `", error_description="` + desc + `", algs="` + algs + `"`}
	}
	badProof := dpopRefuse("invalid_dpop_proof", "The DPoP proof is not valid for this request.")
	dp := func(v string) [2]string { return [2]string{"DPoP", v} }
	boundClaims := alice()
	boundClaims.JKT = jkt
	cases = []conformanceCase{
		hcase("control: a bound token with its proof", req("/orders", auth("DPoP "+bound), dp(proof(prover, "GET", url, bound, confNow))), nil, accept(boundClaims)),
		hcase("control: a proof 59 s old", req("/orders", auth("DPoP "+bound), dp(proof(prover, "GET", url, bound, confNow-59))), nil, accept(boundClaims)),
		hcase("a bound token as Bearer", req("/orders", auth("Bearer "+bound), dp(proof(prover, "GET", url, bound, confNow))), nil,
			dpopRefuse("invalid_token", "This access token is bound to a DPoP key: send it as Authorization: DPoP with a DPoP proof.")),
		hcase("an unbound token as DPoP", req("/orders", auth("DPoP "+good), dp(proof(prover, "GET", url, good, confNow))), nil,
			dpopRefuse("invalid_token", "This access token is not bound to a DPoP key: send it as Authorization: Bearer.")),
		hcase("no proof", req("/orders", auth("DPoP "+bound)), nil, dpopRefuse("invalid_dpop_proof", "Send one DPoP proof in the DPoP header.")),
		hcase("two proofs", req("/orders", auth("DPoP "+bound), dp(proof(prover, "GET", url, bound, confNow)), dp(proof(prover, "GET", url, bound, confNow))), nil,
			dpopRefuse("invalid_dpop_proof", "Send one DPoP proof in the DPoP header.")),
		hcase("a proof for another URL", req("/orders", auth("DPoP "+bound), dp(proof(prover, "GET", confPublic+"/admin", bound, confNow))), nil, badProof),
		hcase("a proof for another method", req("/orders", auth("DPoP "+bound), dp(proof(prover, "POST", url, bound, confNow))), nil, badProof),
		hcase("a proof for another token", req("/orders", auth("DPoP "+bound), dp(proof(prover, "GET", url, good, confNow))), nil, badProof),
		hcase("a proof 61 s old", req("/orders", auth("DPoP "+bound), dp(proof(prover, "GET", url, bound, confNow-61))), nil, badProof),
		hcase("a proof 61 s ahead", req("/orders", auth("DPoP "+bound), dp(proof(prover, "GET", url, bound, confNow+61))), nil, badProof),
		hcase("a proof of another key", req("/orders", auth("DPoP "+bound), dp(proof(other, "GET", url, bound, confNow))), nil,
			dpopRefuse("invalid_dpop_proof", "The DPoP proof is not signed by the key the access token is bound to.")),
		hcase("a proof with the private key in its jwk", req("/orders", auth("DPoP "+bound), dp(rawProof(t, ec, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+confEC256JWK+`}`, "GET", url, bound))), nil, badProof),
		hcase("a proof with typ JWT", req("/orders", auth("DPoP "+bound), dp(rawProof(t, ec, `{"typ":"JWT","alg":"ES256","jwk":`+publicJWKString(t, ec)+`}`, "GET", url, bound))), nil, badProof),
		hcase("a proof with alg HS256", req("/orders", auth("DPoP "+bound), dp(hmacToken(`{"typ":"dpop+jwt","alg":"HS256","jwk":`+publicJWKString(t, ec)+`}`, proofClaims("GET", url, bound), []byte("k")))), nil, badProof),
		hcase("a proof with duplicate htu", req("/orders", auth("DPoP "+bound), dp(ec.token(t, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+publicJWKString(t, ec)+`}`,
			strings.TrimSuffix(proofClaims("GET", url, bound), "}")+`,"htu":"https://evil.example/orders"}`))), nil, badProof),
		hcase("control: htu differing only in case and default port", req("/orders", auth("DPoP "+bound), dp(rawProofHTU(t, ec, "GET", "HTTPS://API.example.com:443/orders", bound))), nil, accept(boundClaims)),
	}
	writeConformanceFile(t, "dpop.json", conformanceFile{
		Description: "DPoP-bound tokens (RFC 9449 section 7): the binding, the proof's checks and the DPoP challenges.",
		Config:      cfg, JWKS: jwks, Revocations: []verifier.Entry{}, Cases: cases,
	})
	// dpop-nonce.json: server nonces (RFC 9449 section 8), stateless HMACs
	// of a shared secret: the same secret gives the same nonces in Go and
	// in Node.
	secret := []byte("conformance secret for DPoP nonces, 32+ bytes long")
	nonceAt := func(t0 int64) string {
		return (&dpop.Nonces{Secret: secret, Now: func() time.Time { return time.Unix(t0, 0) }}).Issue()
	}
	current, previous, stale := nonceAt(confNow), nonceAt(confNow-300), nonceAt(confNow-600)
	foreign := (&dpop.Nonces{Secret: []byte("another secret, also 32 bytes or more"), Now: func() time.Time { return time.Unix(confNow, 0) }}).Issue()
	withNonce := func(n string) string {
		prover.Now = func() time.Time { return time.Unix(confNow, 0) }
		s, err := prover.Proof("GET", url, bound, n)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	useNonce := dpopRefuse("use_dpop_nonce", "Send the DPoP proof again with the server's nonce.")
	useNonce.DPoPNonce = current
	nonceCfg := cfg
	nonceCfg.DPoPNonceSecret = b64(secret)
	cases = []conformanceCase{
		hcase("a proof without a nonce: the current one is handed out", req("/orders", auth("DPoP "+bound), dp(withNonce(""))), nil, useNonce),
		hcase("control: a proof with the current nonce", req("/orders", auth("DPoP "+bound), dp(withNonce(current))), nil, accept(boundClaims)),
		hcase("control: a proof with the previous period's nonce", req("/orders", auth("DPoP "+bound), dp(withNonce(previous))), nil, accept(boundClaims)),
		hcase("a proof with a nonce two periods old", req("/orders", auth("DPoP "+bound), dp(withNonce(stale))), nil, useNonce),
		hcase("a proof with another secret's nonce", req("/orders", auth("DPoP "+bound), dp(withNonce(foreign))), nil, useNonce),
		hcase("a proof with a made-up nonce", req("/orders", auth("DPoP "+bound), dp(withNonce("made-up"))), nil, useNonce),
	}
	writeConformanceFile(t, "dpop-nonce.json", conformanceFile{
		Description: "DPoP server nonces (RFC 9449 section 8) with a shared secret: the nonce handed out, and which nonces a proof may carry.",
		Config:      nonceCfg, JWKS: jwks, Revocations: []verifier.Entry{}, Cases: cases,
	})

	// stepup.json: step-up requirements (RFC 9470) on acr and auth_time.
	withAuth := func(over map[string]any) string {
		c := map[string]any{"acr": "mfa", "amr": []string{"pwd", "otp"}, "auth_time": confNow - 60}
		for k, v := range over {
			c[k] = v
		}
		return "Bearer " + ec.token(t, hdr, claimsJSON(c))
	}
	mfaRecent := withAuth(nil)
	pwdRecent := withAuth(map[string]any{"acr": "pwd", "amr": []string{"pwd"}})
	noACR := withAuth(map[string]any{"acr": nil, "amr": nil})
	mfaOld := withAuth(map[string]any{"auth_time": confNow - 301})
	pwdOld := withAuth(map[string]any{"acr": "pwd", "amr": []string{"pwd"}, "auth_time": confNow - 301})
	noAuthTime := withAuth(map[string]any{"auth_time": nil})
	bare := withAuth(map[string]any{"acr": nil, "amr": nil, "auth_time": nil})
	step := func(desc, acrValues string, maxAge int64) conformanceExpect {
		ch := `Bearer realm="keycard", error="insufficient_user_authentication", error_description="` + desc + `"`
		if acrValues != "" {
			ch += `, acr_values="` + acrValues + `"`
		}
		if maxAge > 0 {
			ch += fmt.Sprintf(`, max_age="%d"`, maxAge)
		}
		return conformanceExpect{Status: 401, Error: "insufficient_user_authentication", ErrorDescription: desc, WWWAuthenticate: ch}
	}
	mfa := &conformanceRequire{ACR: []string{"mfa"}}
	either := &conformanceRequire{ACR: []string{"pwd", "mfa"}}
	recent := &conformanceRequire{MaxAge: 300}
	mfaRecently := &conformanceRequire{ACR: []string{"mfa"}, MaxAge: 300}
	needMFA := step("This resource needs a sign-in with a second factor (acr mfa).", "mfa", 0)
	needRecent := step("This resource needs a sign-in within the last 300 seconds.", "", 300)
	needBoth := step("This resource needs a sign-in with a second factor (acr mfa) within the last 300 seconds.", "mfa", 300)
	cases = []conformanceCase{
		hcase("control: acr mfa where mfa is required", req("/admin", auth(mfaRecent)), mfa, accept(alice())),
		hcase("acr pwd where mfa is required", req("/admin", auth(pwdRecent)), mfa, needMFA),
		hcase("no acr where mfa is required", req("/admin", auth(noACR)), mfa, needMFA),
		hcase("acr compared exactly: MFA is not mfa", req("/admin", auth(withAuth(map[string]any{"acr": "MFA"}))), mfa, needMFA),
		hcase("amr is not acr: amr mfa with acr pwd", req("/admin", auth(withAuth(map[string]any{"acr": "pwd", "amr": []string{"mfa", "otp"}}))), mfa, needMFA),
		hcase("an empty acr where mfa is required", req("/admin", auth(withAuth(map[string]any{"acr": ""}))), mfa, needMFA),
		hcase("control: acr pwd where pwd or mfa is accepted", req("/admin", auth(pwdRecent)), either, accept(alice())),
		hcase("control: acr mfa where pwd or mfa is accepted", req("/admin", auth(mfaRecent)), either, accept(alice())),
		hcase("no acr where pwd or mfa is accepted", req("/admin", auth(noACR)), either,
			step("This resource needs another kind of sign-in (acr pwd or mfa).", "pwd mfa", 0)),
		hcase("acr other where pwd is required", req("/admin", auth(withAuth(map[string]any{"acr": "other"}))), &conformanceRequire{ACR: []string{"pwd"}},
			step("This resource needs another kind of sign-in (acr pwd).", "pwd", 0)),
		hcase("control: auth_time 60 s ago, max_age 300", req("/admin", auth(pwdRecent)), recent, accept(alice())),
		hcase("control: auth_time exactly 300 s ago, max_age 300", req("/admin", auth(withAuth(map[string]any{"auth_time": confNow - 300}))), recent, accept(alice())),
		hcase("auth_time 301 s ago, max_age 300", req("/admin", auth(mfaOld)), recent, needRecent),
		hcase("no auth_time, max_age 300", req("/admin", auth(noAuthTime)), recent, needRecent),
		hcase("control: acr mfa, recent, where both are required", req("/admin", auth(mfaRecent)), mfaRecently, accept(alice())),
		hcase("acr mfa but too old, where both are required: max_age only", req("/admin", auth(mfaOld)), mfaRecently, needRecent),
		hcase("acr pwd and recent, where both are required: acr_values only", req("/admin", auth(pwdRecent)), mfaRecently, needMFA),
		hcase("acr pwd and too old, where both are required: both", req("/admin", auth(pwdOld)), mfaRecently, needBoth),
		hcase("neither acr nor auth_time, where both are required: both", req("/admin", auth(bare)), mfaRecently, needBoth),
		hcase("no token where mfa is required", req("/admin"), mfa, noTok),
		hcase("an expired token where mfa is required: invalid_token", req("/admin", auth("Bearer "+exp(map[string]any{"exp": confNow - 100, "acr": "pwd"}))), mfa, expired),
		hcase("a scope lacking and acr pwd: the scope is checked first", req("/admin", auth(pwdRecent)),
			&conformanceRequire{Scopes: []string{"admin"}, ACR: []string{"mfa"}}, forbid("The access token lacks the scope admin.", "admin")),
		hcase("acr not a string", req("/admin", auth(withAuth(map[string]any{"acr": 2}))), mfa, invalid),
		hcase("auth_time not a number", req("/admin", auth(withAuth(map[string]any{"auth_time": "yesterday"}))), recent, invalid),
	}
	// jwks-remote.json: a fetched JWK Set that publishes a secret.
	published := []byte("a-secret-published-in-the-jwks!!")
	remoteJWKS := `{"keys":[` + publicJWKString(t, ec) + `,{"kty":"oct","kid":"published","alg":"HS256","k":"` + b64(published) + `"}]}`
	writeConformanceFile(t, "jwks-remote.json", conformanceFile{
		Description: "A JWK Set fetched from a URL (as from the auth server's jwks_uri) that also publishes a symmetric key: the key is skipped, so a token signed with the published secret is refused.",
		Config:      conformanceConfig{Issuer: confIssuer, Audience: confAudience, PublicURL: confPublic, Now: confNow, RemoteJWKS: true},
		JWKS:        json.RawMessage(remoteJWKS), Revocations: []verifier.Entry{},
		Cases: []conformanceCase{
			vcase("control: a good ES256 token", good, accept(alice())),
			vcase("HS256 signed with the secret the JWKS publishes", hmacToken(`{"alg":"HS256","typ":"at+jwt","kid":"published"}`, claimsJSON(nil), published), invalid),
			hcase("HS256 signed with the published secret, through the middleware", req("/orders", auth("Bearer "+hmacToken(`{"alg":"HS256","typ":"at+jwt","kid":"published"}`, claimsJSON(nil), published))), nil, invalid),
		},
	})

	writeConformanceFile(t, "stepup.json", conformanceFile{
		Description: "Step-up requirements (RFC 9470 section 3) through the middleware: acr values (compared exactly; amr is not consulted) and max_age against auth_time, and the exact insufficient_user_authentication answers.",
		Config:      cfg, JWKS: jwks, Revocations: []verifier.Entry{}, Cases: cases,
	})
}

func mustDiffer(seg string) string {
	if !strings.ContainsAny(seg, "-_") {
		return "+" // make sure the segment holds a character of the standard alphabet
	}
	return ""
}

// trailingBits sets the unused low bits of a base64url segment's last
// character, which a lenient decoder ignores.
func trailingBits(seg string) string {
	const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	switch len(seg) % 4 {
	case 2:
		return seg[:len(seg)-1] + string(abc[strings.IndexByte(abc, seg[len(seg)-1])|0x01])
	case 3:
		return seg[:len(seg)-1] + string(abc[strings.IndexByte(abc, seg[len(seg)-1])|0x01])
	}
	return seg + "B" // a length of 4n+1 has no decoding at all
}

func splitDots(tok string) (string, string, string) {
	p := strings.Split(tok, ".")
	return p[0], p[1], p[2]
}

func hmacToken(header, payload string, secret []byte) string {
	in := b64([]byte(header)) + "." + b64([]byte(payload))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

func publicJWK(t *testing.T, k confKey) []byte {
	t.Helper()
	b, err := json.Marshal(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publicJWKString(t *testing.T, k confKey) string { return string(publicJWK(t, k)) }

func mustProver(t *testing.T, jwk string) *dpop.Prover {
	t.Helper()
	k, err := jose.ParseJWK([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	p, err := dpop.NewProver(k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func proofClaims(method, url, token string) string {
	b, _ := json.Marshal(map[string]any{"jti": "proof-" + method + url, "htm": method, "htu": url, "iat": confNow, "ath": dpop.AccessTokenHash(token)})
	return string(b)
}

func rawProof(t *testing.T, k confKey, header, method, url, token string) string {
	return k.token(t, header, proofClaims(method, url, token))
}

func rawProofHTU(t *testing.T, k confKey, method, htu, token string) string {
	return k.token(t, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+publicJWKString(t, k)+`}`, proofClaims(method, htu, token))
}

func withKid(c *conformanceClaims, kid string) *conformanceClaims { c.Kid = kid; return c }
func withSub(c *conformanceClaims, sub string) *conformanceClaims { c.Sub = sub; return c }
func withSid(c *conformanceClaims, sid string) *conformanceClaims { c.Sid = sid; return c }
func withScopes(c *conformanceClaims, s ...string) *conformanceClaims {
	c.Scopes = s
	return c
}
func withActors(c *conformanceClaims, a ...string) *conformanceClaims {
	c.Actors = a
	return c
}

func writeConformanceFile(t *testing.T, name string, f conformanceFile) {
	t.Helper()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conformanceDir, name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
