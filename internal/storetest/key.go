package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

func newKey(t *testing.T, state keycard.KeyState, at time.Time) *keycard.SigningKey {
	t.Helper()
	kid := id(t)
	return &keycard.SigningKey{
		KID:           kid,
		Alg:           "ES256",
		State:         state,
		PrivateSealed: []byte("sealed private key " + kid),
		PublicJWK:     []byte(`{"kty":"EC","crv":"P-256","kid":"` + kid + `"}`),
		CreatedAt:     at,
		ActivatesAt:   at.Add(time.Hour),
	}
}

func testKeys(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	keys, err := s.Keys.ListKeys(ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("ListKeys(empty) = %v, %v; want none", keys, err)
	}
	active := newKey(t, keycard.KeyActive, t0)
	next := newKey(t, keycard.KeyNext, t0.Add(time.Minute))
	hmac := newKey(t, keycard.KeyNext, t0.Add(2*time.Minute))
	hmac.Alg, hmac.PublicJWK = "HS256", nil
	for _, k := range []*keycard.SigningKey{active, next, hmac} {
		if err := s.Keys.CreateKey(ctx, k); err != nil {
			t.Fatalf("CreateKey(%s): %v", k.State, err)
		}
	}
	got, err := s.Keys.Key(ctx, next.KID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Key", got, next)
	keys, err = s.Keys.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "ListKeys", keys, []*keycard.SigningKey{active, next, hmac})

	dup := newKey(t, keycard.KeyNext, t0)
	dup.KID = next.KID
	noPrivate := newKey(t, keycard.KeyNext, t0)
	noPrivate.PrivateSealed = nil
	noAlg := newKey(t, keycard.KeyNext, t0)
	noAlg.Alg = ""
	tests := []struct {
		name string
		k    *keycard.SigningKey
		want string
	}{
		{"duplicate kid", dup, keycard.ECONFLICT},
		{"second active", newKey(t, keycard.KeyActive, t0), keycard.ECONFLICT},
		{"bad state", newKey(t, "revoked", t0), keycard.EINVALID},
		{"no private key", noPrivate, keycard.EINVALID},
		{"no alg", noAlg, keycard.EINVALID},
		{"no kid", &keycard.SigningKey{Alg: "ES256", State: keycard.KeyNext, PrivateSealed: []byte("x")}, keycard.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateKey", s.Keys.CreateKey(ctx, tt.k), tt.want)
		})
	}
	_, err = s.Keys.Key(ctx, "missing")
	wantCode(t, "Key(missing)", err, keycard.ENOTFOUND)
}

func testKeyRotation(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	k1 := newKey(t, keycard.KeyNext, t0)
	k2 := newKey(t, keycard.KeyNext, t0.Add(time.Minute))
	for _, k := range []*keycard.SigningKey{k1, k2} {
		if err := s.Keys.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// First activation: nothing to retire.
	if err := s.Keys.ActivateKey(ctx, k1.KID, t0.Add(time.Hour), t0.Add(2*time.Hour)); err != nil {
		t.Fatalf("ActivateKey(k1): %v", err)
	}
	// Second: k1 retires.
	rotatedAt, removeAfter := t0.Add(30*24*time.Hour), t0.Add(30*24*time.Hour+time.Hour)
	if err := s.Keys.ActivateKey(ctx, k2.KID, rotatedAt, removeAfter); err != nil {
		t.Fatalf("ActivateKey(k2): %v", err)
	}
	want1, want2 := *k1, *k2
	want1.State, want1.RetiredAt, want1.RemoveAfter = keycard.KeyRetired, rotatedAt, removeAfter
	want2.State = keycard.KeyActive
	keys, err := s.Keys.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "keys after rotation", keys, []*keycard.SigningKey{&want1, &want2})

	tests := []struct {
		name string
		kid  string
		want string
	}{
		{"active key", k2.KID, keycard.ECONFLICT},
		{"retired key", k1.KID, keycard.ECONFLICT},
		{"unknown key", "missing", keycard.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "ActivateKey", s.Keys.ActivateKey(ctx, tt.kid, rotatedAt, removeAfter), tt.want)
		})
	}
	if keys, _ := s.Keys.ListKeys(ctx); len(keys) != 2 || keys[1].State != keycard.KeyActive {
		t.Errorf("keys after refused activations: %+v, want unchanged", keys)
	}

	// Removal of retired keys after RemoveAfter.
	n, err := s.Keys.DeleteRemovedKeys(ctx, removeAfter.Add(-time.Microsecond))
	if err != nil || n != 0 {
		t.Errorf("DeleteRemovedKeys(before RemoveAfter) = %d, %v; want 0, nil", n, err)
	}
	n, err = s.Keys.DeleteRemovedKeys(ctx, removeAfter)
	if err != nil || n != 1 {
		t.Errorf("DeleteRemovedKeys(at RemoveAfter) = %d, %v; want 1, nil", n, err)
	}
	_, err = s.Keys.Key(ctx, k1.KID)
	wantCode(t, "Key(removed)", err, keycard.ENOTFOUND)

	// Emergency revocation deletes and reaches the feed.
	revokedAt := rotatedAt.Add(time.Hour)
	if err := s.Keys.RevokeKey(ctx, k2.KID, revokedAt); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	_, err = s.Keys.Key(ctx, k2.KID)
	wantCode(t, "Key(revoked)", err, keycard.ENOTFOUND)
	wantCode(t, "RevokeKey(again)", s.Keys.RevokeKey(ctx, k2.KID, revokedAt), keycard.ENOTFOUND)
	revs, err := s.Revocations.Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "feed after RevokeKey", revs, []*keycard.Revocation{{Seq: revs[0].Seq, Kind: keycard.RevokeKey, Value: k2.KID, At: revokedAt, ExpiresAt: revokedAt.Add(revTTL)}})
	// With no active key left, a new one can be created active.
	if err := s.Keys.CreateKey(ctx, newKey(t, keycard.KeyActive, revokedAt)); err != nil {
		t.Errorf("CreateKey(active, none active): %v", err)
	}
}
