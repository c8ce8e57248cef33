package storetest

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

func testFederation(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)

	// A user made by a first sign-in, with its identity, in one step.
	u := newUser(t, "ann")
	u.PasswordHash = keycard.NoPassword
	u.Email, u.EmailVerified = "ann@corp.example", true
	ann := &keycard.FederatedIdentity{Provider: "corp", Subject: "sub-ann", UserID: u.ID, Email: u.Email, CreatedAt: t0, LastUsedAt: t0}
	if err := s.Federation.CreateFederatedUser(ctx, u, ann); err != nil {
		t.Fatalf("CreateFederatedUser: %v", err)
	}
	got, err := s.Federation.Identity(ctx, "corp", "sub-ann")
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	if !reflect.DeepEqual(got, ann) {
		t.Errorf("Identity: got %+v, want %+v", got, ann)
	}
	stored, err := s.Users.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	if stored.HasPassword() || stored.Email != "ann@corp.example" || !stored.EmailVerified {
		t.Errorf("federated user: got %+v, want no password and a verified address", stored)
	}

	// The same identity again, for a new user: nothing is written, not
	// even the user.
	u2 := newUser(t, "ann2")
	u2.PasswordHash = keycard.NoPassword
	wantCode(t, "CreateFederatedUser (identity taken)", s.Federation.CreateFederatedUser(ctx, u2,
		&keycard.FederatedIdentity{Provider: "corp", Subject: "sub-ann", UserID: u2.ID, CreatedAt: t0, LastUsedAt: t0}), keycard.ECONFLICT)
	_, err = s.Users.UserByID(ctx, u2.ID)
	wantCode(t, "the user of a refused CreateFederatedUser", err, keycard.ENOTFOUND)
	// A username taken: the identity is not left behind either.
	u3 := newUser(t, "ann")
	u3.PasswordHash = keycard.NoPassword
	wantCode(t, "CreateFederatedUser (username taken)", s.Federation.CreateFederatedUser(ctx, u3,
		&keycard.FederatedIdentity{Provider: "corp", Subject: "sub-other", UserID: u3.ID, CreatedAt: t0, LastUsedAt: t0}), keycard.ECONFLICT)
	_, err = s.Federation.Identity(ctx, "corp", "sub-other")
	wantCode(t, "the identity of a refused CreateFederatedUser", err, keycard.ENOTFOUND)
	wantCode(t, "CreateFederatedUser (no identity user)", s.Federation.CreateFederatedUser(ctx, u2,
		&keycard.FederatedIdentity{Provider: "corp", Subject: "x", UserID: "someone-else", CreatedAt: t0}), keycard.EINVALID)

	// Linking: a second provider for ann; an unknown user; a taken identity.
	gh := &keycard.FederatedIdentity{Provider: "github", Subject: "12345", UserID: u.ID, CreatedAt: t0.Add(time.Minute), LastUsedAt: t0.Add(time.Minute)}
	if err := s.Federation.LinkIdentity(ctx, gh); err != nil {
		t.Fatalf("LinkIdentity: %v", err)
	}
	wantCode(t, "LinkIdentity (taken)", s.Federation.LinkIdentity(ctx,
		&keycard.FederatedIdentity{Provider: "github", Subject: "12345", UserID: u.ID, CreatedAt: t0}), keycard.ECONFLICT)
	wantCode(t, "LinkIdentity (unknown user)", s.Federation.LinkIdentity(ctx,
		&keycard.FederatedIdentity{Provider: "github", Subject: "777", UserID: "nobody", CreatedAt: t0}), keycard.ENOTFOUND)
	wantCode(t, "LinkIdentity (no subject)", s.Federation.LinkIdentity(ctx,
		&keycard.FederatedIdentity{Provider: "github", UserID: u.ID, CreatedAt: t0}), keycard.EINVALID)
	list, err := s.Federation.UserIdentities(ctx, u.ID)
	if err != nil {
		t.Fatalf("UserIdentities: %v", err)
	}
	if len(list) != 2 || list[0].Provider != "corp" || list[1].Provider != "github" {
		t.Errorf("UserIdentities: got %+v, want corp then github", list)
	}

	at := t0.Add(time.Hour)
	if err := s.Federation.IdentityUsed(ctx, "corp", "sub-ann", "ann@new.example", at); err != nil {
		t.Fatalf("IdentityUsed: %v", err)
	}
	if got, err := s.Federation.Identity(ctx, "corp", "sub-ann"); err != nil || !got.LastUsedAt.Equal(at) || got.Email != "ann@new.example" || !got.CreatedAt.Equal(t0) {
		t.Errorf("after IdentityUsed: got %+v, %v", got, err)
	}
	wantCode(t, "IdentityUsed (unknown)", s.Federation.IdentityUsed(ctx, "corp", "nobody", "", at), keycard.ENOTFOUND)

	// Unlinking keeps a way to sign in: ann has no password, so the
	// second identity may go and the last one may not.
	wantCode(t, "UnlinkIdentity (not hers)", s.Federation.UnlinkIdentity(ctx, u.ID, "corp", "sub-bob"), keycard.ENOTFOUND)
	if err := s.Federation.UnlinkIdentity(ctx, u.ID, "github", "12345"); err != nil {
		t.Fatalf("UnlinkIdentity: %v", err)
	}
	wantCode(t, "UnlinkIdentity (last way in)", s.Federation.UnlinkIdentity(ctx, u.ID, "corp", "sub-ann"), keycard.EFORBIDDEN)
	if _, err := s.Federation.Identity(ctx, "corp", "sub-ann"); err != nil {
		t.Errorf("the last identity after a refused unlink: %v", err)
	}
	// A user with a password may unlink every identity.
	bob := newUser(t, "bob")
	if err := s.Users.CreateUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if err := s.Federation.LinkIdentity(ctx, &keycard.FederatedIdentity{Provider: "corp", Subject: "sub-bob", UserID: bob.ID, CreatedAt: t0, LastUsedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Federation.UnlinkIdentity(ctx, bob.ID, "corp", "sub-bob"); err != nil {
		t.Errorf("UnlinkIdentity (user with a password): %v", err)
	}

	// Sessions remember their upstream sign-in, and a back-channel
	// logout finds them by sid, or by subject when it names no sid.
	s1 := newSession(t, u.ID, t0)
	s1.AMR, s1.IdP, s1.IdPSubject, s1.IdPSessionID = []string{"fed"}, "corp", "sub-ann", "up-1"
	s2 := newSession(t, u.ID, t0)
	s2.IdP, s2.IdPSubject, s2.IdPSessionID = "corp", "sub-ann", "up-2"
	s3 := newSession(t, u.ID, t0) // a password sign-in
	for _, sess := range []*keycard.Session{s1, s2, s3} {
		tok := newToken(t)
		tok.CreatedAt = t0
		if err := s.Sessions.CreateSession(ctx, sess, tok, nil); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	if got, err := s.Sessions.Session(ctx, s1.ID); err != nil || got.IdP != "corp" || got.IdPSubject != "sub-ann" || got.IdPSessionID != "up-1" {
		t.Errorf("Session: got %+v, %v; want the upstream sign-in", got, err)
	}
	cases := []struct {
		name, provider, subject, sid string
		want                         []string
	}{
		{"by sid", "corp", "", "up-1", []string{s1.ID}},
		{"by sid and subject", "corp", "sub-ann", "up-2", []string{s2.ID}},
		{"sid of another subject", "corp", "sub-bob", "up-2", nil},
		{"by subject", "corp", "sub-ann", "", sorted(s1.ID, s2.ID)},
		{"other provider", "github", "sub-ann", "", nil},
		{"nothing named", "corp", "", "", nil},
	}
	for _, c := range cases {
		got, err := s.Federation.UpstreamSessions(ctx, c.provider, c.subject, c.sid, t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("UpstreamSessions %s: %v", c.name, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("UpstreamSessions %s: got %v, want %v", c.name, got, c.want)
		}
	}
	if _, err := s.Sessions.RevokeSession(ctx, s1.ID, t0.Add(time.Minute), keycard.RevokeUpstreamLogout); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Federation.UpstreamSessions(ctx, "corp", "sub-ann", "", t0.Add(2*time.Minute)); !slices.Equal(got, []string{s2.ID}) {
		t.Errorf("UpstreamSessions after a revocation: got %v, want only %s", got, s2.ID)
	}

	// Deleting the user deletes their identities.
	if _, err := s.Users.DeleteUser(ctx, u.ID, at); err != nil {
		t.Fatal(err)
	}
	_, err = s.Federation.Identity(ctx, "corp", "sub-ann")
	wantCode(t, "Identity of a deleted user", err, keycard.ENOTFOUND)
}
