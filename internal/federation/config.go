// Package federation is Keycard's relying-party side: it signs users in
// at upstream identity providers the operator configures — any OpenID
// Connect provider by its issuer URL, or an OAuth 2.0 provider without
// OpenID Connect (GitHub-style) through a userinfo mapping — and hands
// the checked, mapped identity to auth.Service (docs/federation.md).
//
// What it checks, for an OpenID Connect provider: the discovery document's
// issuer; the authorization response's state (by the caller), its "iss"
// (RFC 9207, required when the provider advertises
// authorization_response_iss_parameter_supported, compared whenever
// present); the code exchanged with PKCE S256; the ID token's signature by
// a key of the provider's JWK Set, fetched and cached by Keycard's own
// verifier.RemoteKeySet, with an asymmetric algorithm only, its iss, aud,
// azp, exp and iat, and its nonce. Logout tokens from the provider's
// back-channel logout are checked the same way, with their events claim.
//
// The package knows no store and no account: it imports jose, jwt and
// verifier only.
package federation

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Kinds of providers.
const (
	KindOIDC   = "oidc"   // OpenID Connect: discovery, ID token
	KindOAuth2 = "oauth2" // OAuth 2.0 only: the identity from a userinfo endpoint
)

// Config describes one upstream provider. Its YAML and JSON names are
// those of docs/federation.md.
type Config struct {
	// Name identifies the provider in URLs, tokens (the idp claim) and
	// linked identities: 1 to 32 of a-z, 0-9, "-" and "_". Renaming a
	// provider unlinks every identity linked through it.
	Name string `json:"name" yaml:"name"`
	// DisplayName is the label of its button ("Sign in with …");
	// default Name.
	DisplayName string `json:"display_name,omitempty" yaml:"display_name"`
	// Kind is KindOIDC (default) or KindOAuth2.
	Kind string `json:"kind,omitempty" yaml:"kind"`
	// Issuer is an OpenID Connect provider's issuer URL, whose
	// discovery document gives the endpoints and the JWK Set.
	Issuer string `json:"issuer,omitempty" yaml:"issuer"`
	// AuthorizationEndpoint, TokenEndpoint and UserinfoEndpoint are an
	// OAuth 2.0 provider's endpoints (required for KindOAuth2). For an
	// OpenID Connect provider, a UserinfoEndpoint given here is asked
	// for claims the ID token lacks (discovery's is used when
	// UseUserinfo is set).
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty" yaml:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint,omitempty" yaml:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint,omitempty" yaml:"userinfo_endpoint"`
	// UseUserinfo asks an OpenID Connect provider's userinfo endpoint
	// for the claims, merged under the ID token's (whose sub must match).
	UseUserinfo bool `json:"use_userinfo,omitempty" yaml:"use_userinfo"`
	// ClientID and ClientSecret are Keycard's registration at the
	// provider. The secret is sent with HTTP Basic (client_secret_basic)
	// unless AuthMethod is "client_secret_post"; a public registration
	// has none (PKCE alone).
	ClientID     string `json:"client_id" yaml:"client_id"`
	ClientSecret string `json:"client_secret,omitempty" yaml:"client_secret"`
	AuthMethod   string `json:"auth_method,omitempty" yaml:"auth_method"`
	// Scopes asked for; default "openid email profile" for OpenID
	// Connect (openid is always added), none for OAuth 2.0.
	Scopes []string `json:"scopes,omitempty" yaml:"scopes"`
	// Claims maps the provider's claims to Keycard's; see ClaimMap.
	Claims ClaimMap `json:"claims,omitzero" yaml:"claims"`
	// Roles maps the provider's groups (the Claims.Groups claim) to
	// Keycard roles: a user gets the roles of each group they are in.
	// Only roles named here are ever given or taken away by the
	// provider; no group becomes a role by its own name.
	Roles map[string][]string `json:"roles,omitempty" yaml:"roles"`
	// Domains are email domains whose users are sent to this provider
	// (login_hint, or an address typed at the sign-in page).
	Domains []string `json:"domains,omitempty" yaml:"domains"`
	// CreateUsers allows a first sign-in to create an account
	// (just-in-time); false admits only identities linked to an
	// existing account.
	CreateUsers bool `json:"create_users,omitempty" yaml:"create_users"`
	// Hidden leaves the provider's button off the sign-in page: it is
	// reached by its domains or the idp parameter only.
	Hidden bool `json:"hidden,omitempty" yaml:"hidden"`
}

// ClaimMap names, for each of Keycard's fields, the provider's claim
// (in the ID token, or the userinfo answer) that holds it. Empty fields
// take the OpenID Connect names: sub, email, email_verified,
// preferred_username, groups. A GitHub-style provider, whose userinfo is
// {"id": 1, "login": "…", "email": "…"}, maps Subject to "id" and
// Username to "login". EmailVerified may be "true" for a provider that
// only gives verified addresses (its documentation must say so).
type ClaimMap struct {
	Subject       string `json:"subject,omitempty" yaml:"subject"`
	Email         string `json:"email,omitempty" yaml:"email"`
	EmailVerified string `json:"email_verified,omitempty" yaml:"email_verified"`
	Username      string `json:"username,omitempty" yaml:"username"`
	Groups        string `json:"groups,omitempty" yaml:"groups"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Check checks c and fills in its defaults.
func (c *Config) Check() error {
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("federation: provider name %q must be 1 to 32 of a-z, 0-9, - and _", c.Name)
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("federation: provider %s: %s", c.Name, fmt.Sprintf(format, a...))
	}
	if c.DisplayName == "" {
		c.DisplayName = c.Name
	}
	if c.Kind == "" {
		c.Kind = KindOIDC
	}
	if c.ClientID == "" {
		return fail("client_id is required")
	}
	switch c.AuthMethod {
	case "":
		c.AuthMethod = "client_secret_basic"
	case "client_secret_basic", "client_secret_post":
	default:
		return fail("auth_method must be client_secret_basic or client_secret_post")
	}
	endpoints := []struct{ name, value string }{
		{"authorization_endpoint", c.AuthorizationEndpoint}, {"token_endpoint", c.TokenEndpoint}, {"userinfo_endpoint", c.UserinfoEndpoint}}
	switch c.Kind {
	case KindOIDC:
		if err := checkURL(c.Issuer, true); err != nil {
			return fail("issuer %v", err)
		}
		if !slices.Contains(c.Scopes, "openid") {
			if len(c.Scopes) == 0 {
				c.Scopes = []string{"email", "profile"}
			}
			c.Scopes = append([]string{"openid"}, c.Scopes...)
		}
	case KindOAuth2:
		if c.Issuer != "" {
			return fail("an oauth2 provider has no issuer: give its endpoints")
		}
		for _, e := range endpoints {
			if e.value == "" {
				return fail("%s is required for an oauth2 provider", e.name)
			}
		}
	default:
		return fail("kind must be %s or %s", KindOIDC, KindOAuth2)
	}
	for _, e := range endpoints {
		if e.value == "" {
			continue
		}
		if err := checkURL(e.value, false); err != nil {
			return fail("%s %v", e.name, err)
		}
	}
	for i, d := range c.Domains {
		d = strings.ToLower(strings.TrimPrefix(d, "@"))
		if d == "" || strings.ContainsAny(d, "@/ ") {
			return fail("domain %q is not a domain", c.Domains[i])
		}
		c.Domains[i] = d
	}
	for g, roles := range c.Roles {
		if g == "" || len(roles) == 0 {
			return fail("roles: group %q must map to at least one role", g)
		}
	}
	return nil
}

// ManagedRoles returns every role c.Roles can give, sorted.
func (c *Config) ManagedRoles() []string {
	var out []string
	for _, roles := range c.Roles {
		for _, r := range roles {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkURL checks that raw is an https URL (http only on a loopback
// host, for development and tests), without fragment or user info; an
// issuer has no query either.
func checkURL(raw string, issuer bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || (issuer && (u.RawQuery != "" || u.ForceQuery)) {
		return errors.New("must be an absolute URL without user info or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return errors.New("must be https (http only on a loopback host)")
		}
	default:
		return errors.New("must be an https URL")
	}
	return nil
}
