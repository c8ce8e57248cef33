package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/sqlite"
	"github.com/keycard-auth/keycard/internal/storetest"
)

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStores(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keycard.Stores {
		return open(t, filepath.Join(t.TempDir(), "keycard.db")).Stores()
	})
}
