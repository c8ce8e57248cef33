package postgres

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
)

// TestRotateFast checks that the one-statement rotation takes the common
// case (a live token of an active, unlocked session: everything written,
// audit row included) and declines every other case having written
// nothing, so that RotateRefreshToken's general path decides it.
func TestRotateFast(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := db.Stores()
	sessions := &SessionStore{db: db}
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", Roles: []string{"admin"}, CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := st.Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
	sess := &keycard.Session{ID: "s", UserID: "u", CreatedAt: t0, LastUsedAt: t0, IdleTimeout: time.Hour, ExpiresAt: t0.Add(24 * time.Hour), DPoPJKT: "jkt"}
	if err := st.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	request := func(tokenID string, secretHash []byte, presenter *keycard.Presenter) keycard.RotateRequest {
		_, nid, nhash, _ := keycard.NewRefreshToken(rand.Reader)
		return keycard.RotateRequest{
			TokenID: tokenID, SecretHash: secretHash, Now: now, Grace: 10 * time.Second,
			Successor: keycard.RefreshToken{ID: nid, SecretHash: nhash}, SuccessorSealed: []byte("sealed " + nid),
			Audit:    &keycard.AuditEvent{Time: now, Type: keycard.AuditRefresh, ClientAddr: "192.0.2.1"},
			WithUser: true, WithKeyGeneration: true, Presenter: presenter,
		}
	}
	audits := func() int {
		var n int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE type = $1`, keycard.AuditRefresh).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	declines := func(name string, req keycard.RotateRequest) {
		t.Helper()
		before := audits()
		res, err := sessions.rotateFast(ctx, req)
		if res != nil || err != nil {
			t.Fatalf("%s: rotateFast = %+v, %v; want nil, nil", name, res, err)
		}
		if _, err := st.Sessions.RefreshToken(ctx, req.Successor.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("%s: the declined successor was stored (err %v)", name, err)
		}
		if audits() != before {
			t.Errorf("%s: an audit row was written", name)
		}
	}

	declines("wrong secret", request(tid, []byte("not the hash"), &keycard.Presenter{DPoPKey: "jkt"}))
	declines("unknown token", request("nope", hash, &keycard.Presenter{DPoPKey: "jkt"}))
	declines("another key", request(tid, hash, &keycard.Presenter{DPoPKey: "other"}))

	// A session locked by another transaction: declined at once, not
	// waited for.
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM sessions WHERE id = 's' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	declines("session locked", request(tid, hash, &keycard.Presenter{DPoPKey: "jkt"}))
	tx.Rollback(ctx)

	req := request(tid, hash, &keycard.Presenter{DPoPKey: "jkt"})
	res, err := sessions.rotateFast(ctx, req)
	if err != nil || res == nil {
		t.Fatalf("rotateFast of a live token = %v, %v; want a rotation", res, err)
	}
	if res.Outcome != keycard.Rotated || res.Session.ID != "s" || !res.Session.LastUsedAt.Equal(now) ||
		res.Presented.ID != tid || !res.Presented.RotatedAt.Equal(now) || res.Presented.SuccessorID != req.Successor.ID ||
		res.Successor.ID != req.Successor.ID || res.Successor.SessionID != "s" ||
		res.User == nil || res.User.ID != "u" || len(res.User.Roles) != 1 || res.KeyGeneration == 0 {
		t.Errorf("rotateFast result %+v, session %+v, presented %+v, user %+v", res, res.Session, res.Presented, res.User)
	}
	stored, err := st.Sessions.RefreshToken(ctx, tid)
	if err != nil || !stored.RotatedAt.Equal(now) || stored.SuccessorID != req.Successor.ID || string(stored.SuccessorSealed) != "sealed "+req.Successor.ID {
		t.Errorf("presented token after rotation: %+v, %v", stored, err)
	}
	succ, err := st.Sessions.RefreshToken(ctx, req.Successor.ID)
	if err != nil || !succ.Live() || succ.SessionID != "s" || !succ.CreatedAt.Equal(now) {
		t.Errorf("successor: %+v, %v", succ, err)
	}
	got, err := st.Sessions.Session(ctx, "s")
	if err != nil || !got.LastUsedAt.Equal(now) {
		t.Errorf("session after rotation: %+v, %v", got, err)
	}
	events, err := st.Audit.ListAudit(ctx, keycard.AuditFilter{Type: keycard.AuditRefresh})
	if err != nil || len(events) != 1 || events[0].Actor != "u" || events[0].Subject != "u" || events[0].ClientAddr != "192.0.2.1" {
		t.Errorf("audit rows %+v, %v; want one, by and about u", events, err)
	}

	// The rotated token, however often presented, is the general path's.
	declines("rotated token", request(tid, hash, &keycard.Presenter{DPoPKey: "jkt"}))

	// An ended session too.
	if _, err := st.Sessions.RevokeSession(ctx, "s", now, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	declines("revoked session", request(req.Successor.ID, req.Successor.SecretHash, &keycard.Presenter{DPoPKey: "jkt"}))
}
