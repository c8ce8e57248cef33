package main

import (
	"errors"
	"fmt"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/server"
)

// migrate applies pending migrations to the database of --store (or the
// SQLite database in --data, made if there is none) and prints its schema version as one
// JSON object: a deployment migrates before it starts new servers.
func (e *cmdEnv) migrate(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("migrate", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	// The one command that makes a new database: before a first
	// serve, so that an admin can be added (keycard users add) first.
	// It says so, so that a mistyped --data is not a silent new database.
	a, err := e.openWith(fs, &f, server.Options{Existing: true})
	if errors.Is(err, server.ErrNoDatabase) {
		if a, err = e.openWith(fs, &f, server.Options{}); err == nil {
			fmt.Fprintf(e.stderr, "keycard migrate: there was no Keycard database at %s; made a new one\n", f.data)
		}
	}
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	version, err := a.SchemaVersion(e.ctx)
	if err != nil {
		return e.fail("%v", err)
	}
	e.printJSON(map[string]any{"store": a.StoreKind(), "schema_version": version})
	return exitOK
}

// revokeAll runs "keycard revoke-all": it signs every user out, as the
// admin API's POST /admin/v1/revoke-all does — every session and refresh
// token ends, and a global cut-off in the revocation feed kills every
// access token issued before now at every verifier — audited with the
// command line as actor.
func (e *cmdEnv) revokeAll(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("revoke-all", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		n, err := svc.RevokeAll(e.ctx, auth.Operator())
		if err != nil {
			return e.failErr(err)
		}
		fmt.Fprintf(e.stdout, "signed every user out: %d sessions ended; every access token issued before now is refused\n", n)
		return exitOK
	})
}
