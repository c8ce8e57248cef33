package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/jose"
)

func (e *cmdEnv) keys(args []string) int {
	if len(args) == 0 {
		e.usage()
		return exitUsage
	}
	switch args[0] {
	case "generate":
		return e.keysGenerate(args[1:])
	case "list":
		return e.keysList(args[1:])
	case "rotate":
		return e.keysRotate(args[1:])
	case "revoke":
		return e.keysRevoke(args[1:])
	}
	fmt.Fprintf(e.stderr, "keycard keys: unknown subcommand %q\n", args[0])
	return exitUsage
}

// keysGenerate prints a new private JWK (or its public half). The kid
// defaults to the RFC 7638 thumbprint for asymmetric keys; HMAC keys get
// no kid unless one is given, because their thumbprint hashes the secret.
func (e *cmdEnv) keysGenerate(args []string) int {
	fs := e.flagSet("keys generate")
	alg := fs.String("alg", "ES256", "`algorithm`: HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA")
	kid := fs.String("kid", "", "key id (default: the RFC 7638 thumbprint; none for HMAC keys)")
	public := fs.Bool("public", false, "print the public JWK instead of the private one")
	if _, code, ok := e.parseFlags(fs, args, 0); !ok {
		return code
	}
	a := jose.Algorithm(*alg)
	if !a.Valid() {
		fmt.Fprintf(e.stderr, "keycard keys generate: unsupported --alg %q\n", *alg)
		return exitUsage
	}
	key, err := jose.GenerateKey(a, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	id := *kid
	if id == "" && key.Public() != nil {
		id = key.Thumbprint()
	}
	if id != "" {
		if key, err = key.WithKeyID(id); err != nil {
			return e.fail("%v", err)
		}
	}
	var out []byte
	if *public {
		if key.Public() == nil {
			return e.fail("an HMAC key has no public half")
		}
		out, err = key.MarshalJSON()
	} else {
		out, err = key.MarshalPrivateJWK()
	}
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
	return exitOK
}

func keyJSON(k *keycard.SigningKey) []byte {
	m := map[string]any{"kid": k.KID, "alg": k.Alg, "state": k.State, "created_at": k.CreatedAt.UTC().Format(time.RFC3339)}
	for name, t := range map[string]time.Time{"activates_at": k.ActivatesAt, "retired_at": k.RetiredAt, "remove_after": k.RemoveAfter} {
		if !t.IsZero() {
			m[name] = t.UTC().Format(time.RFC3339)
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// keysList prints the server's signing keys, one JSON object a line.
func (e *cmdEnv) keysList(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("keys list", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	a, err := e.open(&f, false, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	keys, err := a.db.Stores().Keys.ListKeys(e.ctx)
	if err != nil {
		return e.fail("%v", err)
	}
	for _, k := range keys {
		fmt.Fprintf(e.stdout, "%s\n", keyJSON(k))
	}
	return exitOK
}

// keysRotate publishes a next key that signs after the publication lead,
// or with --now makes it sign at once. A running server picks the change
// up within seconds.
func (e *cmdEnv) keysRotate(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("keys rotate", &f)
	now := fs.Bool("now", false, "make the new key sign immediately instead of after the publication lead")

	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if err := e.newKeyAlgorithm(fs, &f); err != nil {
		return e.fail("%v", err)
	}
	a, err := e.open(&f, true, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	k, err := a.keys.Rotate(e.ctx, *now)
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", keyJSON(k))
	return exitOK
}

// keysRevoke is the emergency revocation of a signing key (see
// auth.Service.RevokeKey): a fresh key of the same algorithm signs at once
// if KID was the active key, KID leaves the JWKS, and a key entry in the
// revocation feed kills its tokens at every verifier. A running server
// stops accepting KID's tokens within seconds. It prints
// {"revoked_kid":…,"active_kid":…}.
func (e *cmdEnv) keysRevoke(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("keys revoke", &f)
	if code, ok := e.parseLayered(fs, args, 1); !ok {
		return code
	}
	kid := fs.Arg(0)
	if err := e.newKeyAlgorithm(fs, &f); err != nil {
		return e.fail("%v", err)
	}
	a, err := e.open(&f, true, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	active, err := a.svc.RevokeKey(e.ctx, "", kid, auth.Client{UserAgent: "keycard keys revoke"})
	if keycard.ErrorCode(err) == keycard.EINTERNAL {
		return e.fail("%v", err)
	} else if err != nil {
		return e.fail("%s", keycard.ErrorMessage(err))
	}
	b, _ := json.Marshal(map[string]string{"revoked_kid": kid, "active_kid": active.KID})
	fmt.Fprintf(e.stdout, "%s\n", b)
	return exitOK
}

// newKeyAlgorithm settles f.alg for a key made by the CLI: the algorithm
// asked for with --signing-alg or KEYCARD_SIGNING_ALG, otherwise that of
// the active key (so a CLI rotation never changes the server's algorithm),
// otherwise ES256.
func (e *cmdEnv) newKeyAlgorithm(fs *flagSetWithConfig, f *serverFlags) error {
	if !explicitlySet(fs.FlagSet, "signing-alg") && e.getenv(envName("signing-alg")) == "" {
		f.alg = string(jose.ES256)
		cur, err := e.activeAlg(f)
		if err != nil {
			return err
		}
		if cur != "" {
			f.alg = cur
		}
	}
	if !jose.Algorithm(f.alg).Valid() {
		return fmt.Errorf("--signing-alg: unsupported algorithm %q", f.alg)
	}
	return nil
}

// activeAlg returns the algorithm of the active signing key, or "".
func (e *cmdEnv) activeAlg(f *serverFlags) (string, error) {
	a, err := e.open(f, false, nil)
	if err != nil {
		return "", err
	}
	defer a.Close()
	keys, err := a.db.Stores().Keys.ListKeys(e.ctx)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.State == keycard.KeyActive {
			return k.Alg, nil
		}
	}
	return "", nil
}
