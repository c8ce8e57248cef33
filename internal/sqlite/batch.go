package sqlite

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/keycard-auth/keycard"
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
// time and runs them in one IMMEDIATE transaction, one after the other, so
// each sees the ones before it exactly as if they had committed
// separately. A write refused before it changed anything (a
// *keycard.Error returned before its first write: an unknown token, a
// wrong secret, a refused presenter) leaves nothing to undo, and the batch
// goes on. A write that fails after changing something, or with any other
// error, is undone with the whole transaction, and the batch's other
// writes run again without it in a new one: nothing half-written is ever
// committed, and no write pays for a savepoint. (Savepoints around each
// write cost two statements and a statement journal of every page the
// write touched, on every write; the rerun costs only on the rare
// failure after a write.) Results are handed back only after the commit,
// and if the transaction as a whole fails, every write of the batch gets
// the error: none of them took effect.
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
	//
	// fn may run more than once, each time in a new transaction, when
	// another write of its batch fails after writing (see batcher): it
	// must not depend on having run before.
	fn   func(ctx context.Context, tx txn) error
	err  error
	done chan struct{}
	// ran is set once fn has begun: a write that ran once runs again when
	// its batch is redone, even if its context has ended since.
	ran bool
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
// their errors. A write that fails after changing the database (or with an
// error that is not a refusal) is undone with the transaction, and the
// others run again in a new one.
func (db *DB) writeBatch(batch []*batchCall) {
	// The transaction is not any one caller's: it runs to its end
	// whichever of them gives up, and so does each write once begun.
	ctx := context.Background()
	for len(batch) > 0 {
		undo := -1
		err := db.update(ctx, func(tx txn) error {
			for i, c := range batch {
				if !c.ran {
					if c.err = c.ctx.Err(); c.err != nil {
						continue
					}
					c.ran = true
				}
				before := *tx.writes
				if c.err = c.fn(context.WithoutCancel(c.ctx), tx); c.err != nil && (*tx.writes != before || !refusal(c.err)) {
					undo = i
					return c.err
				}
			}
			return nil
		})
		if undo < 0 {
			if err != nil {
				for _, c := range batch {
					c.err = err
				}
			}
			return
		}
		// The transaction was rolled back: the failed write keeps its
		// error, and the others, which have not taken effect, run again.
		rest := make([]*batchCall, 0, len(batch)-1)
		batch = append(append(rest, batch[:undo]...), batch[undo+1:]...)
	}
}

// refusal reports whether err is a write's refusal of its request (the
// store's *keycard.Error or a *keycard.PresenterError) rather than a
// failure of the database.
func refusal(err error) bool {
	var (
		ke *keycard.Error
		pe *keycard.PresenterError
	)
	return errors.As(err, &ke) || errors.As(err, &pe)
}
