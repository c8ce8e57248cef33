package auth

import (
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

func TestRevocationFeedPages(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	store := f.db.Stores().Revocations
	page, err := f.svc.Revocations(ctx, 0)
	if err != nil || len(page.Entries) != 0 || page.Next != 0 || page.Snapshot {
		t.Fatalf("Revocations(empty) = %+v, %v; want no entries, next 0, no snapshot", page, err)
	}
	var seqs []int64
	for i := range 4 {
		r := &keycard.Revocation{Kind: keycard.RevokeToken, Value: "jti", At: f.clock.Now(), ExpiresAt: f.clock.Now().Add(time.Duration(i+1) * time.Minute)}
		if err := store.AddRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, r.Seq)
	}
	if _, err := store.PruneRevocations(ctx, f.clock.Now().Add(90*time.Second)); err != nil { // drops the first
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		after        int64
		wantFirst    int64
		wantN        int
		wantNext     int64
		wantSnapshot bool
	}{
		{"compacted cursor", 0, seqs[1], 3, seqs[3], true},
		{"cursor just before the oldest kept", seqs[0], seqs[1], 3, seqs[3], false},
		{"middle", seqs[1], seqs[2], 2, seqs[3], false},
		{"caught up", seqs[3], 0, 0, seqs[3], false},
		{"cursor from the future", seqs[3] + 10, seqs[1], 3, seqs[3], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := f.svc.Revocations(ctx, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) != tt.wantN || page.Next != tt.wantNext || page.Snapshot != tt.wantSnapshot {
				t.Errorf("Revocations(%d) = %d entries, next %d, snapshot %v; want %d, %d, %v", tt.after, len(page.Entries), page.Next, page.Snapshot, tt.wantN, tt.wantNext, tt.wantSnapshot)
			}
			if tt.wantN > 0 && page.Entries[0].Seq != tt.wantFirst {
				t.Errorf("first entry %d, want %d", page.Entries[0].Seq, tt.wantFirst)
			}
		})
	}
	// Everything pruned: an old cursor gets an empty snapshot and the last seq.
	if _, err := store.PruneRevocations(ctx, f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	page, err = f.svc.Revocations(ctx, seqs[1])
	if err != nil || len(page.Entries) != 0 || page.Next != seqs[3] || !page.Snapshot {
		t.Errorf("Revocations(all pruned) = %+v, %v; want an empty snapshot with next %d", page, err, seqs[3])
	}
	if _, err := f.svc.Revocations(ctx, -1); keycard.ErrorCode(err) != keycard.EINVALID {
		t.Errorf("Revocations(-1): %v, want EINVALID", err)
	}
}

func TestRevocationsChangedWakes(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	changed := f.svc.RevocationsChanged()
	select {
	case <-changed:
		t.Fatal("RevocationsChanged closed before any revocation")
	default:
	}
	if err := f.svc.Logout(ctx, p, Agent{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("RevocationsChanged not closed by a logout")
	}
	page, err := f.svc.Revocations(ctx, 0)
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Kind != keycard.RevokeSession || page.Entries[0].Value != tok.SessionID {
		t.Errorf("feed after logout = %+v, %v; want the session", page, err)
	}
}

func TestRevokeAll(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	f.user(t, "bob")
	a, _ := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	b, _ := f.svc.Login(ctx, "bob", "correct horse battery", Agent{})
	n, err := f.svc.RevokeAll(ctx, Operator())
	if err != nil || n != 2 {
		t.Fatalf("RevokeAll = %d, %v; want 2", n, err)
	}
	for _, tok := range []*Tokens{a, b} {
		if _, err := f.svc.Refresh(ctx, tok.RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Errorf("Refresh after RevokeAll: %v, want EUNAUTHORIZED", err)
		}
		if _, err := f.svc.Authenticate(ctx, tok.AccessToken); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Errorf("Authenticate after RevokeAll: %v, want EUNAUTHORIZED", err)
		}
	}
	page, _ := f.svc.Revocations(ctx, 0)
	last := page.Entries[len(page.Entries)-1]
	if last.Kind != keycard.RevokeAllUsers || !last.At.Equal(f.clock.Now()) || !last.ExpiresAt.Equal(f.clock.Now().Add(keycard.DefaultRevocationTTL)) {
		t.Errorf("last feed entry %+v, want a global cut-off now", last)
	}
	events, _ := f.db.Stores().Audit.ListAudit(ctx, keycard.AuditFilter{Type: keycard.AuditRevokeAll})
	if len(events) != 1 || events[0].Actor != "cli" {
		t.Errorf("audit: %+v, want one revoke_all by the command line (cli)", events)
	}
}

func TestRevokeKey(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	_, oldKID, err := f.svc.Keys().Signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active, err := f.svc.RevokeKey(ctx, Operator(), oldKID)
	if err != nil {
		t.Fatal(err)
	}
	if active.KID == oldKID || active.State != keycard.KeyActive {
		t.Errorf("RevokeKey returned %s (%s), want a new active key", active.KID, active.State)
	}
	if _, kid, _ := f.svc.Keys().Signer(ctx); kid != active.KID {
		t.Errorf("signing kid %s, want %s", kid, active.KID)
	}
	// No wait for the key cache: the old key is gone at once.
	if _, err := f.svc.Authenticate(ctx, tok.AccessToken); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("Authenticate(token of revoked key): %v, want EUNAUTHORIZED", err)
	}
	keys, _ := f.svc.Keys().VerificationKeys(ctx)
	if keys.Lookup(oldKID) != nil {
		t.Errorf("revoked kid %s still in the verification keys", oldKID)
	}
	page, _ := f.svc.Revocations(ctx, 0)
	if last := page.Entries[len(page.Entries)-1]; last.Kind != keycard.RevokeKey || last.Value != oldKID {
		t.Errorf("last feed entry %+v, want the key", last)
	}
	if _, err := f.svc.RevokeKey(ctx, Operator(), oldKID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("RevokeKey(again): %v, want ENOTFOUND", err)
	}
	events, _ := f.db.Stores().Audit.ListAudit(ctx, keycard.AuditFilter{Type: keycard.AuditKeyRevoked})
	if len(events) != 1 || events[0].Subject != oldKID {
		t.Errorf("audit: %+v, want one key.revoked of %s", events, oldKID)
	}
	// A fresh login signs with the new key.
	tok2, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, tok2.AccessToken); err != nil {
		t.Errorf("Authenticate(new token): %v", err)
	}
}

func TestPasswordChangeCutOff(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	u, err := f.svc.Register(ctx, "alice", "correct horse battery", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetPassword(ctx, Operator(), u.ID, "another good password", ""); err != nil {
		t.Fatal(err)
	}
	page, _ := f.svc.Revocations(ctx, 0)
	if n := len(page.Entries); n != 1 || page.Entries[0].Kind != keycard.RevokeUser || page.Entries[0].Value != u.ID {
		t.Errorf("feed after password change: %+v, want the user's cut-off", page.Entries)
	}
}
