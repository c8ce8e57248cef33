package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/keycard-auth/keycard"
)

// ClaimsHook is the custom-claims hook (docs/claims-hook.md): asked once
// each time tokens are minted for a user — sign-in, refresh, the
// authorization code and device grants — it returns claims to add to the
// access token and, when one is minted, the ID token. Service clients'
// tokens (client credentials) have no user and do not call it.
// internal/claimshook implements it over HTTP.
type ClaimsHook interface {
	Claims(ctx context.Context, r *ClaimsRequest) (*CustomClaims, error)
}

// ClaimsRequest is what the hook is told of the tokens being minted.
type ClaimsRequest struct {
	UserID   string
	Username string
	Roles    []string
	// ClientID is the OAuth client the tokens are for (Config.ClientID
	// for Keycard's own sessions); Scope the tokens' scope.
	ClientID string
	Scope    string
	// SessionID is the session the tokens belong to.
	SessionID string
	// IDToken tells whether an ID token is minted too.
	IDToken bool
}

// CustomClaims are the hook's answer: claims by name, as JSON values, for
// each token. Either may be empty.
type CustomClaims struct {
	AccessToken map[string]json.RawMessage `json:"access_token"`
	IDToken     map[string]json.RawMessage `json:"id_token"`
}

// ReservedClaims are the claims the hook may not set: those Keycard sets
// or will set itself, and those whose meaning a verifier relies on
// (registered JWT claims, OpenID Connect's, RFC 9068's, RFC 8693's, DPoP's
// cnf). A hook answer naming one is a failed answer, not a partial one.
var ReservedClaims = []string{
	"iss", "sub", "aud", "exp", "nbf", "iat", "jti",
	"sid", "client_id", "scope", "scp", "scopes", "roles", "auth_time",
	"acr", "amr", "azp", "nonce", "at_hash", "c_hash", "s_hash",
	"cnf", "act", "may_act", "events", "typ", "token_type",
	"preferred_username", "email", "email_verified", "idp",
}

// maxClaimName bounds a custom claim's name.
const maxClaimName = 256

// check refuses an answer that names a reserved claim, an empty or
// overlong name, or a value that is not one JSON value.
func (c *CustomClaims) check() error {
	for _, m := range []map[string]json.RawMessage{c.AccessToken, c.IDToken} {
		for name, v := range m {
			switch {
			case name == "" || len(name) > maxClaimName:
				return fmt.Errorf("claim name of %d bytes", len(name))
			case slices.Contains(ReservedClaims, strings.ToLower(name)):
				return fmt.Errorf("claim %q is reserved", name)
			case !json.Valid(v) || len(bytes.TrimSpace(v)) == 0:
				return fmt.Errorf("claim %q is not a JSON value", name)
			}
		}
	}
	return nil
}

// customClaims asks the hook, if there is one, for the claims of the
// tokens about to be minted for u. A failed hook (an error, or an answer
// that breaks the rules of check) is logged and, with
// Config.ClaimsHookContinue, the tokens are minted without custom claims;
// otherwise the minting fails with EINTERNAL (the token endpoint's
// server_error): the hook is a dependency, and a token without the claims
// the services expect may grant more than it should.
func (s *Service) customClaims(ctx context.Context, u *keycard.User, sess *keycard.Session, client *keycard.Client, idToken bool) (*CustomClaims, error) {
	if s.claimsHook == nil {
		return nil, nil
	}
	r := &ClaimsRequest{UserID: u.ID, Username: u.Username, Roles: u.Roles, ClientID: s.cfg.ClientID, Scope: s.cfg.userScope(u), SessionID: sess.ID, IDToken: idToken}
	if client != nil {
		r.ClientID, r.Scope = client.ID, sess.Scope
	}
	cc, err := s.claimsHook.Claims(ctx, r)
	if err == nil && cc != nil {
		err = cc.check()
	}
	if err != nil {
		s.stats.ClaimsHookOutcome(ClaimsHookFailed)
		s.log.WarnContext(ctx, "custom-claims hook failed", "user", u.ID, "client", r.ClientID, "continue", s.cfg.ClaimsHookContinue, "err", err)
		if s.cfg.ClaimsHookContinue {
			return nil, nil
		}
		return nil, &keycard.Error{Code: keycard.EINTERNAL, Message: "The custom-claims hook failed."}
	}
	s.stats.ClaimsHookOutcome(ClaimsHookOK)
	return cc, nil
}

func (c *CustomClaims) access() map[string]json.RawMessage {
	if c == nil {
		return nil
	}
	return c.AccessToken
}

func (c *CustomClaims) id() map[string]json.RawMessage {
	if c == nil {
		return nil
	}
	return c.IDToken
}

// withClaims is a claims set with custom claims added after its own.
type withClaims struct {
	base  any
	extra map[string]json.RawMessage
}

// extend returns base with extra's claims added, or base itself when
// there are none.
func extend(base any, extra map[string]json.RawMessage) any {
	if len(extra) == 0 {
		return base
	}
	return withClaims{base, extra}
}

// MarshalJSON writes base's object with the extra members appended in
// name order. base's own members never collide with them: check refuses
// every name Keycard's claims types use.
func (w withClaims) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(w.base)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[len(b)-1] != '}' {
		return nil, fmt.Errorf("auth: claims of %T are not a JSON object", w.base)
	}
	out := bytes.NewBuffer(b[:len(b)-1])
	first := len(b) == 2
	names := make([]string, 0, len(w.extra))
	for name := range w.extra {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !first {
			out.WriteByte(',')
		}
		first = false
		k, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		out.Write(k)
		out.WriteByte(':')
		if err := json.Compact(out, w.extra[name]); err != nil {
			return nil, err
		}
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}
