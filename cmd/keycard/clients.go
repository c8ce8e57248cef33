package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/keycard-auth/keycard"
)

// clients runs "keycard clients …": service clients on the data
// directory, safe while the server runs on it.
func (e *cmdEnv) clients(args []string) int {
	if len(args) == 0 {
		e.usage()
		return exitUsage
	}
	switch args[0] {
	case "add":
		return e.clientsAdd(args[1:])
	case "list":
		return e.clientsList(args[1:])
	case "rotate-secret":
		return e.clientsRotateSecret(args[1:])
	case "delete":
		return e.clientsDelete(args[1:])
	}
	fmt.Fprintf(e.stderr, "keycard clients: unknown subcommand %q\n", args[0])
	return exitUsage
}

// printSecret prints a client's id and secret as one JSON object on stdout:
// the only time the secret is shown.
func (e *cmdEnv) printSecret(id, secret string) {
	out, _ := json.Marshal(map[string]string{"client_id": id, "client_secret": secret})
	fmt.Fprintf(e.stdout, "%s\n", out)
	fmt.Fprintln(e.stderr, "keycard: the client secret is shown only this once; only its hash is stored")
}

func (e *cmdEnv) clientsAdd(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("clients add", &f)
	name := fs.String("name", "", "a label for the client (required), for example gateway")
	var scopes, audiences stringList
	fs.Var(&scopes, "scope", "a scope the client may ask for (repeatable)")
	// --audience is the server's audience in the shared flag set; here it
	// is the client's list, taken from the command line only, so that the
	// server's audience in KEYCARD_AUDIENCE or the config file does not
	// become the client's.
	aud := fs.Lookup("audience")
	aud.Value, aud.DefValue = &audiences, ""
	aud.Usage = "an audience the client's tokens are for (repeatable; the first is their aud; default: the server's audience at the time of issue)"
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
	a, err := e.open(&f, false, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	c, secret, err := a.svc.CreateClient(e.ctx, *name, scopes, audiences)
	if err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	e.printSecret(c.ID, secret)
	return exitOK
}

func (e *cmdEnv) clientsList(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("clients list", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	return e.onData(&f, false, func(a *app) int {
		return printPages(e,
			func(after string) ([]*keycard.Client, error) {
				return a.db.Stores().Clients.ListClients(e.ctx, keycard.ClientFilter{After: after, Limit: keycard.MaxPageSize})
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

func (e *cmdEnv) clientsRotateSecret(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("clients rotate-secret", &f)
	id := fs.String("id", "", "the client_id (required); its old secret stops working at once")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if *id == "" {
		fmt.Fprintln(e.stderr, "keycard clients rotate-secret: --id is required")
		return exitUsage
	}
	a, err := e.open(&f, false, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	secret, err := a.svc.RotateClientSecret(e.ctx, *id)
	if err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	e.printSecret(*id, secret)
	return exitOK
}

func (e *cmdEnv) clientsDelete(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("clients delete", &f)
	id := fs.String("id", "", "the client_id (required)")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if *id == "" {
		fmt.Fprintln(e.stderr, "keycard clients delete: --id is required")
		return exitUsage
	}
	a, err := e.open(&f, false, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	if err := a.db.Stores().Clients.DeleteClient(e.ctx, *id); err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	fmt.Fprintf(e.stdout, "deleted client %s; introspection reports its tokens inactive, local verifiers accept them until they expire\n", *id)
	return exitOK
}
