// Package keycard holds Keycard's domain types — users, sessions, refresh
// tokens, signing keys, revocations and audit events — and the store
// interfaces the auth server's logic is written against.
//
// The package depends on the standard library only. Implementations live in
// internal/sqlite (and later internal/postgres); all of them pass the shared
// conformance suite in internal/storetest.
//
// Stores never read a clock: every time they record or compare comes from
// the caller (a record's own fields, or an explicit at/Now argument), so the
// auth layer's injected Now func() time.Time is the only clock in the server
// and tests control time completely.
package keycard

import (
	"encoding/base64"
	"fmt"
	"io"
)

// Stores groups the store implementations the auth server needs. A storage
// backend returns all of them over one database, so that operations which
// cross concepts (changing a password revokes sessions, revoking a session
// appends to the revocation feed) happen in one transaction.
type Stores struct {
	Users       UserStore
	Sessions    SessionStore
	Keys        KeyStore
	Revocations RevocationStore
	Audit       AuditStore
	Clients     ClientStore
	Grants      GrantStore
	Logouts     LogoutStore
	Webhooks    WebhookStore
	Emails      EmailStore
	Passkeys    PasskeyStore
	MFA         MFAStore
	Federation  FederationStore
}

// IDLen is the number of random bytes in an identifier made by NewID.
const IDLen = 16

// NewID returns a new random identifier: IDLen bytes read from r (normally
// crypto/rand.Reader), encoded as unpadded base64url, 22 characters long.
// Identifiers are opaque; they carry no time or sequence information.
func NewID(r io.Reader) (string, error) {
	var b [IDLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("keycard: reading random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
