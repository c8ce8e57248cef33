package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jwt"
)

// Token type identifiers of RFC 8693 section 3. Keycard exchanges access
// tokens for access tokens; the others are named so that a request
// naming one gets a clear refusal.
const (
	TokenTypeURIAccess  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeURIRefresh = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeURIID      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeURIJWT     = "urn:ietf:params:oauth:token-type:jwt"
)

// MaxActorChain is the longest chain of actors a token may record (RFC
// 8693 section 4.1): a subject token whose act claim already holds this
// many is not exchanged again.
const MaxActorChain = 8

// AuditTokenExchanged is the audit event of a token exchange.
const AuditTokenExchanged = "token.exchanged"

// Error codes of a refused token exchange (RFC 6749 section 5.2, RFC 8693
// section 2.2.2, RFC 8707 section 2).
const (
	ExchangeInvalidRequest     = "invalid_request"
	ExchangeInvalidTarget      = "invalid_target"
	ExchangeInvalidScope       = "invalid_scope"
	ExchangeUnauthorizedClient = "unauthorized_client"
)

// ExchangeError is the refusal of a token exchange request: an OAuth
// error code (the Exchange… constants) and a description for the
// developer. The token endpoint answers it 400 with that code.
type ExchangeError struct {
	Code        string
	Description string
}

func (e *ExchangeError) Error() string {
	return fmt.Sprintf("auth: token exchange refused: %s: %s", e.Code, e.Description)
}

func exchangeError(code, format string, args ...any) *ExchangeError {
	return &ExchangeError{Code: code, Description: fmt.Sprintf(format, args...)}
}

// ExchangeRequest is a token exchange request (RFC 8693 section 2.1), its
// parameters as the client sent them; the token endpoint has checked only
// that each appears at most once.
type ExchangeRequest struct {
	SubjectToken       string
	SubjectTokenType   string
	ActorToken         string
	ActorTokenType     string
	RequestedTokenType string
	// Audience and Resource name the target service: a logical name and
	// an absolute URI (RFC 8707); at least one, each among the client's
	// exchange audiences.
	Audience string
	Resource string
	Scope    string
}

// Exchanged is the token a token exchange issues.
type Exchanged struct {
	AccessToken string
	ExpiresIn   int64 // seconds
	Scope       string
	// IssuedTokenType is TokenTypeURIAccess.
	IssuedTokenType string
	// TokenType is TokenTypeDPoP for a token bound to the client's DPoP
	// key, else TokenTypeBearer.
	TokenType string
}

// ExchangeToken is the token exchange grant (RFC 8693) for a service
// client that authenticated (a confidential client, its secret or a
// client assertion checked) and is allowed keycard.GrantTokenExchange. It
// trades a user's access token — the subject token — for an access token
// to another service, which:
//
//   - is for the same user and the same session (sub and sid), so that
//     logout, "sign out everywhere", theft detection and every other
//     revocation of the session end it as they end the subject token;
//   - has aud the requested audience and/or resource, each one of the
//     client's TokenExchangeAudiences (invalid_target otherwise);
//   - has the requested scopes, each one the subject token has
//     (invalid_scope otherwise), or without a scope parameter all of
//     them: never wider;
//   - expires no later than the subject token, and no later than a token
//     the server would mint for the user and client now;
//   - records the client as actor: act.sub is its id, nesting the
//     subject token's act when it has one (RFC 8693 section 4.1);
//     client_id is the client's;
//   - carries the subject token's roles, auth_time and custom claims.
//
// The subject token must be an access token (subject_token_type
// TokenTypeURIAccess) that this server signed with a published key, not
// expired (no leeway), of a user's session that is still active, its jti
// not revoked and its user enabled: the checks introspection makes.
// Anything else — an ID token, a refresh token, a service client's own
// token, another issuer's, an expired or revoked one — is
// invalid_request, as RFC 8693 section 2.2.2 requires. An actor token,
// when given, must be a live access token of the client itself (its
// client_credentials token): the actor is always the authenticated client.
// requested_token_type, when given, must be TokenTypeURIAccess. No
// refresh token is issued.
//
// The error is an *ExchangeError for a refused request; anything else is
// an internal failure.
func (s *Service) ExchangeToken(ctx context.Context, client *keycard.Client, req ExchangeRequest, a Agent) (*Exchanged, error) {
	if client == nil || client.Public() {
		return nil, exchangeError(ExchangeUnauthorizedClient, "Token exchange is for confidential clients.")
	}
	if !client.AllowsGrant(keycard.GrantTokenExchange) {
		return nil, exchangeError(ExchangeUnauthorizedClient, "This client may not use the token exchange grant.")
	}
	if err := requireDPoP(ctx, client); err != nil {
		return nil, err
	}
	switch {
	case req.SubjectToken == "":
		return nil, exchangeError(ExchangeInvalidRequest, `Parameter "subject_token" is required.`)
	case req.SubjectTokenType == "":
		return nil, exchangeError(ExchangeInvalidRequest, `Parameter "subject_token_type" is required.`)
	case req.SubjectTokenType != TokenTypeURIAccess:
		return nil, exchangeError(ExchangeInvalidRequest, "Unsupported subject_token_type: only %s is exchanged.", TokenTypeURIAccess)
	case req.ActorToken == "" && req.ActorTokenType != "":
		return nil, exchangeError(ExchangeInvalidRequest, `Parameter "actor_token_type" is only for an actor_token.`)
	case req.ActorToken != "" && req.ActorTokenType != TokenTypeURIAccess:
		return nil, exchangeError(ExchangeInvalidRequest, "The actor_token_type must be %s.", TokenTypeURIAccess)
	case req.RequestedTokenType != "" && req.RequestedTokenType != TokenTypeURIAccess:
		return nil, exchangeError(ExchangeInvalidRequest, "Unsupported requested_token_type: only %s is issued.", TokenTypeURIAccess)
	}
	aud, err := exchangeAudience(client, req.Audience, req.Resource)
	if err != nil {
		return nil, err
	}
	if s.cfg.Issuer == "" || s.keys == nil {
		return nil, errors.New("auth: minting tokens needs an issuer and signing keys")
	}
	var sub jwt.AccessClaims
	u, err := s.liveExchangeToken(ctx, req.SubjectToken, &sub)
	if err != nil {
		return nil, exchangeRefusal(err, "The subject_token is not an active access token of a user.")
	}
	if u == nil {
		return nil, exchangeError(ExchangeInvalidRequest, "The subject_token is not an active access token of a user.")
	}
	if sub.Act.Depth() >= MaxActorChain {
		return nil, exchangeError(ExchangeInvalidRequest, "The subject_token already records %d actors, the most allowed.", MaxActorChain)
	}
	if req.ActorToken != "" {
		var act jwt.AccessClaims
		_, err := s.liveExchangeToken(ctx, req.ActorToken, &act)
		if err != nil {
			return nil, exchangeRefusal(err, "The actor_token is not an active access token of this client.")
		}
		if act.SessionID != "" || act.Subject != client.ID {
			return nil, exchangeError(ExchangeInvalidRequest, "The actor_token is not an active access token of this client.")
		}
	}
	scope, err := exchangeScope(sub.Scope, req.Scope)
	if err != nil {
		return nil, err
	}
	custom, err := s.customOf(req.SubjectToken)
	if err != nil {
		return nil, err
	}

	signer, _, err := s.keys.Signer(ctx)
	if err != nil {
		return nil, err
	}
	jti, err := keycard.NewID(s.rand)
	if err != nil {
		return nil, err
	}
	now := s.now()
	exp := now.Add(s.grantPolicy(u, client).AccessTTL)
	if sub.ExpiresAt.Before(exp) {
		exp = sub.ExpiresAt.Time
	}
	c := &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   sub.Subject,
			Audience:  aud,
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		SessionID: sub.SessionID,
		ClientID:  client.ID,
		Scope:     scope,
		Roles:     slices.Clone(sub.Roles),
		AuthTime:  sub.AuthTime,
		// The user's sign-in, as the subject token tells it: the
		// exchange authenticates a service, never the user again.
		ACR: sub.ACR,
		AMR: slices.Clone(sub.AMR),
		Act: &jwt.Actor{Subject: client.ID, Act: cloneActor(sub.Act)},
		// Bound to the exchanging client's key when it sent a DPoP proof
		// (RFC 9449 section 5: every grant), never to the subject
		// token's: the client cannot prove the user's key.
		Confirmation: jwt.Confirmation{JKT: DPoPKey(ctx)},
	}
	tok, err := s.sign(ctx, signer, extend(c, custom))
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditTokenExchanged, ClientActor(client, a), sub.Subject, map[string]any{
		"session": sub.SessionID, "jti": jti, "subject_jti": sub.ID, "audience": []string(aud), "scope": scope, "actors": c.Act.Chain(),
	})
	expiresIn := int64(c.ExpiresAt.Sub(now) / time.Second)
	return &Exchanged{AccessToken: tok, ExpiresIn: max(expiresIn, 0), Scope: scope, IssuedTokenType: TokenTypeURIAccess, TokenType: tokenType(ctx)}, nil
}

// liveExchangeToken verifies an access token given to the token exchange
// into c: signed by this server with a published key, of type at+jwt, not
// expired (no leeway) and live (liveAccess). It returns its user, nil for
// a service client's token, or EUNAUTHORIZED.
func (s *Service) liveExchangeToken(ctx context.Context, token string, c *jwt.AccessClaims) (*keycard.User, error) {
	if err := s.introspector.Parse(token, c); err != nil {
		s.log.DebugContext(ctx, "token exchange: token rejected", "err", err)
		return nil, errToken()
	}
	if !s.now().Before(c.ExpiresAt.Time) {
		return nil, errToken()
	}
	u, _, err := s.liveAccess(ctx, c)
	return u, err
}

// exchangeRefusal turns the refusal of a presented token (EUNAUTHORIZED)
// into invalid_request with the description (RFC 8693 section 2.2.2);
// other errors pass through.
func exchangeRefusal(err error, description string) error {
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		return exchangeError(ExchangeInvalidRequest, "%s", description)
	}
	return err
}

// exchangeAudience returns the audience of an exchanged token: the
// audience parameter, then the resource parameter, each of which must be
// one of the client's exchange audiences, exactly. A resource must be an
// absolute URI without a fragment (RFC 8707 section 2).
func exchangeAudience(c *keycard.Client, audience, resource string) (jwt.Audience, error) {
	if audience == "" && resource == "" {
		return nil, exchangeError(ExchangeInvalidRequest, `Name the target service with "audience" or "resource".`)
	}
	if resource != "" {
		u, err := url.Parse(resource)
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(resource, "#") {
			return nil, exchangeError(ExchangeInvalidTarget, "The resource must be an absolute URI without a fragment.")
		}
	}
	var aud jwt.Audience
	for _, t := range []string{audience, resource} {
		if t == "" || slices.Contains(aud, t) {
			continue
		}
		if !c.MayExchangeFor(t) {
			return nil, exchangeError(ExchangeInvalidTarget, "This client may not obtain tokens for %q.", truncate(t, 64))
		}
		aud = append(aud, t)
	}
	return aud, nil
}

// exchangeScope returns the scope of an exchanged token: the requested
// scopes, each of which the subject token must have; without a request,
// all of the subject token's.
func exchangeScope(have, requested string) (string, error) {
	held := strings.Fields(have)
	if strings.Trim(requested, " ") == "" {
		return strings.Join(held, " "), nil
	}
	var out []string
	for _, sc := range strings.Split(requested, " ") {
		if sc == "" {
			continue
		}
		if !isScopeToken(sc) {
			return "", exchangeError(ExchangeInvalidScope, "The scope parameter is malformed.")
		}
		if !slices.Contains(held, sc) {
			return "", exchangeError(ExchangeInvalidScope, "Scope %q is not in the subject_token: an exchange never widens the scope.", truncate(sc, 64))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " "), nil
}

// customOf returns the custom claims of a verified access token: its
// members that are not ReservedClaims, which the custom-claims hook added
// when it was minted. The exchanged token carries them on: they describe
// the user, and the services behind the new audience may rely on them as
// much as the first one did.
func (s *Service) customOf(token string) (map[string]json.RawMessage, error) {
	if s.claimsHook == nil {
		return nil, nil
	}
	var all map[string]json.RawMessage
	if err := s.introspector.Parse(token, &all); err != nil {
		return nil, fmt.Errorf("auth: reading the custom claims of a verified token: %w", err)
	}
	for name := range all {
		if slices.Contains(ReservedClaims, strings.ToLower(name)) {
			delete(all, name)
		}
	}
	return all, nil
}

// cloneActor returns a deep copy of a chain of actors.
func cloneActor(a *jwt.Actor) *jwt.Actor {
	if a == nil {
		return nil
	}
	return &jwt.Actor{Subject: a.Subject, Act: cloneActor(a.Act)}
}
