package storetrace

import (
	"context"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/tracing"
)

type passkeyStore struct {
	keycard.PasskeyStore
	op tracing.Op
}

var _ keycard.PasskeyStore = passkeyStore{}

func (w passkeyStore) CreatePasskey(ctx context.Context, p *keycard.Passkey) (err error) {
	ctx, end := w.op(ctx, "store.CreatePasskey")
	defer func() { end(err) }()
	return w.PasskeyStore.CreatePasskey(ctx, p)
}

func (w passkeyStore) Passkey(ctx context.Context, userID, id string) (_ *keycard.Passkey, err error) {
	ctx, end := w.op(ctx, "store.Passkey")
	defer func() { end(err) }()
	return w.PasskeyStore.Passkey(ctx, userID, id)
}

func (w passkeyStore) PasskeyByCredentialID(ctx context.Context, credentialID []byte) (_ *keycard.Passkey, err error) {
	ctx, end := w.op(ctx, "store.PasskeyByCredentialID")
	defer func() { end(err) }()
	return w.PasskeyStore.PasskeyByCredentialID(ctx, credentialID)
}

func (w passkeyStore) ListPasskeys(ctx context.Context, userID string) (_ []*keycard.Passkey, err error) {
	ctx, end := w.op(ctx, "store.ListPasskeys")
	defer func() { end(err) }()
	return w.PasskeyStore.ListPasskeys(ctx, userID)
}

func (w passkeyStore) RenamePasskey(ctx context.Context, userID, id, name string) (err error) {
	ctx, end := w.op(ctx, "store.RenamePasskey")
	defer func() { end(err) }()
	return w.PasskeyStore.RenamePasskey(ctx, userID, id, name)
}

func (w passkeyStore) DeletePasskey(ctx context.Context, userID, id string) (_ *keycard.Passkey, err error) {
	ctx, end := w.op(ctx, "store.DeletePasskey")
	defer func() { end(err) }()
	return w.PasskeyStore.DeletePasskey(ctx, userID, id)
}

func (w passkeyStore) UsePasskey(ctx context.Context, id string, prevCount, signCount uint32, backupState bool, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.UsePasskey")
	defer func() { end(err) }()
	return w.PasskeyStore.UsePasskey(ctx, id, prevCount, signCount, backupState, at)
}

func (w passkeyStore) CreatePasskeyChallenge(ctx context.Context, c *keycard.PasskeyChallenge) (err error) {
	ctx, end := w.op(ctx, "store.CreatePasskeyChallenge")
	defer func() { end(err) }()
	return w.PasskeyStore.CreatePasskeyChallenge(ctx, c)
}

func (w passkeyStore) TakePasskeyChallenge(ctx context.Context, id string, at time.Time) (_ *keycard.PasskeyChallenge, err error) {
	ctx, end := w.op(ctx, "store.TakePasskeyChallenge")
	defer func() { end(err) }()
	return w.PasskeyStore.TakePasskeyChallenge(ctx, id, at)
}

func (w passkeyStore) PrunePasskeyChallenges(ctx context.Context, before time.Time) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.PrunePasskeyChallenges")
	defer func() { end(err) }()
	return w.PasskeyStore.PrunePasskeyChallenges(ctx, before)
}
