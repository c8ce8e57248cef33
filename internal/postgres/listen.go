package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Back-off of ListenRevocations between failed connection attempts.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
	// listenPingEvery is how long the listener waits for a notification
	// before it checks that its connection is still alive.
	listenPingEvery = 30 * time.Second
)

// ListenRevocations calls fn whenever another transaction, in this process
// or any other using the same database, has appended to the revocation feed,
// so that an auth server can wake the feed's long-polls for appends made by
// other instances within a round trip of their commit. It blocks until ctx
// is done.
//
// It keeps one connection of its own, outside the pool, that LISTENs on
// RevocationsChannel. When the connection fails it reconnects with
// exponential back-off (100 ms doubling up to 10 s, with jitter), and it
// calls fn once after every successful LISTEN, the first included, because
// notifications sent while it was not listening are lost. While idle it
// checks the connection every 30 seconds, so that a silently dropped
// connection is noticed. fn is called from ListenRevocations' goroutine and
// must not block for long.
func (db *DB) ListenRevocations(ctx context.Context, fn func()) {
	backoff := listenMinBackoff
	for ctx.Err() == nil {
		listened, err := db.listen(ctx, fn)
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff = listenMinBackoff
		}
		db.log.Warn("revocation listener: connection lost, reconnecting", "err", err, "after", backoff)
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listen runs one connection of ListenRevocations until it fails, and
// reports whether it got as far as listening.
func (db *DB) listen(ctx context.Context, fn func()) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+RevocationsChannel); err != nil {
		return false, err
	}
	db.log.Debug("revocation listener: listening", "channel", RevocationsChannel)
	fn()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenPingEvery)
		_, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			fn()
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return true, err
			}
		default:
			return true, err
		}
	}
}
