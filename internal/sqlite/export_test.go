package sqlite

import (
	"context"
	"fmt"
)

// SetAutoCheckpoint sets the write connection's wal_autocheckpoint, for
// benchmarks that count the WAL's frames.
func (db *DB) SetAutoCheckpoint(ctx context.Context, pages int) error {
	_, err := db.write.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", pages))
	return err
}
