package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// clients runs "keycard clients …": service clients on the server's data,
// safe while the server runs on it, through the auth.Service with the
// command line as the audit log's actor.
func (e *cmdEnv) clients(args []string) int {
	return e.subcommands("clients", args, map[string]func([]string) int{
		"add": e.clientsAdd, "list": e.clientsList, "rotate-secret": e.clientsRotateSecret, "delete": e.clientsDelete,
	})
}

// printSecret prints a client's id and secret as one JSON object on stdout:
// the only time the secret is shown.
func (e *cmdEnv) printSecret(id, secret string) {
	e.printJSON(map[string]string{"client_id": id, "client_secret": secret})
	fmt.Fprintln(e.stderr, "keycard: the client secret is shown only this once; only its hash is stored")
}

func (e *cmdEnv) clientsAdd(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("clients add", &f)
	name := fs.String("name", "", "a label for the client (required), for example gateway")
	var scopes, audiences stringList
	fs.Var(&scopes, "scope", "a scope the client may ask for (repeatable)")
	// Taken from the command line only: the server's audience in
	// KEYCARD_AUDIENCE or the config file is not the client's.
	fs.Var(&audiences, "audience", "an audience the client's tokens are for (repeatable; the first is their aud; default: the server's audience at the time of issue)")
	if _, code, ok := e.parseFlags(fs.FlagSet, args, 0); !ok {
		return code
	}
	fromCommandLine := slices.Clone(audiences)
	if code, ok := e.layer(fs); !ok {
		return code
	}
	audiences = fromCommandLine
	if *name == "" {
		fmt.Fprintln(e.stderr, "keycard clients add: --name is required")
		return exitUsage
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		c, secret, err := svc.CreateClient(e.ctx, auth.Operator(), auth.ClientSpec{Name: *name, Scopes: scopes, Audiences: audiences})
		if err != nil {
			return e.failErr(err)
		}
		e.printSecret(c.ID, secret)
		return exitOK
	})
}

func (e *cmdEnv) clientsList(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("clients list", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		return printPages(e,
			func(ctx context.Context, after string) ([]*keycard.Client, error) {
				return svc.ListClients(ctx, after, keycard.MaxPageSize)
			},
			func(c *keycard.Client) string { return c.ID },
			func(c *keycard.Client) any {
				return map[string]any{
					"client_id": c.ID, "name": c.Name, "scopes": c.Scopes, "audiences": c.Audiences,
					"created_at": c.CreatedAt.UTC().Format(time.RFC3339),
				}
			})
	})
}

// clientIDFlags returns the flag set of a command on one client, with its
// required --id.
func (e *cmdEnv) clientIDFlags(name string, f *serverFlags, usage string) (*flagSetWithConfig, *string) {
	fs := e.serverFlagSet(name, f)
	return fs, fs.String("id", "", usage)
}

func (e *cmdEnv) clientsRotateSecret(args []string) int {
	var f serverFlags
	fs, id := e.clientIDFlags("clients rotate-secret", &f, "the client_id (required); its old secret stops working at once")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if *id == "" {
		fmt.Fprintln(e.stderr, "keycard clients rotate-secret: --id is required")
		return exitUsage
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		secret, err := svc.RotateClientSecret(e.ctx, auth.Operator(), *id)
		if err != nil {
			return e.failErr(err)
		}
		e.printSecret(*id, secret)
		return exitOK
	})
}

func (e *cmdEnv) clientsDelete(args []string) int {
	var f serverFlags
	fs, id := e.clientIDFlags("clients delete", &f, "the client_id (required)")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if *id == "" {
		fmt.Fprintln(e.stderr, "keycard clients delete: --id is required")
		return exitUsage
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		if err := svc.DeleteClient(e.ctx, auth.Operator(), *id); err != nil {
			return e.failErr(err)
		}
		fmt.Fprintf(e.stdout, "deleted client %s; introspection reports its tokens inactive, local verifiers accept them until they expire\n", *id)
		return exitOK
	})
}
