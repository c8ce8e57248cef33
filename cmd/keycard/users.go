package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/username"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func (e *cmdEnv) users(args []string) int {
	if len(args) == 0 {
		e.usage()
		return exitUsage
	}
	switch args[0] {
	case "add":
		return e.usersAdd(args[1:])
	case "list":
		return e.usersList(args[1:])
	case "disable":
		return e.usersDisable(args[1:])
	case "set-password":
		return e.usersSetPassword(args[1:])
	}
	fmt.Fprintf(e.stderr, "keycard users: unknown subcommand %q\n", args[0])
	return exitUsage
}

// readPassword reads one line from stdin (--password-stdin), or makes a
// strong random password and prints it once on stderr.
func (e *cmdEnv) readPassword(fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(b)
	fmt.Fprintf(e.stderr, "generated password (shown only now): %s\n", p)
	return p, nil
}

func (e *cmdEnv) usersAdd(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users add", &f)
	name := fs.String("username", "", "the new user's name (required)")
	var roles stringList
	fs.Var(&roles, "role", "a role to grant (repeatable), for example admin")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin (default: generate one)")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if *name == "" {
		fmt.Fprintln(e.stderr, "keycard users add: --username is required")
		return exitUsage
	}
	pass, err := e.readPassword(*fromStdin)
	if err != nil {
		return e.fail("%v", err)
	}
	a, err := e.open(&f, false, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	u, err := a.svc.Register(e.ctx, *name, pass, roles)
	if err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	out, _ := json.Marshal(map[string]any{"id": u.ID, "username": u.Username, "roles": u.Roles})
	fmt.Fprintf(e.stdout, "%s\n", out)
	return exitOK
}

func (e *cmdEnv) usersList(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users list", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	return e.onData(&f, false, func(a *app) int {
		return printPages(e,
			func(after string) ([]*keycard.User, error) {
				return a.db.Stores().Users.ListUsers(e.ctx, keycard.UserFilter{After: after, Limit: keycard.MaxPageSize})
			},
			func(u *keycard.User) string { return u.NormalizedUsername },
			func(u *keycard.User) any {
				return map[string]any{
					"id": u.ID, "username": u.Username, "roles": u.Roles, "disabled": u.Disabled,
					"created_at": u.CreatedAt.UTC().Format(time.RFC3339),
				}
			})
	})
}

// findUser looks a user up by the name as typed.
func (e *cmdEnv) findUser(a *app, name string) (*keycard.User, error) {
	_, normalized, err := username.Normalize(name)
	if err != nil {
		return nil, err
	}
	return a.db.Stores().Users.UserByUsername(e.ctx, normalized)
}

func (e *cmdEnv) usersDisable(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users disable", &f)
	name := fs.String("username", "", "the user to disable (required); all of their sessions are revoked")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	a, err := e.open(&f, false, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	u, err := e.findUser(a, *name)
	if err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	disabled := true
	if _, err := a.db.Stores().Users.UpdateUser(e.ctx, u.ID, keycard.UserUpdate{Disabled: &disabled}, time.Now()); err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	fmt.Fprintf(e.stdout, "disabled %s; all of their sessions are revoked\n", u.Username)
	return exitOK
}

func (e *cmdEnv) usersSetPassword(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users set-password", &f)
	name := fs.String("username", "", "the user (required); all of their sessions are revoked")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin (default: generate one)")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	a, err := e.open(&f, false, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	u, err := e.findUser(a, *name)
	if err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	pass, err := e.readPassword(*fromStdin)
	if err != nil {
		return e.fail("%v", err)
	}
	if err := a.svc.SetPassword(e.ctx, u.ID, pass, "", "cli", auth.Client{}); err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	fmt.Fprintf(e.stdout, "password changed for %s; all of their sessions are revoked\n", u.Username)
	return exitOK
}
