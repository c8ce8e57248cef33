// Command keycard is Keycard's single binary: token and key tools today,
// and the auth server, gateway and admin commands as they land.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
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
		env.usage()
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		env.usage()
		return exitOK
	case "token":
		return env.token(args[1:])
	case "keys":
		return env.keys(args[1:])
	case "serve":
		return env.serve(args[1:])
	case "users":
		return env.users(args[1:])
	case "clients":
		return env.clients(args[1:])
	case "demo":
		return env.demo(args[1:])
	case "gateway":
		return env.gateway(args[1:])
	case "migrate":
		return env.migrate(args[1:])
	case "bench":
		return env.bench(args[1:])
	}
	fmt.Fprintf(stderr, "keycard: unknown command %q\n\n", args[0])
	env.usage()
	return exitUsage
}

// cmdEnv is what every subcommand works with.
type cmdEnv struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func (e *cmdEnv) usage() {
	fmt.Fprint(e.stderr, `Usage: keycard <command> [arguments]

Tokens:
  keycard token decode TOKEN|-                      show header and claims, UNVERIFIED
  keycard token verify --key FILE [--alg ALG] [--iss S] [--aud S] [--typ S] [--jws] TOKEN|-
  keycard token sign --key FILE --claims JSON|@FILE [--typ S] [--kid S] [--alg ALG]

Keys:
  keycard keys generate --alg ALG [--kid S] [--public]
  keycard keys list   --data DIR                 the server's signing keys and their states
  keycard keys rotate --data DIR [--now]         publish a next key (--now: make it sign at once)
  keycard keys revoke --data DIR KID             emergency: a fresh key signs, KID is deleted and its tokens die

Auth server:
  keycard serve --data DIR --addr HOST:PORT --issuer URL [--config FILE] [--dev] [--master-key-file FILE]
                [--store postgres://…] [--redis redis://…] [--tls-cert FILE --tls-key FILE | --behind-proxy]
  keycard migrate [--store URL | --data DIR]       apply pending migrations, print the schema version

Gateway (verifying reverse proxy; reloads on SIGHUP and when FILE changes):
  keycard gateway --config FILE

Demo:
  keycard demo [--data DIR] [--auth-addr HOST:PORT] [--gateway-addr HOST:PORT] [--tls]
                                                 auth server, gateway and two services, with a curl walk-through

Users (safe while the server runs on the same data directory):
  keycard users add --data DIR --username U [--role R]... [--password-stdin]
  keycard users list --data DIR
  keycard users disable --data DIR --username U
  keycard users set-password --data DIR --username U [--password-stdin]

Service clients (safe while the server runs on the same data directory):
  keycard clients add --data DIR --name N [--scope S]... [--audience A]...
                                                 prints {"client_id","client_secret"}; the secret only this once
  keycard clients list --data DIR
  keycard clients rotate-secret --data DIR --id ID
  keycard clients delete --data DIR --id ID

Load testing (docs/bench.md):
  keycard bench WORKLOAD --target URL [--concurrency N | --rate R] [--duration D | --requests N] [--json]
                                                 WORKLOAD: login, refresh, client-credentials, introspect, gateway, revocation-latency

Every serve/users/clients/keys flag also reads KEYCARD_<FLAG> (dashes as underscores)
and the YAML key <flag> of --config; an explicit flag wins.

Run "keycard <command> <subcommand> -h" for the flags of one subcommand.
`)
}

// fail prints a one-line error and returns exitFailure.
func (e *cmdEnv) fail(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "keycard: "+format+"\n", args...)
	return exitFailure
}
