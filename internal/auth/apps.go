package auth

import (
	"cmp"
	"context"
	"slices"

	"github.com/keycard-auth/keycard"
)

// App is an application with access to a user's account, as the account
// page ("Apps with access") and the admin console show it: a third-party
// client the user consented to, or any client the user is signed in to
// through grant sessions (a first-party one needs no consent), or both.
type App struct {
	Client *keycard.Client
	// Consent is the user's consent to the client; nil for none.
	Consent *keycard.Consent
	// Sessions are the user's active grant sessions of the client,
	// newest first.
	Sessions []*keycard.Session
}

// Apps returns the applications with access to the user's account:
// those the user consented to, and those the user has active grant
// sessions of, ordered by name. A client deleted meanwhile is left out.
func (s *Service) Apps(ctx context.Context, userID string) ([]*App, error) {
	consents, err := s.stores.Grants.ListConsents(ctx, userID)
	if err != nil {
		return nil, err
	}
	byClient := map[string]*App{}
	var order []string
	app := func(clientID string) *App {
		a, ok := byClient[clientID]
		if !ok {
			a = &App{}
			byClient[clientID] = a
			order = append(order, clientID)
		}
		return a
	}
	for _, c := range consents {
		app(c.ClientID).Consent = c
	}
	before := ""
	for {
		page, err := s.stores.Sessions.ListSessions(ctx, keycard.SessionFilter{UserID: userID, ActiveAt: s.now(), Before: before, Limit: keycard.MaxPageSize})
		if err != nil {
			return nil, err
		}
		for _, sess := range page {
			if sess.ClientID != "" {
				a := app(sess.ClientID)
				a.Sessions = append(a.Sessions, sess)
			}
		}
		if len(page) < keycard.MaxPageSize {
			break
		}
		before = page[len(page)-1].ID
	}
	out := make([]*App, 0, len(order))
	for _, id := range order {
		c, err := s.stores.Clients.Client(ctx, id)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		a := byClient[id]
		a.Client = c
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *App) int {
		return cmp.Or(cmp.Compare(a.Client.Name, b.Client.Name), cmp.Compare(a.Client.ID, b.Client.ID))
	})
	return out, nil
}

// SignOutOfApp ends the user's grant sessions of the client — the user is
// signed out of that application, whose refresh tokens stop working and
// whose access tokens every verifier refuses through the revocation feed
// — and returns how many ended. The consent, if any, stays: the
// application may sign the user in again without asking
// (RevokeConsent takes it back). The reason is RevokeAdmin for an admin,
// RevokeLogout otherwise.
func (s *Service) SignOutOfApp(ctx context.Context, by Actor, userID, clientID string) (int, error) {
	reason := keycard.RevokeLogout
	if by.Kind == ActorAdmin && !by.is(userID) {
		reason = keycard.RevokeAdmin
	}
	ids, err := s.stores.Sessions.RevokeClientSessions(ctx, userID, clientID, s.now(), reason)
	if err != nil {
		return 0, err
	}
	s.stats.SessionsRevoked(reason, len(ids))
	s.audit(ctx, keycard.AuditLogout, by, userID, map[string]any{"client": clientID, "sessions": ids, "reason": reason})
	return len(ids), nil
}
