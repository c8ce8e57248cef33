package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// newClient returns a client named name with a random secret hash, not yet
// stored.
func newClient(t *testing.T, name string) *keycard.Client {
	t.Helper()
	return &keycard.Client{
		ID:         id(t),
		Name:       name,
		SecretHash: keycard.HashClientSecret(id(t)),
		Scopes:     []string{"weather:read", "orders:write"},
		Audiences:  []string{"api", "feed"},
		CreatedAt:  t0,
		UpdatedAt:  t0,
	}
}

func testClients(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	gw := newClient(t, "gateway")
	if err := s.Clients.CreateClient(ctx, gw); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	got, err := s.Clients.Client(ctx, gw.ID)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	check(t, "Client", got, gw)

	bare := newClient(t, "bare")
	bare.Scopes, bare.Audiences = nil, nil
	if err := s.Clients.CreateClient(ctx, bare); err != nil {
		t.Fatalf("CreateClient(no scopes): %v", err)
	}
	got, err = s.Clients.Client(ctx, bare.ID)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	check(t, "Client(no scopes)", got, bare)

	sameID := newClient(t, "other")
	sameID.ID = gw.ID
	noHash := newClient(t, "nohash")
	noHash.SecretHash = nil
	noName := newClient(t, "")
	noID := newClient(t, "noid")
	noID.ID = ""
	tests := []struct {
		name string
		c    *keycard.Client
		want string
	}{
		{"same id", sameID, keycard.ECONFLICT},
		{"no secret hash", noHash, keycard.EINVALID},
		{"no name", noName, keycard.EINVALID},
		{"no id", noID, keycard.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateClient", s.Clients.CreateClient(ctx, tt.c), tt.want)
		})
	}
	got, err = s.Clients.Client(ctx, gw.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Client after failed creates", got, gw)
	_, err = s.Clients.Client(ctx, "missing")
	wantCode(t, "Client(missing)", err, keycard.ENOTFOUND)

	// Rotating the secret changes the hash and UpdatedAt only.
	later := t0.Add(time.Hour)
	newHash := keycard.HashClientSecret("next secret")
	if err := s.Clients.SetClientSecret(ctx, gw.ID, newHash, later); err != nil {
		t.Fatalf("SetClientSecret: %v", err)
	}
	want := *gw
	want.SecretHash, want.UpdatedAt = newHash, later
	got, err = s.Clients.Client(ctx, gw.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Client after SetClientSecret", got, &want)
	if !got.CheckSecret("next secret") || got.CheckSecret("old secret") {
		t.Errorf("CheckSecret after SetClientSecret: the new secret must match and no other")
	}
	wantCode(t, "SetClientSecret(missing)", s.Clients.SetClientSecret(ctx, "missing", newHash, later), keycard.ENOTFOUND)
	wantCode(t, "SetClientSecret(empty hash)", s.Clients.SetClientSecret(ctx, gw.ID, nil, later), keycard.EINVALID)

	if err := s.Clients.DeleteClient(ctx, bare.ID, t0); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	_, err = s.Clients.Client(ctx, bare.ID)
	wantCode(t, "Client(deleted)", err, keycard.ENOTFOUND)
	wantCode(t, "DeleteClient(again)", s.Clients.DeleteClient(ctx, bare.ID, t0), keycard.ENOTFOUND)
	// The id of a deleted client can be registered again.
	if err := s.Clients.CreateClient(ctx, bare); err != nil {
		t.Errorf("CreateClient(id of a deleted client): %v", err)
	}
}

func testListClients(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	got, err := s.Clients.ListClients(ctx, keycard.ClientFilter{})
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("ListClients(empty) = %v, %v; want an empty, non-nil slice", got, err)
	}
	var all []*keycard.Client // by id
	for i := range 7 {
		c := newClient(t, fmt.Sprintf("client%d", i))
		c.ID = fmt.Sprintf("c%02d", i)
		if err := s.Clients.CreateClient(ctx, c); err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		all = append(all, c)
	}
	tests := []struct {
		name   string
		filter keycard.ClientFilter
		want   []*keycard.Client
	}{
		{"all", keycard.ClientFilter{}, all},
		{"first page", keycard.ClientFilter{Limit: 3}, all[:3]},
		{"next page", keycard.ClientFilter{After: all[2].ID, Limit: 3}, all[3:6]},
		{"last page", keycard.ClientFilter{After: all[5].ID, Limit: 3}, all[6:]},
		{"past the end", keycard.ClientFilter{After: all[6].ID}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Clients.ListClients(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "ListClients", got, tt.want)
		})
	}
}

func testHasRevocation(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	add := func(kind keycard.RevocationKind, value string, at time.Time) {
		t.Helper()
		if err := s.Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: kind, Value: value, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	add(keycard.RevokeToken, "jti-1", t0)
	add(keycard.RevokeSession, "sid-1", t0.Add(time.Hour))
	tests := []struct {
		name  string
		kind  keycard.RevocationKind
		value string
		want  bool
	}{
		{"token", keycard.RevokeToken, "jti-1", true},
		{"session", keycard.RevokeSession, "sid-1", true},
		{"other kind, same value", keycard.RevokeSession, "jti-1", false},
		{"unknown value", keycard.RevokeToken, "jti-2", false},
		{"empty value", keycard.RevokeToken, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Revocations.HasRevocation(ctx, tt.kind, tt.value)
			if err != nil || got != tt.want {
				t.Errorf("HasRevocation(%s, %q) = %v, %v; want %v", tt.kind, tt.value, got, err, tt.want)
			}
		})
	}
	// Pruned entries are gone.
	if _, err := s.Revocations.PruneRevocations(ctx, t0.Add(revTTL+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Revocations.HasRevocation(ctx, keycard.RevokeToken, "jti-1"); err != nil || got {
		t.Errorf("HasRevocation(pruned) = %v, %v; want false", got, err)
	}
	if got, err := s.Revocations.HasRevocation(ctx, keycard.RevokeSession, "sid-1"); err != nil || !got {
		t.Errorf("HasRevocation(kept after prune) = %v, %v; want true", got, err)
	}
}
