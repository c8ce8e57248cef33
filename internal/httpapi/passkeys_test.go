package httpapi

import (
	"context"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// storePasskey stores a passkey for the user as a registration would (the
// ceremonies themselves are the pages' and are tested there and in
// internal/passkey).
func (f *fixture) storePasskey(t *testing.T, userID, name string) *keycard.Passkey {
	t.Helper()
	id, _ := keycard.NewID(rand.Reader)
	cred := make([]byte, 32)
	rand.Read(cred)
	p := &keycard.Passkey{ID: id, UserID: userID, CredentialID: cred, PublicKey: []byte{0xa5, 0x01, 0x02}, Name: name,
		BackupEligible: true, Transports: []string{"internal"}, CreatedAt: f.clock.Now()}
	if err := f.stores.Passkeys.CreatePasskey(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasskeysAPI(t *testing.T) {
	f := newAdminFixture(t)
	alice := f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword).AccessToken
	laptop := f.storePasskey(t, alice, "Laptop")
	f.clock.Advance(1e9)
	phone := f.storePasskey(t, alice, "Phone")
	bob := f.register(t, "bob", testPassword)
	bobs := f.storePasskey(t, bob, "Key")

	var list passkeysResponse
	ok(t, f.send(t, http.MethodGet, "/v1/me/passkeys", tok), http.StatusOK, &list)
	if len(list.Passkeys) != 2 || list.Passkeys[0].ID != laptop.ID || list.Passkeys[1].Name != "Phone" || !list.Passkeys[0].BackupEligible ||
		list.Passkeys[0].LastUsedAt != nil {
		t.Errorf("GET /v1/me/passkeys = %+v", list)
	}
	if res := f.send(t, http.MethodGet, "/v1/me/passkeys", ""); res.status != http.StatusUnauthorized {
		t.Errorf("signed out: %d", res.status)
	}

	// Rename: the caller's own only; malformed bodies are 4xx.
	h := http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}
	var got passkeyResponse
	ok(t, f.do(t, request{method: http.MethodPatch, path: "/v1/me/passkeys/" + laptop.ID, header: h, body: `{"name":"  Work   laptop "}`}), http.StatusOK, &got)
	if got.Name != "Work laptop" {
		t.Errorf("renamed to %q, want white space collapsed", got.Name)
	}
	for _, tt := range []struct {
		id, body string
		status   int
	}{
		{laptop.ID, `{`, http.StatusBadRequest},
		{laptop.ID, `{"name":7}`, http.StatusBadRequest},
		{laptop.ID, `{"name":""}`, http.StatusBadRequest},
		{laptop.ID, `{"name":"` + string(make([]byte, 65)) + `"}`, http.StatusBadRequest},
		{laptop.ID, `{"nom":"x"}`, http.StatusBadRequest},
		{bobs.ID, `{"name":"mine"}`, http.StatusNotFound},
	} {
		if res := f.do(t, request{method: http.MethodPatch, path: "/v1/me/passkeys/" + tt.id, header: h, body: tt.body}); res.status != tt.status {
			t.Errorf("PATCH %s %q: %d %s, want %d", tt.id, tt.body, res.status, res.body, tt.status)
		}
	}

	// Remove: the caller's own, once.
	if res := f.send(t, http.MethodDelete, "/v1/me/passkeys/"+bobs.ID, tok); res.status != http.StatusNotFound {
		t.Errorf("removing another user's passkey: %d", res.status)
	}
	ok(t, f.send(t, http.MethodDelete, "/v1/me/passkeys/"+phone.ID, tok), http.StatusNoContent, nil)
	if res := f.send(t, http.MethodDelete, "/v1/me/passkeys/"+phone.ID, tok); res.status != http.StatusNotFound {
		t.Errorf("removing it again: %d", res.status)
	}

	// The admin lists and removes a user's passkeys, audited as the admin.
	ok(t, f.call(t, http.MethodGet, "/admin/v1/users/"+bob+"/passkeys", ""), http.StatusOK, &list)
	if len(list.Passkeys) != 1 || list.Passkeys[0].ID != bobs.ID {
		t.Errorf("admin list = %+v", list)
	}
	if res := f.call(t, http.MethodGet, "/admin/v1/users/nobody/passkeys", ""); res.status != http.StatusNotFound {
		t.Errorf("admin list of an unknown user: %d", res.status)
	}
	if res := f.call(t, http.MethodDelete, "/admin/v1/users/"+alice+"/passkeys/"+bobs.ID, ""); res.status != http.StatusNotFound {
		t.Errorf("admin removal under the wrong user: %d", res.status)
	}
	ok(t, f.call(t, http.MethodDelete, "/admin/v1/users/"+bob+"/passkeys/"+bobs.ID, ""), http.StatusNoContent, nil)
	events, err := f.stores.Audit.ListAudit(context.Background(), keycard.AuditFilter{Type: auth.AuditPasskeyRemoved, Subject: bob})
	if err != nil || len(events) != 1 || events[0].Actor != f.adminID {
		t.Errorf("audit of the admin's removal: %+v (%v)", events, err)
	}
	if res := f.send(t, http.MethodGet, "/admin/v1/users/"+bob+"/passkeys", tok); res.status != http.StatusForbidden {
		t.Errorf("a user on the admin route: %d", res.status)
	}
}
