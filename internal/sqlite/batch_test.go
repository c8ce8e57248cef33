package sqlite

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// TestRotateBatch runs one batch of the batcher holding every kind of rotation and checks
// that each gets the result it would get alone: the refused and failed
// ones leave nothing behind, and the others commit.
func TestRotateBatch(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "keycard.db"))
	s := db.Stores()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	newToken := func() *keycard.RefreshToken {
		_, id, hash, err := keycard.NewRefreshToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &keycard.RefreshToken{ID: id, SecretHash: hash, CreatedAt: t0}
	}
	newSession := func() *keycard.RefreshToken {
		id, err := keycard.NewID(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tok := newToken()
		sess := &keycard.Session{ID: id, UserID: u.ID, CreatedAt: t0, LastUsedAt: t0,
			IdleTimeout: keycard.DefaultIdleTimeout, ExpiresAt: t0.Add(keycard.DefaultSessionLifetime)}
		if err := s.Sessions.CreateSession(ctx, sess, tok, nil); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	at := t0.Add(time.Minute)
	// rotation is one RotateRefreshToken as the batcher runs it.
	type rotation struct {
		call *batchCall
		res  *keycard.RotateResult
	}
	call := func(ctx context.Context, tok *keycard.RefreshToken, succ *keycard.RefreshToken) *rotation {
		req := keycard.RotateRequest{
			TokenID: tok.ID, SecretHash: tok.SecretHash, Now: at, Grace: keycard.DefaultRotationGrace,
			Successor: *succ, SuccessorSealed: []byte("sealed:" + succ.ID), WithUser: true,
			Audit: &keycard.AuditEvent{Time: at, Type: keycard.AuditRefresh},
		}
		r := &rotation{}
		r.call = &batchCall{ctx: ctx, done: make(chan struct{}), fn: func(ctx context.Context, tx txn) (err error) {
			r.res, err = rotate(ctx, tx, req)
			return err
		}}
		return r
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	a, b, c, d := newSession(), newSession(), newSession(), newSession()
	aSucc, aSecond, bSucc, cSucc, dSucc := newToken(), newToken(), newToken(), newToken(), newToken()
	wrong := *c
	wrong.SecretHash = append([]byte{}, c.SecretHash...)
	wrong.SecretHash[0] ^= 1
	taken := *bSucc
	taken.ID = d.ID // an existing token's id: the insert fails after the update
	batch := []*rotation{
		call(ctx, a, aSucc),      // rotates
		call(ctx, b, &taken),     // fails with ECONFLICT after writing
		call(ctx, a, aSecond),    // sees the first rotation: replays it
		call(ctx, &wrong, cSucc), // refused
		call(canceled, d, dSucc), // never runs
		call(ctx, b, bSucc),      // b is still live: rotates
	}
	var calls []*batchCall
	for _, r := range batch {
		calls = append(calls, r.call)
	}
	db.writeBatch(calls)

	tests := []struct {
		name     string
		call     *rotation
		outcome  keycard.RotateOutcome
		code     string
		succ     string
		live     *keycard.RefreshToken // the presented token's live successor, or itself
		notFound *keycard.RefreshToken // an offered successor that must not exist
	}{
		{"rotation", batch[0], keycard.Rotated, "", aSucc.ID, aSucc, aSecond},
		{"conflict", batch[1], 0, keycard.ECONFLICT, "", nil, nil},
		{"replay in the same batch", batch[2], keycard.Replayed, "", aSucc.ID, aSucc, aSecond},
		{"wrong secret", batch[3], 0, keycard.EUNAUTHORIZED, "", c, cSucc},
		{"canceled", batch[4], 0, "", "", d, dSucc},
		{"rotation after a failed one", batch[5], keycard.Rotated, "", bSucc.ID, bSucc, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.call.res, tt.call.call.err
			switch {
			case tt.name == "canceled":
				if err != context.Canceled || res != nil {
					t.Errorf("got %+v, %v; want nil, %v", res, err, context.Canceled)
				}
			case tt.code != "":
				if keycard.ErrorCode(err) != tt.code || res != nil {
					t.Errorf("got %+v, %v; want nil, code %q", res, err, tt.code)
				}
			case err != nil:
				t.Fatalf("got error %v, want %v", err, tt.outcome)
			case res.Outcome != tt.outcome || res.Successor.ID != tt.succ || res.User == nil || res.User.ID != u.ID:
				t.Errorf("got %v to %s for user %+v; want %v to %s for %s", res.Outcome, res.Successor.ID, res.User, tt.outcome, tt.succ, u.ID)
			}
			if tt.live != nil {
				if got, err := s.Sessions.RefreshToken(ctx, tt.live.ID); err != nil || !got.Live() {
					t.Errorf("token %s: got %+v, %v; want live", tt.live.ID, got, err)
				}
			}
			if tt.notFound != nil {
				_, err := s.Sessions.RefreshToken(ctx, tt.notFound.ID)
				if keycard.ErrorCode(err) != keycard.ENOTFOUND {
					t.Errorf("offered successor %s: got %v, want ENOTFOUND", tt.notFound.ID, err)
				}
			}
		})
	}
	// The failed rotation of b was undone (with its transaction; the
	// others ran again): b was live for the later rotation, which is the
	// only one recorded for it.
	if got, err := s.Sessions.RefreshToken(ctx, b.ID); err != nil || got.SuccessorID != bSucc.ID {
		t.Errorf("token b: got %+v, %v; want rotated to %s", got, err, bSucc.ID)
	}
	events, err := s.Audit.ListAudit(ctx, keycard.AuditFilter{Type: keycard.AuditRefresh})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Errorf("got %d refresh audit events, want 2 (the two rotations)", len(events))
	}
}

// TestBatchUndo checks that a write that fails after writing leaves
// nothing, whatever its error, that one refused before writing or failing
// with any error does not stop the others, and that every other write of
// the batch commits once, having run again where the batch was redone.
func TestBatchUndo(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, filepath.Join(t.TempDir(), "keycard.db"))
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		u := &keycard.User{ID: id, Username: id, NormalizedUsername: id, PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
		if err := db.Stores().Users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	rename := func(id string) func(ctx context.Context, tx txn) error {
		return func(ctx context.Context, tx txn) error {
			_, err := tx.ExecContext(ctx, `UPDATE users SET username = username || '+' WHERE id = ?`, id)
			return err
		}
	}
	then := func(fn func(ctx context.Context, tx txn) error, err error) func(ctx context.Context, tx txn) error {
		return func(ctx context.Context, tx txn) error {
			if e := fn(ctx, tx); e != nil {
				return e
			}
			return err
		}
	}
	refused := &keycard.Error{Code: keycard.EINVALID, Message: "refused"}
	failed := errors.New("failed")
	read := func(ctx context.Context, tx txn) error {
		var n int
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	}
	runs := map[string]int{}
	counted := func(name string, fn func(ctx context.Context, tx txn) error) func(ctx context.Context, tx txn) error {
		return func(ctx context.Context, tx txn) error {
			runs[name]++
			return fn(ctx, tx)
		}
	}
	calls := []struct {
		name string
		fn   func(ctx context.Context, tx txn) error
		err  error
	}{
		{"a", rename("a"), nil},
		{"b refused after writing", then(rename("b"), refused), refused},
		{"refused before writing", then(read, refused), refused},
		{"c", rename("c"), nil},
		{"d failed after writing", then(rename("d"), failed), failed},
		{"failed before writing", then(read, failed), failed},
		{"e", rename("e"), nil},
	}
	var batch []*batchCall
	for _, c := range calls {
		batch = append(batch, &batchCall{ctx: ctx, fn: counted(c.name, c.fn), done: make(chan struct{})})
	}
	db.writeBatch(batch)
	for i, c := range calls {
		if got := batch[i].err; !errors.Is(got, c.err) {
			t.Errorf("%s: got error %v, want %v", c.name, got, c.err)
		}
	}
	for id, want := range map[string]string{"a": "a+", "b": "b", "c": "c+", "d": "d", "e": "e+"} {
		u, err := db.Stores().Users.UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != want {
			t.Errorf("user %s: got username %q, want %q", id, u.Username, want)
		}
	}
	// Four transactions: undone at b, at d, at the failure before writing
	// (an error that is not a refusal may have ended the transaction), and
	// committed. "a" ran in all four, "e" in the last only.
	if runs["a"] != 4 || runs["e"] != 1 || runs["b refused after writing"] != 1 {
		t.Errorf("got runs %v, want a 4 times, e once, b once", runs)
	}
}

// TestRotateClosed checks that a rotation asked of a closed DB fails.
func TestRotateClosed(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "keycard.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = db.Stores().Sessions.RotateRefreshToken(context.Background(), keycard.RotateRequest{TokenID: "t", SecretHash: []byte("h")})
	if err == nil {
		t.Error("RotateRefreshToken after Close: got nil error")
	}
}

// TestSealedCodeRefusalsSkipTheWriter: a redemption refused before it
// could use the code (a wrong verifier: no grant session) or of an
// expired code asks whether the code was used on the read pool, so that
// replays of codes never redeemed do not queue on the one writer. With
// the writer held, such refusals still answer; a code that was used goes
// to the writer (which revokes its grant) once it is free.
func TestSealedCodeRefusalsSkipTheWriter(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "keycard.db"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	grants := NewGrantStore(db)
	now := time.Now()
	unused := keycard.RedeemRequest{Kind: keycard.GrantKindSealedCode, ID: "never-redeemed-code-id", ExpiresAt: now.Add(time.Minute), At: now}
	expired := unused
	expired.ExpiresAt, expired.Session = now.Add(-time.Second), &keycard.Session{ID: "s", UserID: "u", ParentID: "p", ClientID: "c"}

	held, release := make(chan struct{}), make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		writerDone <- db.update(ctx, func(tx txn) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	for _, c := range []struct {
		name string
		r    keycard.RedeemRequest
		want string
	}{{"refused", unused, keycard.ENOTFOUND}, {"expired", expired, keycard.EUNAUTHORIZED}} {
		answered := make(chan error, 1)
		go func() { _, err := grants.Redeem(ctx, c.r); answered <- err }()
		select {
		case err := <-answered:
			if keycard.ErrorCode(err) != c.want {
				t.Errorf("%s, with the writer held: %v, want %s", c.name, err, c.want)
			}
		case <-ctx.Done():
			// A minute: it was waiting for the writer.
			t.Errorf("%s waited for the writer", c.name)
		}
	}
	close(release)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
}
