package storetest

import (
	"context"
	"testing"

	"github.com/keycard-auth/keycard"
)

// testCreateSessionAudit checks that CreateSession appends its audit event
// in the session's transaction: with the session, for a sign-in and for a
// grant session, and never without it.
func testCreateSessionAudit(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "ivan")
	const typ = "login.succeeded"
	events := func() []*keycard.AuditEvent {
		t.Helper()
		evs, err := s.Audit.ListAudit(ctx, keycard.AuditFilter{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	event := func(detail string) *keycard.AuditEvent {
		return &keycard.AuditEvent{Time: t0, Type: typ, Actor: u.ID, Subject: u.ID, ClientAddr: "192.0.2.9", UserAgent: "ua", Detail: []byte(detail)}
	}

	sess := newSession(t, u.ID, t0)
	e := event(`{"session":"` + sess.ID + `"}`)
	if err := s.Sessions.CreateSession(ctx, sess, newToken(t), &keycard.CreateSessionOptions{Audit: e}); err != nil {
		t.Fatalf("CreateSession with an audit event: %v", err)
	}
	if e.ID == 0 {
		t.Error("CreateSession did not set the audit event's ID")
	}
	got := events()
	if len(got) != 1 || got[0].ID != e.ID || got[0].Subject != u.ID || got[0].Actor != u.ID || !got[0].Time.Equal(t0) ||
		got[0].ClientAddr != "192.0.2.9" || string(got[0].Detail) != `{"session":"`+sess.ID+`"}` {
		t.Fatalf("audit after CreateSession: %+v, want the one event given", got)
	}

	grant := newGrantSession(t, sess, "app", t0)
	if err := s.Sessions.CreateSession(ctx, grant, nil, &keycard.CreateSessionOptions{Audit: event(`{"grant":true}`), WithKeyGeneration: true}); err != nil {
		t.Fatalf("CreateSession(grant) with an audit event: %v", err)
	}
	if got := events(); len(got) != 2 {
		t.Fatalf("%d events after a grant session's CreateSession, want 2", len(got))
	}

	// A CreateSession that fails writes neither the session nor the
	// event: an unknown user, a taken session id, a taken token id, an
	// invalid event.
	failed := []struct {
		name  string
		sess  *keycard.Session
		tok   *keycard.RefreshToken
		event *keycard.AuditEvent
		want  string
	}{
		{"unknown user", newSession(t, "missing", t0), newToken(t), event(`{}`), keycard.ENOTFOUND},
		{"same session id", &keycard.Session{ID: sess.ID, UserID: u.ID, ExpiresAt: t0}, newToken(t), event(`{}`), keycard.ECONFLICT},
		{"invalid event", newSession(t, u.ID, t0), newToken(t), &keycard.AuditEvent{Time: t0, Detail: []byte(`{}`)}, keycard.EINVALID},
		{"event detail not an object", newSession(t, u.ID, t0), newToken(t), event(`[1]`), keycard.EINVALID},
	}
	for _, tt := range failed {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateSession", s.Sessions.CreateSession(ctx, tt.sess, tt.tok, &keycard.CreateSessionOptions{Audit: tt.event, WithKeyGeneration: true}), tt.want)
			if got := events(); len(got) != 2 {
				t.Errorf("%d events after a failed CreateSession, want 2 (nothing half-written)", len(got))
			}
			if tt.sess.ID != sess.ID {
				_, err := s.Sessions.Session(ctx, tt.sess.ID)
				wantCode(t, "Session after failed CreateSession", err, keycard.ENOTFOUND)
				_, err = s.Sessions.RefreshToken(ctx, tt.tok.ID)
				wantCode(t, "RefreshToken after failed CreateSession", err, keycard.ENOTFOUND)
			}
		})
	}
}
