package sqlite

import (
	"context"
	"errors"
	"sync"

	"github.com/keycard-auth/keycard"
)

// maxRotationBatch is the most rotations one write transaction commits.
const maxRotationBatch = 32

// errClosed is the error of a rotation asked of a closed DB.
var errClosed = errors.New("sqlite: database is closed")

// rotator commits refresh-token rotations in batches (group commit). Every
// write goes through the single write connection, and under load most of
// a rotation's time there is its commit: writing the changed pages to the
// WAL. The rotator's goroutine takes the rotations waiting at the time and
// runs them in one IMMEDIATE transaction, each in its own savepoint, one
// after the other, so each sees the ones before it exactly as if they had
// committed separately; a refused or failed rotation is rolled back to its
// savepoint without touching the others. Results are handed back only
// after the commit, and if the transaction as a whole fails, every
// rotation of the batch gets the error: none of them took effect.
type rotator struct {
	db    *DB
	calls chan *rotateCall // unbuffered: a send is a caller waiting
	stop  chan struct{}
	done  chan struct{} // closed when run returns
	once  sync.Once
}

// rotateCall is one RotateRefreshToken waiting for its batch.
type rotateCall struct {
	ctx  context.Context
	req  keycard.RotateRequest
	res  *keycard.RotateResult
	err  error
	done chan struct{}
}

func startRotator(db *DB) *rotator {
	r := &rotator{db: db, calls: make(chan *rotateCall), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// close stops the rotator's goroutine after the batch it is running, and
// waits for it. Rotations asked after that fail with errClosed.
func (r *rotator) close() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

// rotate queues one rotation and waits for its batch to commit. A context
// that ends before the rotation runs ends it; once it runs, it is waited
// for, so that the caller never gives up on a rotation that commits.
func (r *rotator) rotate(ctx context.Context, req keycard.RotateRequest) (*keycard.RotateResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &rotateCall{ctx: ctx, req: req, done: make(chan struct{})}
	select {
	case r.calls <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.stop:
		return nil, errClosed
	}
	<-c.done
	return c.res, c.err
}

func (r *rotator) run() {
	defer close(r.done)
	for {
		var batch []*rotateCall
		select {
		case c := <-r.calls:
			batch = append(batch, c)
		case <-r.stop:
			return
		}
	fill:
		for len(batch) < maxRotationBatch {
			select {
			case c := <-r.calls:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		r.db.rotateBatch(batch)
		for _, c := range batch {
			close(c.done)
		}
	}
}

// rotateBatch runs the rotations of batch in one write transaction and
// sets their results.
func (db *DB) rotateBatch(batch []*rotateCall) {
	// The transaction is not any one caller's: it runs to its end
	// whichever of them gives up, and so does each rotation once begun.
	ctx := context.Background()
	err := db.update(ctx, func(tx txn) error {
		for _, c := range batch {
			if c.err = c.ctx.Err(); c.err != nil {
				continue
			}
			if _, err := tx.ExecContext(ctx, `SAVEPOINT rotation`); err != nil {
				return err
			}
			c.res, c.err = rotate(context.WithoutCancel(c.ctx), tx, c.req)
			if c.err != nil {
				c.res = nil
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO rotation`); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `RELEASE rotation`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, c := range batch {
			c.res, c.err = nil, err
		}
	}
}
