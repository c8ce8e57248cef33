package sqlite

import (
	"context"
	"errors"
	"runtime"
	"sync"
)

// maxBatch is the most writes one write transaction commits.
const maxBatch = 32

// errClosed is the error of a write asked of a closed DB.
var errClosed = errors.New("sqlite: database is closed")

// batcher commits the writes of the hot paths (refresh-token rotations,
// authorization codes and their redemption) in batches: group commit.
// Every write goes through the single write connection, and under load
// most of a write's time there is its commit: writing the changed pages
// to the WAL. The batcher's goroutine takes the writes waiting at the
// time and runs them in one IMMEDIATE transaction, each in its own
// savepoint, one after the other, so each sees the ones before it exactly
// as if they had committed separately; a refused or failed write is rolled
// back to its savepoint without touching the others. Results are handed
// back only after the commit, and if the transaction as a whole fails,
// every write of the batch gets the error: none of them took effect.
type batcher struct {
	db    *DB
	calls chan *batchCall // unbuffered: a send is a caller waiting
	stop  chan struct{}
	done  chan struct{} // closed when run returns
	once  sync.Once
}

// batchCall is one write waiting for its batch.
type batchCall struct {
	ctx context.Context
	// fn is the write. It returns an error for a refused or failed write,
	// after which what it wrote is rolled back. Whatever it returns beside
	// the error (through its closure) is the caller's only if the batch
	// commits.
	fn   func(ctx context.Context, tx txn) error
	err  error
	done chan struct{}
}

func startBatcher(db *DB) *batcher {
	b := &batcher{db: db, calls: make(chan *batchCall), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// close stops the batcher's goroutine after the batch it is running, and
// waits for it. Writes asked after that fail with errClosed.
func (b *batcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

// write queues fn and waits for its batch to commit. A context that ends
// before fn runs ends it; once it runs, it is waited for, so that the
// caller never gives up on a write that commits. fn runs with ctx's values
// but without its cancellation.
func (b *batcher) write(ctx context.Context, fn func(ctx context.Context, tx txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &batchCall{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return errClosed
	}
	<-c.done
	return c.err
}

func (b *batcher) run() {
	defer close(b.done)
	for {
		var batch []*batchCall
		select {
		case c := <-b.calls:
			batch = append(batch, c)
		case <-b.stop:
			return
		}
		// Once nothing more is waiting, yield once before closing the batch:
		// handlers that are about to ask for a write (their request parsed,
		// their statement built) get to queue it, and the batch's commit is
		// shared by more writes. Without it batches held about 2 writes
		// under 16 concurrent refreshes, with it about 5.
		yielded := false
	fill:
		for len(batch) < maxBatch {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				if yielded {
					break fill
				}
				yielded = true
				runtime.Gosched()
			}
		}
		b.db.writeBatch(batch)
		for _, c := range batch {
			close(c.done)
		}
	}
}

// writeBatch runs the writes of batch in one write transaction and sets
// their errors.
func (db *DB) writeBatch(batch []*batchCall) {
	// The transaction is not any one caller's: it runs to its end
	// whichever of them gives up, and so does each write once begun.
	ctx := context.Background()
	err := db.update(ctx, func(tx txn) error {
		for _, c := range batch {
			if c.err = c.ctx.Err(); c.err != nil {
				continue
			}
			if _, err := tx.ExecContext(ctx, `SAVEPOINT batched`); err != nil {
				return err
			}
			if c.err = c.fn(context.WithoutCancel(c.ctx), tx); c.err != nil {
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO batched`); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `RELEASE batched`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, c := range batch {
			c.err = err
		}
	}
}
