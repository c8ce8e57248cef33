// Command keycard is Keycard's single binary: the auth server, the
// gateway, the demo, the commands that manage a server's users, clients
// and keys, token and key tools, and a load generator. It reads flags,
// the environment and configuration files and prints results; building
// and running servers is in internal/server, internal/gateway and
// internal/demo.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/keycard-auth/keycard"
)

// defaultGCPercent is the garbage collector's target (GOGC) the keycard
// process runs with unless the environment sets GOGC: the heap may grow to
// three times what is live between collections instead of Go's twice.
// Under load that takes about a tenth off the auth server's CPU per
// refresh grant and per code flow (BENCHMARKS.md, "Write paths, round
// 2") for about a third more memory at peak (112 -> 152 MB of RSS under
// the refresh benchmark). GOMEMLIMIT still bounds the heap where memory is
// scarce.
const defaultGCPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the operation ran and said no (for example an invalid token)
	exitUsage   = 2 // bad command line
)

// Main runs the keycard command line with args (without the program name)
// and returns the process exit code. Tests call it directly.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &cmdEnv{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	if len(args) == 0 {
		env.usage(env.stderr, "")
		return exitUsage
	}
	if isHelp(args[0]) {
		env.usage(env.stdout, "")
		return exitOK
	}
	commands := map[string]func([]string) int{
		"token":      env.token,
		"keys":       env.keys,
		"serve":      env.serve,
		"users":      env.users,
		"clients":    env.clients,
		"webhooks":   env.webhooks,
		"revoke-all": env.revokeAll,
		"demo":       env.demo,
		"gateway":    env.gateway,
		"migrate":    env.migrate,
		"bench":      env.bench,
		"login":      env.login,
		"version":    env.version,
	}
	run, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "keycard: unknown command %q\n\n", args[0])
		env.usage(env.stderr, "")
		return exitUsage
	}
	return run(args[1:])
}

// cmdEnv is what every subcommand works with.
type cmdEnv struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// subcommands dispatches "keycard NAME SUB …" to run[SUB]. No
// subcommand, or an unknown one, prints NAME's usage on stderr (exit 2);
// -h, --help and help print it on stdout (exit 0).
func (e *cmdEnv) subcommands(name string, args []string, run map[string]func([]string) int) int {
	if len(args) == 0 {
		e.usage(e.stderr, name)
		return exitUsage
	}
	if isHelp(args[0]) {
		e.usage(e.stdout, name)
		return exitOK
	}
	if fn, ok := run[args[0]]; ok {
		return fn(args[1:])
	}
	fmt.Fprintf(e.stderr, "keycard %s: unknown subcommand %q\n\n", name, args[0])
	e.usage(e.stderr, name)
	return exitUsage
}

// usageSections are the usage text's sections, by the command they are
// about; usage prints all of them, or one command's.
var usageSections = []struct{ command, text string }{
	{"token", `Tokens:
  keycard token decode TOKEN|-                      show header and claims, UNVERIFIED
  keycard token verify --key FILE [--alg ALG] [--iss S] [--aud S] [--typ S] [--jws] TOKEN|-
  keycard token sign --key FILE --claims JSON|@FILE [--typ S] [--kid S] [--alg ALG]
`},
	{"keys", `Keys:
  keycard keys generate --alg ALG [--kid S] [--public]
  keycard keys list   --data DIR                 the server's signing keys and their states
  keycard keys rotate --data DIR [--now]         publish a next key (--now: make it sign at once)
  keycard keys revoke --data DIR KID             emergency: a fresh key signs, KID is deleted and its tokens die
`},
	{"serve", `Auth server:
  keycard serve --data DIR --addr HOST:PORT --issuer URL [--config FILE] [--dev] [--master-key-file FILE]
                [--store postgres://…] [--redis redis://…] [--tls-cert FILE --tls-key FILE | --behind-proxy]
  keycard migrate [--store URL | --data DIR]       apply pending migrations, print the schema version
  keycard revoke-all [--store URL | --data DIR]    sign every user out: every session ends, every access token dies
`},
	{"gateway", `Gateway (verifying reverse proxy; reloads on SIGHUP and when FILE changes):
  keycard gateway --config FILE
  keycard gateway --config FILE --forward-auth   answer only a proxy's auth subrequests (nginx, Caddy, Traefik)
`},
	{"demo", `Demo:
  keycard demo [--data DIR] [--auth-addr HOST:PORT] [--gateway-addr HOST:PORT] [--tls]
                                                 auth server, gateway and two services, with a curl walk-through
`},
	{"users", `Users (safe while the server runs on the same data):
  keycard users add --data DIR --username U [--role R]... [--password-stdin] [--email A [--email-verified]]
  keycard users list --data DIR
  keycard users disable --data DIR --username U  all of the user's sessions end
  keycard users enable --data DIR --username U
  keycard users set-password --data DIR --username U [--password-stdin]
  keycard users set-email --data DIR --username U --email A [--verified]   (--email "" removes it)
`},
	{"clients", `OAuth clients: services and apps (safe while the server runs on the same data; docs/oidc.md):
  keycard clients add --data DIR --name N [--scope S]... [--audience A]... [--grant G]...
                      [--redirect-uri U]... [--post-logout-redirect-uri U]... [--public] [--first-party]
                      [--backchannel-logout-uri U] [--auth-method M] [--jwks FILE | --jwks-uri U]
                      [--access-token-lifetime D] [--refresh-token-lifetime D] [--refresh-token-idle D]
                                                 prints {"client_id","client_secret"}; the secret only this once
                                                 (no secret for --public or private_key_jwt)
  keycard clients update --data DIR --id ID --name N [the flags of add]   replaces the registration
  keycard clients show --data DIR --id ID
  keycard clients list --data DIR
  keycard clients rotate-secret --data DIR --id ID
  keycard clients delete --data DIR --id ID
`},
	{"webhooks", `Webhooks: signed event deliveries (safe while the server runs on the same data; docs/webhooks.md):
  keycard webhooks add --data DIR --url U [--event T]... [--description D] [--allow-http]
                                                 prints the endpoint with its secret (whsec_…), only this once
  keycard webhooks list --data DIR
  keycard webhooks remove --data DIR --id ID    its deliveries go with it
  keycard webhooks deliveries --data DIR [--endpoint ID] [--state S] [--limit N]
  keycard webhooks replay --data DIR --id N      send a delivered or failed delivery again
`},
	{"login", `Sign in to a Keycard server from the command line (a native app; docs/oidc.md):
  keycard login --issuer URL --client-id ID [--device] [--scope S] [--no-browser] [--credentials FILE]
                                                 sign in through the browser (or --device: a code to type anywhere)
  keycard login token [--issuer URL --client-id ID] a fresh access token of the login (refreshed when it has < 30 s left)
  keycard login logout [--issuer URL --client-id ID] revoke the login's tokens and forget them
`},
	{"bench", `Load testing (docs/bench.md):
  keycard bench WORKLOAD --target URL [--concurrency N | --rate R] [--duration D | --requests N] [--json]
                                                 WORKLOAD: login, refresh, client-credentials, introspect, gateway, revocation-latency
`},
	{"version", `Version:
  keycard version                                the build's module version and VCS revision
`},
}

// usage prints the usage of one command (its section), or of all when
// command is "".
func (e *cmdEnv) usage(w io.Writer, command string) {
	if command == "" {
		fmt.Fprint(w, "Usage: keycard <command> [arguments]\n\n")
	}
	for _, s := range usageSections {
		if command == "" || s.command == command || command == "migrate" && s.command == "serve" {
			fmt.Fprintln(w, s.text)
		}
	}
	if command == "" || command == "serve" || command == "users" || command == "clients" || command == "keys" || command == "webhooks" {
		fmt.Fprint(w, `Every serve/users/clients/keys/webhooks flag also reads KEYCARD_<FLAG> (dashes as underscores)
and the YAML key <flag> of --config; an explicit flag wins. The registration flags of
clients add and update are read from the command line only.
`)
	}
	fmt.Fprint(w, "\nRun \"keycard <command> <subcommand> -h\" for the flags of one subcommand.\n")
}

// version prints the module version and the VCS revision the binary was
// built from, as the Go toolchain recorded them.
func (e *cmdEnv) version(args []string) int {
	fs := e.flagSet("version")
	if _, code, ok := e.parseFlags(fs, args, 0); !ok {
		return code
	}
	v := map[string]string{"version": "(unknown)"}
	if info, ok := debug.ReadBuildInfo(); ok {
		v["version"] = info.Main.Version
		v["go"] = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified":
				v[strings.TrimPrefix(s.Key, "vcs.")] = s.Value
			}
		}
	}
	e.printJSON(v)
	return exitOK
}

// fail prints a one-line error and returns exitFailure.
func (e *cmdEnv) fail(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "keycard: "+format+"\n", args...)
	return exitFailure
}

// failErr prints an error of the auth.Service: its message for the
// user, or the whole error when it is internal (the operator of the
// command line may see what the log would).
func (e *cmdEnv) failErr(err error) int {
	if _, ok := errors.AsType[*keycard.Error](err); ok {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	return e.fail("%v", err)
}

// printJSON prints v as one line of JSON on stdout.
func (e *cmdEnv) printJSON(v any) {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err) // the values printed are maps and structs of plain data
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
}
