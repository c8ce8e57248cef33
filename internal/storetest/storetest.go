// Package storetest is the conformance suite that every implementation of
// Keycard's store interfaces must pass. A backend's test calls Run with a
// function that opens fresh, empty stores:
//
//	func TestStores(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) keycard.Stores {
//			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keycard.db"), sqlite.Options{})
//			…
//			t.Cleanup(func() { db.Close() })
//			return db.Stores()
//		})
//	}
//
// The suite never reads the clock: all times are derived from a fixed
// instant, so results do not depend on when or how fast it runs.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/username"
)

// OpenFunc opens new, empty stores for one test and arranges, with
// t.Cleanup, for them to be closed. The stores must use the default
// revocation lifetime, keycard.DefaultRevocationTTL.
type OpenFunc func(t *testing.T) keycard.Stores

// Run runs the whole suite against the stores made by open, each top-level
// test on new stores.
func Run(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open OpenFunc)
	}{
		{"Users", testUsers},
		{"Federation", testFederation},
		{"UpstreamProviders", testUpstreamProviders},
		{"UsernameNormalization", testUsernameNormalization},
		{"ListUsers", testListUsers},
		{"UpdateUser", testUpdateUser},
		{"DeleteUser", testDeleteUser},
		{"ChangePassword", testChangePassword},
		{"RehashPassword", testRehashPassword},
		{"Sessions", testSessions},
		{"CreateSessionAudit", testCreateSessionAudit},
		{"MFAFactors", testMFAFactors},
		{"SessionWithUser", testSessionWithUser},
		{"ListSessions", testListSessions},
		{"RevokeSessions", testRevokeSessions},
		{"Reauthenticated", testReauthenticated},
		{"PruneSessions", testPruneSessions},
		{"Rotate", testRotate},
		{"RotateEnded", testRotateEnded},
		{"RotateConcurrent", testRotateConcurrent},
		{"RotatePresenter", testRotatePresenter},
		{"RotateAudit", testRotateAudit},
		{"RotateWithUser", testRotateWithUser},
		{"Keys", testKeys},
		{"KeyRotation", testKeyRotation},
		{"KeyGeneration", testKeyGeneration},
		{"Revocations", testRevocations},
		{"Audit", testAudit},
		{"Clients", testClients},
		{"ListClients", testListClients},
		{"HasRevocation", testHasRevocation},
		{"GrantSessionCreate", testGrantSessionCreate},
		{"ListGrantSessions", testListGrantSessions},
		{"RevokeCascade", testRevokeCascade},
		{"RevokeCascadeTheft", testRevokeCascadeTheft},
		{"RevokeCascadeConcurrent", testRevokeCascadeConcurrent},
		{"RedeemAgainstRevocation", testRedeemAgainstRevocation},
		{"RevokeUserGrantSessions", testRevokeUserGrantSessions},
		{"RevokeClientSessions", testRevokeClientSessions},
		{"PruneGrantSessions", testPruneGrantSessions},
		{"ClientOAuth", testClientOAuth},
		{"DeleteClientCascade", testDeleteClientCascade},
		{"AuthCodes", testAuthCodes},
		{"Redeem", testRedeem},
		{"RedeemDeviceCode", testRedeemDeviceCode},
		{"RedeemConcurrent", testRedeemConcurrent},
		{"RedeemSealed", testRedeemSealed},
		{"RedeemSealedConcurrent", testRedeemSealedConcurrent},
		{"PruneSealedCodes", testPruneSealedCodes},
		{"DeviceCodes", testDeviceCodes},
		{"Consents", testConsents},
		{"RevokeConsent", testRevokeConsent},
		{"PushedRequests", testPushedRequests},
		{"PruneGrants", testPruneGrants},
		{"LogoutOwed", testLogoutOwed},
		{"LogoutOwedEveryPath", testLogoutOwedEveryPath},
		{"LogoutOwedCodeReuse", testLogoutOwedCodeReuse},
		{"LogoutClaim", testLogoutClaim},
		{"LogoutClaimConcurrent", testLogoutClaimConcurrent},
		{"LogoutClientGone", testLogoutClientGone},
		{"PruneLogouts", testPruneLogouts},
		{"WebhookEndpoints", testWebhookEndpoints},
		{"WebhookOwed", testWebhookOwed},
		{"WebhookClaim", testWebhookClaim},
		{"WebhookClaimConcurrent", testWebhookClaimConcurrent},
		{"PruneWebhookDeliveries", testPruneWebhookDeliveries},
		{"UseOnce", testUseOnce},
		{"UseOnceConcurrent", testUseOnceConcurrent},
		{"Emails", testEmails},
		{"MFA", testMFA},
		{"EmailTokens", testEmailTokens},
		{"VerifyEmail", testVerifyEmail},
		{"ResetPassword", testResetPassword},
		{"PruneEmailTokens", testPruneEmailTokens},
		{"EmailUniqueConcurrent", testEmailUniqueConcurrent},
		{"Passkeys", testPasskeys},
		{"UsePasskeyConcurrent", testUsePasskeyConcurrent},
		{"PasskeyChallenges", testPasskeyChallenges},
		{"TakePasskeyChallengeConcurrent", testTakePasskeyChallengeConcurrent},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// revTTL is the lifetime of the revocation feed entries that stores append
// by themselves: the suite expects stores opened with the default.
const revTTL = keycard.DefaultRevocationTTL

// t0 is the suite's "now"; a whole number of microseconds, the precision
// every store keeps.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// id returns a new random id.
func id(t *testing.T) string {
	t.Helper()
	s, err := keycard.NewID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newUser makes a user named name (display form), not yet stored.
func newUser(t *testing.T, name string) *keycard.User {
	t.Helper()
	display, normalized, err := username.Normalize(name)
	if err != nil {
		t.Fatalf("Normalize(%q): %v", name, err)
	}
	return &keycard.User{
		ID:                 id(t),
		Username:           display,
		NormalizedUsername: normalized,
		PasswordHash:       "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + name,
		Roles:              []string{"user"},
		CreatedAt:          t0,
		UpdatedAt:          t0,
		PasswordChangedAt:  t0,
	}
}

// createUser stores a new user named name.
func createUser(t *testing.T, s keycard.Stores, name string) *keycard.User {
	t.Helper()
	u := newUser(t, name)
	if err := s.Users.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

// newToken returns a refresh token record and its secret hash.
func newToken(t *testing.T) *keycard.RefreshToken {
	t.Helper()
	_, tid, hash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}
}

// newSession returns a session of user created at the given time with the
// default timeouts, not yet stored.
func newSession(t *testing.T, userID string, at time.Time) *keycard.Session {
	t.Helper()
	return &keycard.Session{
		ID:          id(t),
		UserID:      userID,
		CreatedAt:   at,
		LastUsedAt:  at,
		UserAgent:   "Mozilla/5.0 (storetest)",
		ClientAddr:  "192.0.2.1",
		IdleTimeout: keycard.DefaultIdleTimeout,
		ExpiresAt:   at.Add(keycard.DefaultSessionLifetime),
	}
}

// createSession stores a new session of user created at the given time,
// and returns it with its first refresh token.
func createSession(t *testing.T, s keycard.Stores, userID string, at time.Time) (*keycard.Session, *keycard.RefreshToken) {
	t.Helper()
	sess := newSession(t, userID, at)
	tok := newToken(t)
	tok.CreatedAt = at
	if err := s.Sessions.CreateSession(context.Background(), sess, tok, nil); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return sess, tok
}

// wantCode fails the test unless err has the keycard error code want.
func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := keycard.ErrorCode(err); got != want {
		t.Errorf("%s: got error code %q (%v), want %q", what, got, err, want)
	}
}

// check fails the test with the differing fields unless got equals want.
func check(t *testing.T, what string, got, want any) {
	t.Helper()
	for _, d := range diff(reflect.ValueOf(got), reflect.ValueOf(want), "") {
		t.Errorf("%s: %s", what, d)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// diff compares two values field by field: times with Equal, nil and empty
// slices as equal, pointers by what they point to.
func diff(got, want reflect.Value, path string) []string {
	if !got.IsValid() || !want.IsValid() {
		if got.IsValid() != want.IsValid() {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		return nil
	}
	if got.Type() != want.Type() {
		return []string{fmt.Sprintf("%s: got type %s, want %s", path, got.Type(), want.Type())}
	}
	switch {
	case got.Type() == timeType:
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, g, w)}
		}
		return nil
	case got.Kind() == reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
			}
			return nil
		}
		return diff(got.Elem(), want.Elem(), path)
	case got.Kind() == reflect.Struct:
		var out []string
		for i := range got.NumField() {
			out = append(out, diff(got.Field(i), want.Field(i), path+"."+got.Type().Field(i).Name)...)
		}
		return out
	case got.Kind() == reflect.Slice && got.Type().Elem().Kind() == reflect.Uint8:
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			return []string{fmt.Sprintf("%s: got %q, want %q", path, got.Bytes(), want.Bytes())}
		}
		return nil
	case got.Kind() == reflect.Slice:
		if got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: got %d elements %v, want %d %v", path, got.Len(), got, want.Len(), want)}
		}
		var out []string
		for i := range got.Len() {
			out = append(out, diff(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			return []string{fmt.Sprintf("%s: got %#v, want %#v", path, got.Interface(), want.Interface())}
		}
		return nil
	}
}
