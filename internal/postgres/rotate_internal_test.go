package postgres

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
)

// rotateTestDB opens a fresh database, closed when t ends, with one user,
// "u" (an admin), created at the time it returns.
func rotateTestDB(t *testing.T) (*DB, time.Time) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", Roles: []string{"admin"}, CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := db.Stores().Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return db, t0
}

// TestRotateFast checks that the one-statement rotation takes the common
// case (a live token of an active, unlocked session: everything written,
// audit row included) and declines every other case having written
// nothing, so that RotateRefreshToken's general path decides it.
func TestRotateFast(t *testing.T) {
	ctx := context.Background()
	db, t0 := rotateTestDB(t)
	st := db.Stores()
	sessions := &SessionStore{db: db}
	_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
	sess := &keycard.Session{ID: "s", UserID: "u", CreatedAt: t0, LastUsedAt: t0, IdleTimeout: time.Hour, ExpiresAt: t0.Add(24 * time.Hour), DPoPJKT: "jkt"}
	if err := st.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}, nil); err != nil {
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

// TestRotationUpdatesSessionInPlace checks that a rotation's update of its
// session (last_used_at, which no index holds) finds room on the
// session's page among sessions inserted before and after it, so that
// PostgreSQL can make it a HOT update and leave the session's indexes
// alone (migration 0014: sessions keeps a fill factor of 80). The new
// version stays on the page of the old one, its ctid's block, exactly when
// the page had room; at the default fill factor the page is full and the
// version moves.
func TestRotationUpdatesSessionInPlace(t *testing.T) {
	ctx := context.Background()
	db, t0 := rotateTestDB(t)
	st := db.Stores()
	// Sessions like the one rotated, a few pages of them on either side.
	fill := func(from int) {
		t.Helper()
		if _, err := db.pool.Exec(ctx, `INSERT INTO sessions (id, user_id, created_at, last_used_at, idle_timeout, expires_at, user_agent, client_addr)
			SELECT 'filler' || g, 'u', $1, $1, 3600000000, $2, 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', '192.0.2.1'
			FROM generate_series($3::int, $3::int + 299) g`, t0, t0.Add(24*time.Hour), from); err != nil {
			t.Fatal(err)
		}
	}
	fill(0)
	_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
	sess := &keycard.Session{ID: "s", UserID: "u", CreatedAt: t0, LastUsedAt: t0, IdleTimeout: time.Hour, ExpiresAt: t0.Add(24 * time.Hour),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", ClientAddr: "192.0.2.1"}
	if err := st.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	fill(300)
	page := func() string {
		t.Helper()
		var p string
		if err := db.pool.QueryRow(ctx, `SELECT (ctid::text::point)[0]::text FROM sessions WHERE id = 's'`).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := page()
	if before == "0" {
		t.Fatalf("the session is on the table's first page; the fillers should have filled it")
	}
	now := t0.Add(time.Minute)
	_, nid, nhash, _ := keycard.NewRefreshToken(rand.Reader)
	res, err := st.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
		TokenID: tid, SecretHash: hash, Now: now, Grace: 10 * time.Second,
		Successor: keycard.RefreshToken{ID: nid, SecretHash: nhash}, SuccessorSealed: []byte("sealed"),
		Audit: &keycard.AuditEvent{Time: now, Type: keycard.AuditRefresh}, WithUser: true, WithKeyGeneration: true,
	})
	if err != nil || res.Outcome != keycard.Rotated {
		t.Fatalf("rotate: %+v, %v", res, err)
	}
	if after := page(); after != before {
		t.Errorf("the rotation moved the session from page %s to page %s: no room for an in-place (HOT) update", before, after)
	}
}
