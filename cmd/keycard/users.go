package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
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

// users runs "keycard users …" on the server's data, through the
// auth.Service with the command line as the audit log's actor.
func (e *cmdEnv) users(args []string) int {
	return e.subcommands("users", args, map[string]func([]string) int{
		"add":          e.usersAdd,
		"list":         e.usersList,
		"disable":      func(args []string) int { return e.usersSetDisabled(args, true) },
		"enable":       func(args []string) int { return e.usersSetDisabled(args, false) },
		"set-password": e.usersSetPassword,
		"set-email":    e.usersSetEmail,
		"delete":       e.usersDelete,
		"remove-mfa":   e.usersRemoveMFA,
	})
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
	fs := e.serverFlagSet("users add", &f, passwordFlags)
	name := fs.String("username", "", "the new user's name (required)")
	var roles stringList
	fs.Var(&roles, "role", "a role to grant (repeatable), for example admin")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin (default: generate one)")
	email := fs.String("email", "", "the user's email address (optional; unique)")
	verified := fs.Bool("email-verified", false, "mark --email verified (the operator vouches for it); the command line mails nothing")
	if code, ok := e.parseLayered(fs, args, 0, "username"); !ok {
		return code
	}
	if *verified && *email == "" {
		fmt.Fprintln(e.stderr, "keycard users add: --email-verified needs --email")
		return exitUsage
	}
	pass, err := e.readPassword(*fromStdin)
	if err != nil {
		return e.fail("%v", err)
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		u, err := svc.CreateUserWithEmail(e.ctx, auth.Operator(), *name, pass, *email, roles)
		if err == nil && *verified {
			u, err = svc.SetEmail(e.ctx, auth.Operator(), u.ID, *email, true)
		}
		if err != nil {
			return e.failErr(err)
		}
		out := map[string]any{"id": u.ID, "username": u.Username, "roles": u.Roles}
		if u.Email != "" {
			out["email"], out["email_verified"] = u.Email, u.EmailVerified
		}
		e.printJSON(out)
		return exitOK
	})
}

func (e *cmdEnv) usersList(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users list", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		return printPages(e,
			func(ctx context.Context, after string) ([]*keycard.User, error) {
				return svc.ListUsers(ctx, "", after, keycard.MaxPageSize)
			},
			func(u *keycard.User) string { return u.NormalizedUsername },
			func(u *keycard.User) any {
				return map[string]any{
					"id": u.ID, "username": u.Username, "roles": u.Roles, "disabled": u.Disabled,
					"email": u.Email, "email_verified": u.EmailVerified,
					"created_at": u.CreatedAt.UTC().Format(time.RFC3339),
				}
			})
	})
}

// usersSetDisabled disables or enables a user (auth.Service.SetUserDisabled,
// audited with the command line as actor).
func (e *cmdEnv) usersSetDisabled(args []string, disabled bool) int {
	var f serverFlags
	verb, usage := "enable", "the user to enable (required)"
	if disabled {
		verb, usage = "disable", "the user to disable (required); all of their sessions are revoked"
	}
	fs := e.serverFlagSet("users "+verb, &f)
	name := fs.String("username", "", usage)
	if code, ok := e.parseLayered(fs, args, 0, "username"); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		u, err := svc.UserByName(e.ctx, *name)
		if err == nil {
			u, err = svc.SetUserDisabled(e.ctx, auth.Operator(), u.ID, disabled)
		}
		if err != nil {
			return e.failErr(err)
		}
		if disabled {
			fmt.Fprintf(e.stdout, "disabled %s; all of their sessions are revoked\n", u.Username)
		} else {
			fmt.Fprintf(e.stdout, "enabled %s\n", u.Username)
		}
		return exitOK
	})
}

// usersDelete is "keycard users delete": every session of the user ends
// (through the revocation feed) and the user is deleted.
func (e *cmdEnv) usersDelete(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users delete", &f)
	name := fs.String("username", "", "the user to delete (required); every session of theirs ends at once")
	if code, ok := e.parseLayered(fs, args, 0, "username"); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		u, err := svc.UserByName(e.ctx, *name)
		if err == nil {
			err = svc.DeleteUser(e.ctx, auth.Operator(), u.ID)
		}
		if err != nil {
			return e.failErr(err)
		}
		fmt.Fprintf(e.stdout, "deleted %s; every session of theirs is revoked\n", u.Username)
		return exitOK
	})
}

func (e *cmdEnv) usersSetPassword(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users set-password", &f, passwordFlags)
	name := fs.String("username", "", "the user (required); all of their sessions are revoked")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin (default: generate one)")
	if code, ok := e.parseLayered(fs, args, 0, "username"); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		u, err := svc.UserByName(e.ctx, *name)
		if err != nil {
			return e.failErr(err)
		}
		pass, err := e.readPassword(*fromStdin)
		if err != nil {
			return e.fail("%v", err)
		}
		if err := svc.SetPassword(e.ctx, auth.Operator(), u.ID, pass, ""); err != nil {
			return e.failErr(err)
		}
		fmt.Fprintf(e.stdout, "password changed for %s; all of their sessions are revoked\n", u.Username)
		return exitOK
	})
}

// usersSetEmail sets or removes a user's email address
// (auth.Service.SetEmail, audited with the command line as actor).
func (e *cmdEnv) usersSetEmail(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users set-email", &f)
	name := fs.String("username", "", "the user (required)")
	email := fs.String("email", "", "the new address; empty removes the user's address")
	verified := fs.Bool("verified", false, "mark the address verified (the operator vouches for it); otherwise it is unverified until the user asks for a link on the account page")
	if code, ok := e.parseLayered(fs, args, 0, "username"); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		u, err := svc.UserByName(e.ctx, *name)
		if err == nil {
			u, err = svc.SetEmail(e.ctx, auth.Operator(), u.ID, *email, *verified)
		}
		if err != nil {
			return e.failErr(err)
		}
		e.printJSON(map[string]any{"id": u.ID, "username": u.Username, "email": u.Email, "email_verified": u.EmailVerified})
		return exitOK
	})
}

// usersRemoveMFA is keycard users remove-mfa --username NAME: remove the
// user's second factors (authenticator app and recovery codes), for a
// user who lost them; audited with the operator as actor.
func (e *cmdEnv) usersRemoveMFA(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("users remove-mfa", &f)
	name := fs.String("username", "", "the user (required)")
	if code, ok := e.parseLayered(fs, args, 0, "username"); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		u, err := svc.UserByName(e.ctx, *name)
		if err == nil {
			err = svc.RemoveSecondFactors(e.ctx, auth.Operator(), u.ID)
		}
		if err != nil {
			return e.failErr(err)
		}
		e.printJSON(map[string]any{"id": u.ID, "username": u.Username, "mfa_removed": true})
		return exitOK
	})
}
