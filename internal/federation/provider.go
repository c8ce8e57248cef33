package federation

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
	"github.com/keycard-auth/keycard/verifier"
)

// maxResponse bounds every document read from a provider: discovery,
// token response, userinfo.
const maxResponse = 1 << 20

// idTokenLeeway is the clock skew allowed on an ID token's times.
const idTokenLeeway = time.Minute

// BackchannelLogoutEvent is the member of a logout token's events claim
// (OpenID Connect Back-Channel Logout 1.0 section 2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Errors of Finish and VerifyLogoutToken. Each means the sign-in (or the
// logout) is refused; the wrapped text says why, for the log only.
var (
	// ErrDenied: the provider answered the authorization request with
	// an error (the user declined, or the provider refused).
	ErrDenied = errors.New("federation: the provider refused the sign-in")
	// ErrInvalidResponse: the authorization response or a provider's
	// answer is malformed, or fails a check (iss, nonce, audience,
	// signature, …).
	ErrInvalidResponse = errors.New("federation: invalid response from the provider")
	// ErrUnavailable: the provider could not be reached, or answered
	// with a server error.
	ErrUnavailable = errors.New("federation: the provider is unavailable")
)

// Options are shared by the providers of a Set.
type Options struct {
	// HTTPClient talks to the providers; default a client with a 10 s
	// timeout that follows no redirects.
	HTTPClient *http.Client
	// Logger receives discovery and key-set failures; never a token.
	Logger *slog.Logger
	// Now is the clock of the ID token checks; default time.Now.
	Now func() time.Time
	// Keys tunes each provider's JWK Set cache (verifier.RemoteKeySet).
	Keys verifier.RemoteKeySetOptions
	// Load, when set, returns the providers added at run time (each
	// with its client secret), which Set.Refresh puts after the
	// configuration file's.
	Load func(ctx context.Context) ([]Config, error)
	// MaxAge is how long the providers of one Load serve Set.RefreshStale,
	// the reload of the sign-in pages' requests; DefaultMaxAge when zero.
	MaxAge time.Duration
}

// DefaultMaxAge is Options.MaxAge when zero: a provider added, changed or
// removed on another instance takes effect here within a second, as a
// revocation does, and the pages read the store at most once a second
// for it.
const DefaultMaxAge = time.Second

// Provider is one configured upstream provider. It is safe for
// concurrent use.
type Provider struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	keyOpt verifier.RemoteKeySetOptions

	mu   sync.Mutex
	md   *metadata // nil until discovery succeeds
	keys *verifier.RemoteKeySet
	stop context.CancelFunc
}

// metadata is what a provider's discovery document says that the relying
// party uses (OpenID Connect Discovery 1.0 section 3, RFC 9207 section 3).
type metadata struct {
	Issuer                  string   `json:"issuer"`
	AuthorizationEndpoint   string   `json:"authorization_endpoint"`
	TokenEndpoint           string   `json:"token_endpoint"`
	UserinfoEndpoint        string   `json:"userinfo_endpoint"`
	JWKSURI                 string   `json:"jwks_uri"`
	IDTokenSigningAlgs      []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethods    []string `json:"code_challenge_methods_supported"`
	IssParameterSupported   bool     `json:"authorization_response_iss_parameter_supported"`
	BackchannelLogout       bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutNeedsS bool     `json:"backchannel_logout_session_supported"`
}

// Config returns the provider's configuration (with its secret).
func (p *Provider) Config() Config { return p.cfg }

// Name returns the provider's name.
func (p *Provider) Name() string { return p.cfg.Name }

// close stops the provider's key-set refresh.
func (p *Provider) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		p.stop()
	}
	if p.keys != nil {
		p.keys.Close()
	}
}

// discover returns the provider's metadata, fetching it (and starting its
// key set) the first time. A failure is retried at the next sign-in.
func (p *Provider) discover(ctx context.Context) (*metadata, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.md != nil {
		return p.md, nil
	}
	if p.cfg.Kind == KindOAuth2 {
		p.md = &metadata{AuthorizationEndpoint: p.cfg.AuthorizationEndpoint, TokenEndpoint: p.cfg.TokenEndpoint, UserinfoEndpoint: p.cfg.UserinfoEndpoint}
		return p.md, nil
	}
	body, err := p.get(ctx, strings.TrimSuffix(p.cfg.Issuer, "/")+"/.well-known/openid-configuration", "")
	if err != nil {
		return nil, err
	}
	md := new(metadata)
	if err := json.Unmarshal(body, md); err != nil {
		return nil, fmt.Errorf("%w: discovery document of %s: %v", ErrUnavailable, p.cfg.Issuer, err)
	}
	// OpenID Connect Discovery 1.0 section 4.3: the issuer must be the
	// one asked for, exactly, or another provider could pass for it.
	if md.Issuer != p.cfg.Issuer {
		return nil, fmt.Errorf("%w: discovery document of %s names issuer %q", ErrUnavailable, p.cfg.Issuer, md.Issuer)
	}
	for _, e := range []struct{ name, v string }{
		{"authorization_endpoint", md.AuthorizationEndpoint}, {"token_endpoint", md.TokenEndpoint}, {"jwks_uri", md.JWKSURI}} {
		if err := checkURL(e.v, false); err != nil {
			return nil, fmt.Errorf("%w: discovery document of %s: %s %v", ErrUnavailable, p.cfg.Issuer, e.name, err)
		}
	}
	if md.UserinfoEndpoint != "" && checkURL(md.UserinfoEndpoint, false) != nil {
		md.UserinfoEndpoint = ""
	}
	if p.cfg.UserinfoEndpoint != "" {
		md.UserinfoEndpoint = p.cfg.UserinfoEndpoint
	}
	if len(md.CodeChallengeMethods) > 0 && !slices.Contains(md.CodeChallengeMethods, "S256") {
		return nil, fmt.Errorf("%w: %s does not support PKCE S256", ErrUnavailable, p.cfg.Issuer)
	}
	opt := p.keyOpt
	if opt.HTTPClient == nil {
		opt.HTTPClient = p.client
	}
	if opt.Logger == nil {
		opt.Logger = p.log
	}
	keys := verifier.NewRemoteKeySet(md.JWKSURI, opt)
	kctx, cancel := context.WithCancel(context.Background())
	if err := keys.Start(kctx); err != nil {
		// The key set keeps retrying in the background; a sign-in
		// whose key is still missing fails its signature check.
		p.log.Warn("federation: first fetch of the provider's keys failed", "provider", p.cfg.Name, "err", err)
	}
	p.md, p.keys, p.stop = md, keys, cancel
	return md, nil
}

// Discover fetches the provider's metadata now (it is otherwise fetched at
// the first sign-in), so that a configuration error shows at start-up.
func (p *Provider) Discover(ctx context.Context) error {
	_, err := p.discover(ctx)
	return err
}

// Flow is the state of one sign-in between Start and Finish, which the
// caller keeps (sealed, in a cookie) and gives back: the values sent to
// the provider and the PKCE verifier.
type Flow struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n,omitempty"`
	Verifier string `json:"v"`
}

// random returns n random bytes, base64url.
func random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Start begins a sign-in: it returns the URL of the provider's
// authorization endpoint (code flow, PKCE S256, state, nonce) and the flow
// to give back to Finish. redirectURI is Keycard's callback for this
// provider; loginHint, when not empty, is passed on.
func (p *Provider) Start(ctx context.Context, redirectURI, loginHint string) (string, *Flow, error) {
	md, err := p.discover(ctx)
	if err != nil {
		return "", nil, err
	}
	f := &Flow{Provider: p.cfg.Name}
	for _, v := range []*string{&f.State, &f.Verifier} {
		if *v, err = random(32); err != nil {
			return "", nil, err
		}
	}
	q := url.Values{
		"response_type": {"code"}, "client_id": {p.cfg.ClientID}, "redirect_uri": {redirectURI},
		"state": {f.State}, "code_challenge": {challenge(f.Verifier)}, "code_challenge_method": {"S256"},
	}
	if len(p.cfg.Scopes) > 0 {
		q.Set("scope", strings.Join(p.cfg.Scopes, " "))
	}
	if p.cfg.Kind == KindOIDC {
		if f.Nonce, err = random(32); err != nil {
			return "", nil, err
		}
		q.Set("nonce", f.Nonce)
		if loginHint != "" {
			q.Set("login_hint", loginHint)
		}
	}
	sep := "?"
	if strings.Contains(md.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	return md.AuthorizationEndpoint + sep + q.Encode(), f, nil
}

// AuthorizationEndpoint returns the provider's authorization endpoint:
// the configured one of an OAuth 2.0 provider, the discovered one of an
// OpenID Connect provider, or its issuer until discovery succeeds.
func (p *Provider) AuthorizationEndpoint() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.md != nil:
		return p.md.AuthorizationEndpoint
	case p.cfg.Kind == KindOAuth2:
		return p.cfg.AuthorizationEndpoint
	}
	return p.cfg.Issuer
}

func challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Identity is what the provider said about the user, mapped by the
// provider's ClaimMap and Roles.
type Identity struct {
	Provider      string
	Subject       string
	Email         string
	EmailVerified bool
	Username      string
	Groups        []string
	// Roles are the Keycard roles Groups map to.
	Roles []string
	// SessionID is the ID token's sid, if any.
	SessionID string
}

// Finish completes a sign-in from the provider's authorization response
// (the callback's query) and the flow Start returned, which the caller
// has matched to the response by its state. It checks the response's iss
// (RFC 9207), exchanges the code with the PKCE verifier, verifies the ID
// token (signature by the provider's keys, iss, aud, azp, exp, iat,
// nonce) and maps the claims.
func (p *Provider) Finish(ctx context.Context, f *Flow, q url.Values, redirectURI string) (*Identity, error) {
	md, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	if f == nil || f.Provider != p.cfg.Name || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return nil, fmt.Errorf("%w: state does not match this provider's sign-in", ErrInvalidResponse)
	}
	// RFC 9207 section 2.4: the issuer in the response is checked
	// before anything else, whenever the provider sends one, and is
	// required of a provider that says it sends it. A response another
	// provider made (mix-up) fails here.
	if iss, ok := q["iss"]; ok || md.IssParameterSupported {
		if p.cfg.Kind != KindOIDC || len(iss) != 1 || iss[0] != p.cfg.Issuer {
			return nil, fmt.Errorf("%w: iss %q of the authorization response is not the provider's issuer", ErrInvalidResponse, iss)
		}
	}
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("%w: %.64q: %.200q", ErrDenied, e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 || len(q["code"]) != 1 {
		return nil, fmt.Errorf("%w: the response has no code", ErrInvalidResponse)
	}
	tok, err := p.exchange(ctx, md, code, f.Verifier, redirectURI)
	if err != nil {
		return nil, err
	}
	claims := map[string]any{}
	if p.cfg.Kind == KindOIDC {
		if tok.IDToken == "" {
			return nil, fmt.Errorf("%w: the token response has no id_token", ErrInvalidResponse)
		}
		if claims, err = p.verifyIDToken(tok.IDToken, f.Nonce); err != nil {
			return nil, err
		}
	}
	if p.cfg.Kind == KindOAuth2 || p.cfg.UseUserinfo || p.cfg.UserinfoEndpoint != "" {
		info, err := p.userinfo(ctx, md, tok.AccessToken)
		if err != nil {
			return nil, err
		}
		if p.cfg.Kind == KindOIDC {
			// OpenID Connect Core section 5.3.2: the userinfo sub
			// must be the ID token's, or the answer is not about
			// this user.
			if s, _ := info["sub"].(string); s != claims["sub"] {
				return nil, fmt.Errorf("%w: the userinfo sub is not the ID token's", ErrInvalidResponse)
			}
		}
		for k, v := range info {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return p.mapClaims(claims)
}

// tokenResponse is the token endpoint's answer (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
}

// exchange redeems the code at the token endpoint with the PKCE verifier.
func (p *Provider) exchange(ctx context.Context, md *metadata, code, verifier, redirectURI string) (*tokenResponse, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	if p.cfg.ClientSecret == "" || p.cfg.AuthMethod == "client_secret_post" {
		form.Set("client_id", p.cfg.ClientID)
	}
	if p.cfg.ClientSecret != "" && p.cfg.AuthMethod == "client_secret_post" {
		form.Set("client_secret", p.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, md.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.cfg.ClientSecret != "" && p.cfg.AuthMethod == "client_secret_basic" {
		// RFC 6749 section 2.3.1: each part form-encoded first.
		req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.cfg.ClientSecret))
	}
	body, status, err := p.do(req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if status >= 500 {
			return nil, fmt.Errorf("%w: token endpoint answered %d", ErrUnavailable, status)
		}
		return nil, fmt.Errorf("%w: token endpoint answered %d %.64q", ErrInvalidResponse, status, e.Error)
	}
	t := new(tokenResponse)
	if err := json.Unmarshal(body, t); err != nil || t.AccessToken == "" {
		return nil, fmt.Errorf("%w: token response is not a token", ErrInvalidResponse)
	}
	if !strings.EqualFold(t.TokenType, "bearer") && p.cfg.Kind == KindOAuth2 && t.TokenType != "" {
		return nil, fmt.Errorf("%w: token type %.32q is not Bearer", ErrInvalidResponse, t.TokenType)
	}
	return t, nil
}

// asymmetric are the algorithms an upstream token may be signed with: a
// provider's keys are public, so an HMAC "signature" made with one would
// prove nothing.
var asymmetric = []jose.Algorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// algorithms returns the algorithms the provider's ID tokens may use: the
// asymmetric ones among those it advertises, RS256 when it advertises
// none (OpenID Connect Discovery 1.0 section 3 makes RS256 the default).
func (p *Provider) algorithms() []jose.Algorithm {
	p.mu.Lock()
	md := p.md
	p.mu.Unlock()
	var out []jose.Algorithm
	for _, a := range md.IDTokenSigningAlgs {
		if slices.Contains(asymmetric, jose.Algorithm(a)) {
			out = append(out, jose.Algorithm(a))
		}
	}
	if len(out) == 0 {
		out = []jose.Algorithm{jose.RS256}
	}
	return out
}

func (p *Provider) keySet() *verifier.RemoteKeySet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys
}

// verifyIDToken checks an ID token (OpenID Connect Core section 3.1.3.7)
// and returns its claims.
func (p *Provider) verifyIDToken(token, nonce string) (map[string]any, error) {
	parser := jwt.NewParser(p.keySet(), jwt.WithIssuer(p.cfg.Issuer), jwt.WithAudience(p.cfg.ClientID),
		jwt.WithAlgorithms(p.algorithms()...), jwt.WithLeeway(idTokenLeeway), jwt.WithRequired("sub", "iat"),
		jwt.WithNow(p.now))
	var claims jwt.MapClaims
	if err := parser.Parse(token, &claims); err != nil {
		return nil, fmt.Errorf("%w: ID token: %v", ErrInvalidResponse, err)
	}
	if err := p.checkAudience(claims); err != nil {
		return nil, err
	}
	// The nonce binds the ID token to this browser's sign-in: a token
	// from another sign-in (replayed) or without one is refused.
	got, _ := claims["nonce"].(string)
	if nonce == "" || subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return nil, fmt.Errorf("%w: ID token nonce is missing or not this sign-in's", ErrInvalidResponse)
	}
	return claims, nil
}

// checkAudience checks azp (OpenID Connect Core section 3.1.3.7 steps 4
// and 5): with several audiences, azp must be present; when present it
// must be Keycard's client id. The parser already checked that aud
// contains it.
func (p *Provider) checkAudience(claims jwt.MapClaims) error {
	azp, hasAZP := claims["azp"]
	if auds, ok := claims["aud"].([]any); ok && len(auds) > 1 && !hasAZP {
		return fmt.Errorf("%w: token for several audiences without azp", ErrInvalidResponse)
	}
	if hasAZP && azp != p.cfg.ClientID {
		return fmt.Errorf("%w: token's azp %v is not Keycard's client", ErrInvalidResponse, azp)
	}
	return nil
}

// userinfo asks the userinfo endpoint with the access token.
func (p *Provider) userinfo(ctx context.Context, md *metadata, access string) (map[string]any, error) {
	if md.UserinfoEndpoint == "" {
		return nil, fmt.Errorf("%w: the provider has no userinfo endpoint", ErrUnavailable)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, md.UserinfoEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Accept", "application/json")
	body, status, err := p.do(req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		if status >= 500 {
			return nil, fmt.Errorf("%w: userinfo answered %d", ErrUnavailable, status)
		}
		return nil, fmt.Errorf("%w: userinfo answered %d", ErrInvalidResponse, status)
	}
	info := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&info); err != nil {
		return nil, fmt.Errorf("%w: userinfo is not a JSON object", ErrInvalidResponse)
	}
	return info, nil
}

// mapClaims maps the provider's claims by the configuration.
func (p *Provider) mapClaims(claims map[string]any) (*Identity, error) {
	m := p.cfg.Claims
	or := func(name, def string) string {
		if name == "" {
			return def
		}
		return name
	}
	id := &Identity{Provider: p.cfg.Name}
	id.Subject = stringClaim(claims[or(m.Subject, "sub")])
	if id.Subject == "" {
		return nil, fmt.Errorf("%w: no subject (claim %q)", ErrInvalidResponse, or(m.Subject, "sub"))
	}
	id.Email = stringClaim(claims[or(m.Email, "email")])
	switch m.EmailVerified {
	case "true":
		id.EmailVerified = id.Email != ""
	default:
		switch v := claims[or(m.EmailVerified, "email_verified")].(type) {
		case bool:
			id.EmailVerified = v
		case string: // some providers send "true"
			id.EmailVerified = v == "true"
		}
	}
	id.Username = stringClaim(claims[or(m.Username, "preferred_username")])
	id.SessionID, _ = claims["sid"].(string)
	switch g := claims[or(m.Groups, "groups")].(type) {
	case []any:
		for _, v := range g {
			if s := stringClaim(v); s != "" {
				id.Groups = append(id.Groups, s)
			}
		}
	case string:
		id.Groups = strings.Fields(g)
	}
	for _, g := range id.Groups {
		for _, r := range p.cfg.Roles[g] {
			if !slices.Contains(id.Roles, r) {
				id.Roles = append(id.Roles, r)
			}
		}
	}
	slices.Sort(id.Roles)
	return id, nil
}

// stringClaim returns a string claim, or a number's decimal form (GitHub's
// id is a number).
func stringClaim(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
	}
	return ""
}

// Logout is what a verified logout token names.
type Logout struct {
	Subject   string
	SessionID string
}

// VerifyLogoutToken checks a logout token the provider POSTed to
// Keycard's back-channel logout endpoint (OpenID Connect Back-Channel
// Logout 1.0 section 2.6): signed by the provider's keys with an
// asymmetric algorithm, typ "logout+jwt" or "JWT" or none, iss the
// provider's, aud Keycard's client id, iat present, exp (when present)
// not passed, the back-channel logout event in events, sub or sid, and
// no nonce (so that an ID token is never taken for a logout token).
func (p *Provider) VerifyLogoutToken(ctx context.Context, token string) (*Logout, error) {
	if p.cfg.Kind != KindOIDC {
		return nil, fmt.Errorf("%w: an oauth2 provider has no back-channel logout", ErrInvalidResponse)
	}
	if _, err := p.discover(ctx); err != nil {
		return nil, err
	}
	parser := jwt.NewParser(p.keySet(), jwt.WithIssuer(p.cfg.Issuer), jwt.WithAudience(p.cfg.ClientID),
		jwt.WithAlgorithms(p.algorithms()...), jwt.WithLeeway(idTokenLeeway), jwt.WithRequired("iat", "jti"),
		jwt.WithoutExpiration(), jwt.WithNow(p.now), jwt.WithMaxSize(16<<10))
	var claims jwt.MapClaims
	h, err := parser.ParseWithHeader(token, &claims)
	if err != nil {
		return nil, fmt.Errorf("%w: logout token: %v", ErrInvalidResponse, err)
	}
	if h.Type != "" && h.Type != "logout+jwt" && h.Type != "JWT" {
		return nil, fmt.Errorf("%w: logout token typ %q", ErrInvalidResponse, h.Type)
	}
	if err := p.checkAudience(claims); err != nil {
		return nil, err
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events[BackchannelLogoutEvent].(map[string]any); !ok {
		return nil, fmt.Errorf("%w: logout token without the back-channel logout event", ErrInvalidResponse)
	}
	if _, ok := claims["nonce"]; ok {
		return nil, fmt.Errorf("%w: logout token with a nonce", ErrInvalidResponse)
	}
	l := &Logout{}
	l.Subject, _ = claims["sub"].(string)
	l.SessionID, _ = claims["sid"].(string)
	if l.Subject == "" && l.SessionID == "" {
		return nil, fmt.Errorf("%w: logout token names neither sub nor sid", ErrInvalidResponse)
	}
	return l, nil
}

// get fetches a JSON document.
func (p *Provider) get(ctx context.Context, u, bearer string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	body, status, err := p.do(req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %d", ErrUnavailable, u, status)
	}
	return body, nil
}

// do sends req and reads at most maxResponse bytes of a JSON answer.
func (p *Provider) do(req *http.Request) ([]byte, int, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: reading %s: %v", ErrUnavailable, req.URL.Redacted(), err)
	}
	if len(body) > maxResponse {
		return nil, 0, fmt.Errorf("%w: %s answered more than %d bytes", ErrInvalidResponse, req.URL.Redacted(), maxResponse)
	}
	if resp.StatusCode == http.StatusOK {
		if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, 0, fmt.Errorf("%w: %s answered %q, not JSON", ErrInvalidResponse, req.URL.Redacted(), resp.Header.Get("Content-Type"))
		}
	}
	return body, resp.StatusCode, nil
}
