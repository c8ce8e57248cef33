package auth

import (
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

// Limits on an application client's registration.
const (
	MaxRedirectURIs   = 20
	MaxRedirectURILen = 2048
)

// ClientSpec is a client's registration: what CreateClient and
// UpdateClient are given.
//
//   - Name: 1 to MaxClientNameLen bytes of text.
//   - Scopes and Audiences: RFC 6749 scope-tokens, repeats dropped.
//   - OAuth.GrantTypes: client_credentials, authorization_code,
//     refresh_token, the device code grant; empty means client_credentials
//     alone (a service client); token exchange (RFC 8693). A public client
//     may have neither client_credentials nor token exchange;
//     authorization_code needs redirect URIs.
//   - OAuth.TokenExchangeAudiences: for clients of token exchange, and
//     at least one for them; RFC 6749 scope-tokens (an audience name or
//     an absolute URI), repeats dropped, at most MaxClientAudience.
//   - OAuth.RedirectURIs: absolute, without fragment or user info: https;
//     http only on a loopback host (localhost, 127.0.0.1, [::1]: native
//     apps and development, RFC 8252 section 7.3); or a private-use scheme
//     with a dot in it (com.example.app:/callback, RFC 8252 section 7.1).
//     No wildcards: requests must repeat one exactly.
//   - OAuth.PostLogoutRedirectURIs: the same rules.
//   - OAuth.BackchannelLogoutURI: https, or http on a loopback host.
//   - OAuth.TokenAuthMethod: none for public clients (and only for them);
//     client_secret_basic or client_secret_post (the default: either), or
//     private_key_jwt with OAuth.JWKS (a JWK Set of public keys) or
//     OAuth.JWKSURI (https) for confidential ones.
//   - Lifetimes: not negative.
//   - OAuth.DPoP: optional (stored as empty) or required.
type ClientSpec struct {
	Name      string
	Scopes    []string
	Audiences []string
	OAuth     keycard.OAuthSettings
}

// invalid returns an EINVALID error for a registration.
func invalid(format string, args ...any) error {
	return keycard.Errorf(keycard.EINVALID, format, args...)
}

// client checks the spec and returns the client it describes, without id,
// secret or times.
func (spec ClientSpec) client() (*keycard.Client, error) {
	if err := checkClientName(spec.Name); err != nil {
		return nil, err
	}
	scopes, err := cleanList("scope", spec.Scopes, MaxClientScopes, MaxScopeLen, isScopeToken)
	if err != nil {
		return nil, err
	}
	audiences, err := cleanList("audience", spec.Audiences, MaxClientAudience, MaxAudienceLen, isScopeToken)
	if err != nil {
		return nil, err
	}
	o := spec.OAuth
	grants := []string{}
	for _, g := range o.GrantTypes {
		switch g {
		case keycard.GrantClientCredentials, keycard.GrantAuthorizationCode, keycard.GrantRefreshToken, keycard.GrantDeviceCode, keycard.GrantTokenExchange:
		default:
			return nil, invalid("Unknown grant type %q: use client_credentials, authorization_code, refresh_token, %s or %s.", truncate(g, 64), keycard.GrantDeviceCode, keycard.GrantTokenExchange)
		}
		if !slices.Contains(grants, g) {
			grants = append(grants, g)
		}
	}
	if len(grants) == 0 {
		grants = nil
	}
	o.GrantTypes = grants
	has := func(g string) bool {
		return slices.Contains(grants, g) || g == keycard.GrantClientCredentials && len(grants) == 0
	}
	if o.RedirectURIs, err = cleanURIs("redirect URI", o.RedirectURIs); err != nil {
		return nil, err
	}
	if o.PostLogoutRedirectURIs, err = cleanURIs("post-logout redirect URI", o.PostLogoutRedirectURIs); err != nil {
		return nil, err
	}
	if has(keycard.GrantAuthorizationCode) && len(o.RedirectURIs) == 0 {
		return nil, invalid("A client of the authorization_code grant needs at least one redirect URI.")
	}
	if !has(keycard.GrantAuthorizationCode) && (len(o.RedirectURIs) > 0 || len(o.PostLogoutRedirectURIs) > 0) {
		return nil, invalid("Redirect URIs are for clients of the authorization_code grant.")
	}
	if o.TokenExchangeAudiences, err = cleanList("exchange audience", o.TokenExchangeAudiences, MaxClientAudience, MaxAudienceLen, isScopeToken); err != nil {
		return nil, err
	}
	switch {
	case has(keycard.GrantTokenExchange) && len(o.TokenExchangeAudiences) == 0:
		return nil, invalid("A client of token exchange needs at least one exchange audience: the audiences it may ask tokens for.")
	case !has(keycard.GrantTokenExchange) && len(o.TokenExchangeAudiences) > 0:
		return nil, invalid("Exchange audiences are for clients of the token exchange grant.")
	case len(o.TokenExchangeAudiences) == 0:
		o.TokenExchangeAudiences = nil
	}
	if o.BackchannelLogoutURI != "" {
		if err := checkServerURI("back-channel logout URI", o.BackchannelLogoutURI); err != nil {
			return nil, err
		}
	}
	switch {
	case o.Public:
		if has(keycard.GrantClientCredentials) {
			return nil, invalid("A public client cannot use client_credentials: it has no secret.")
		}
		if has(keycard.GrantTokenExchange) {
			return nil, invalid("A public client cannot use token exchange: it has no secret.")
		}
		if o.TokenAuthMethod != "" && o.TokenAuthMethod != keycard.AuthNone {
			return nil, invalid("A public client does not authenticate: its token_endpoint_auth_method is none.")
		}
		o.TokenAuthMethod = keycard.AuthNone
	case o.TokenAuthMethod == keycard.AuthNone:
		return nil, invalid("Only a public client may authenticate with none.")
	case o.TokenAuthMethod == "", o.TokenAuthMethod == keycard.AuthClientSecretBasic, o.TokenAuthMethod == keycard.AuthClientSecretPost:
	case o.TokenAuthMethod == keycard.AuthPrivateKeyJWT:
		if (len(o.JWKS) == 0) == (o.JWKSURI == "") {
			return nil, invalid("private_key_jwt needs the client's public keys: a JWK Set or a JWKS URI, one of them.")
		}
	default:
		return nil, invalid("Unknown token_endpoint_auth_method %q.", truncate(o.TokenAuthMethod, 64))
	}
	if o.TokenAuthMethod != keycard.AuthPrivateKeyJWT && (len(o.JWKS) > 0 || o.JWKSURI != "") {
		return nil, invalid("A JWK Set is for clients that authenticate with private_key_jwt.")
	}
	if len(o.JWKS) > 0 {
		set, err := jose.ParseKeySet(o.JWKS)
		if err != nil {
			return nil, invalid("The client's JWK Set does not parse: %s", truncate(err.Error(), 200))
		}
		if len(set.Keys()) == 0 {
			return nil, invalid("The client's JWK Set holds no usable key.")
		}
		for _, k := range set.Keys() {
			if k.IsPrivate() || k.Public() == nil {
				return nil, invalid("The client's JWK Set must hold asymmetric public keys only.")
			}
		}
	}
	if o.JWKSURI != "" {
		if err := checkServerURI("JWKS URI", o.JWKSURI); err != nil {
			return nil, err
		}
	}
	for _, d := range []time.Duration{o.AccessTTL, o.RefreshLifetime, o.RefreshIdle} {
		if d < 0 {
			return nil, invalid("Token lifetimes must not be negative.")
		}
	}
	switch o.DPoP {
	case "", keycard.DPoPOptional:
		o.DPoP = ""
	case keycard.DPoPRequired:
	default:
		return nil, invalid("Unknown DPoP policy %q: use optional or required.", truncate(o.DPoP, 64))
	}
	return &keycard.Client{Name: spec.Name, Scopes: scopes, Audiences: audiences, OAuth: o}, nil
}

// cleanURIs checks registered redirect URIs and drops repeats.
func cleanURIs(what string, uris []string) ([]string, error) {
	var out []string
	for _, u := range uris {
		if err := checkRedirectURI(u); err != nil {
			return nil, invalid("Invalid %s %q: %s", what, truncate(u, 100), err)
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	if len(out) > MaxRedirectURIs {
		return nil, invalid("At most %d %ss are allowed.", MaxRedirectURIs, what)
	}
	return out, nil
}

// uriProblem is why a URI cannot be registered.
type uriProblem string

func (p uriProblem) Error() string { return string(p) }

// checkRedirectURI checks one redirect URI to register (RFC 6749 section
// 3.1.2, RFC 8252 sections 7.1 and 7.3, RFC 9700 section 4.1).
func checkRedirectURI(raw string) error {
	if raw == "" || len(raw) > MaxRedirectURILen {
		return uriProblem("it must be 1 to 2048 characters")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return uriProblem("it may not hold spaces, control characters or backslashes")
		}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return uriProblem("it must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return uriProblem("it may not have a fragment")
	}
	if u.User != nil {
		return uriProblem("it may not have user information")
	}
	if strings.Contains(raw, "*") {
		return uriProblem("wildcards are not allowed: register each URI")
	}
	switch scheme := u.Scheme; {
	case scheme == "https":
		if u.Host == "" {
			return uriProblem("an https URI needs a host")
		}
	case scheme == "http":
		if !loopbackHost(u.Hostname()) {
			return uriProblem("http is allowed only on a loopback host (localhost, 127.0.0.1, [::1]); use https")
		}
	case strings.Contains(scheme, "."):
		// A private-use scheme of a native app, in reverse domain form.
	default:
		return uriProblem("the scheme must be https, http on a loopback host, or a private-use scheme such as com.example.app")
	}
	return nil
}

// checkServerURI checks a URI the server calls: https, or http on a
// loopback host.
func checkServerURI(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" || len(raw) > MaxRedirectURILen {
		return invalid("Invalid %s %q: it must be an absolute https URI without user information or fragment.", what, truncate(raw, 100))
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname())) {
		return invalid("Invalid %s %q: use https (http only on a loopback host).", what, truncate(raw, 100))
	}
	return nil
}

// loopbackHost reports whether host is localhost or a loopback IP.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MatchRedirectURI reports whether a request's redirect_uri is one of the
// client's: by exact string comparison, except that for a loopback IP URI
// registered without a port (http://127.0.0.1/… or http://[::1]/…, a
// native app's, RFC 8252 section 7.3) any port is accepted, everything
// else still exact. A loopback URI registered with a port names the one
// port its application listens on: another port there may be another
// local program's, so it is refused like any other difference.
func MatchRedirectURI(registered []string, requested string) bool {
	if slices.Contains(registered, requested) {
		return true
	}
	req, ok := withoutLoopbackPort(requested)
	if !ok {
		return false
	}
	for _, r := range registered {
		// reg == r: registered without a port.
		if reg, ok := withoutLoopbackPort(r); ok && reg == r && reg == req {
			return true
		}
	}
	return false
}

// withoutLoopbackPort returns an http URI on a loopback IP literal with
// its port taken out, character for character otherwise; ok is false for
// any other URI.
func withoutLoopbackPort(raw string) (string, bool) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return "", false
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	if strings.Contains(authority, "@") {
		return "", false
	}
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		host, port = authority, ""
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	if !loopbackIP(host) {
		return "", false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "http://" + host + rest[end:], true
}

// loopbackIP reports whether host is a loopback IP literal (not a name:
// RFC 8252 section 8.3).
func loopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
