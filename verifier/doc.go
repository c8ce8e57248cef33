// Package verifier lets a service (a resource server, in OAuth terms)
// accept Keycard access tokens without asking the auth server on each
// request, while still honouring logout, revocation and key rotation
// within a second.
//
// A [Verifier] holds three things, each kept up to date in the
// background:
//
//   - the issuer's signing keys, from its JWKS ([RemoteKeySet]): cached,
//     refreshed within the bounds of Cache-Control, refetched (once,
//     rate-limited) when a token names an unknown kid and at once when
//     the revocation feed revokes a key, and kept when the endpoint is
//     down;
//   - a [RevocationSet] of revoked sessions, token ids, user and global
//     cut-offs and key ids, fed by a [Follower] of the issuer's
//     revocation feed (server-sent events, falling back to long-polling);
//   - a verification cache, so that a token seen before skips the
//     signature check (expiry and revocation are checked every time).
//
// Use it as net/http middleware:
//
//	v, err := verifier.New(ctx, verifier.Config{
//		Issuer:       "https://auth.example.com",
//		Audience:     "api",
//		ClientID:     "orders-service",
//		ClientSecret: secret,
//	})
//	if err != nil { … }
//	defer v.Close()
//	mux.Handle("POST /orders", v.Middleware()(verifier.RequireScope("orders:write")(orders)))
//
// and in the handler:
//
//	claims, _ := verifier.FromContext(r.Context())
//
// A token that another service obtained for the user by token exchange
// (RFC 8693) names the user as subject and that service as actor:
// [Claims.Actors] is the chain, most recent first, empty for a user's own
// token. It carries the user's session, so the user's logout revokes it
// like the user's own token.
//
// A token bound to a client's key (cnf.jkt, DPoP, RFC 9449) is accepted
// only as Authorization: DPoP with a fresh proof of that key for the
// request's method and URL (Config.PublicURL behind a proxy), checked
// with package dpop; as a bearer token it is refused.
//
// A resource that needs a second factor or a recent sign-in says so with
// [RequireACR], [Verifier.RequireMaxAge] or [StepUp]: a token that falls
// short gets 401 insufficient_user_authentication naming acr_values or
// max_age (RFC 9470), on which the client signs the user in again.
//
// Refusals follow RFC 6750: 401 with WWW-Authenticate: Bearer, 403
// insufficient_scope, 400 for a malformed request (two credentials, a
// token in the URL). When the revocation feed has been unreachable for
// longer than Config.MaxFeedOutage (2 minutes), every token is refused
// with 503 unless Config.FailOpen is set; Ready says so.
//
// The package depends on the standard library and Keycard's jose, jwt
// and dpop packages only.
package verifier
