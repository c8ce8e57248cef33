package auth

import (
	"context"

	"github.com/keycard-auth/keycard/jose"
)

// keySetResolver resolves token keys from the manager's current view, so
// the parser follows rotations.
type keySetResolver struct{ m *KeyManager }

func (r keySetResolver) ResolveKey(h *jose.Header) (*jose.Key, error) {
	if r.m == nil {
		return nil, jose.ErrKeyNotFound
	}
	set, err := r.m.VerificationKeys(context.Background())
	if err != nil {
		return nil, err
	}
	return set.ResolveKey(h)
}
