package main

import (
	"encoding/json"
	"fmt"

	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/sqlite"
)

// migrate applies pending migrations to the database of --store (or the
// SQLite database in --data) and prints its schema version as one JSON
// object. Opening a database migrates it; this command does only that, so
// that a deployment can migrate before it starts new servers.
func (e *cmdEnv) migrate(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("migrate", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	log, err := e.logger(f.logLevel)
	if err != nil {
		return e.fail("%v", err)
	}
	db, err := e.openDB(&f, log)
	if err != nil {
		return e.fail("%v", err)
	}
	defer db.Close()
	var (
		kind    string
		version int
	)
	switch db := db.(type) {
	case *postgres.DB:
		kind = "postgres"
		if version, err = db.Version(e.ctx); err != nil {
			return e.fail("%v", err)
		}
	case *sqlite.DB:
		// Open refuses a newer schema and migrates an older one, so the
		// database is at this binary's version now.
		kind, version = "sqlite", sqlite.SchemaVersion()
	}
	out, err := json.Marshal(map[string]any{"store": kind, "schema_version": version})
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
	return exitOK
}
