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
	return e.subcommands("keys", args, map[string]func([]string) int{
		"generate": e.keysGenerate, "list": e.keysList, "rotate": e.keysRotate, "revoke": e.keysRevoke,
	})
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
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		keys, err := svc.SigningKeys(e.ctx)
		if err != nil {
			return e.failErr(err)
		}
		for _, k := range keys {
			fmt.Fprintf(e.stdout, "%s\n", keyJSON(k))
		}
		return exitOK
	})
}

// keysRotate publishes a next key that signs after the publication lead,
// or with --now makes it sign at once. A running server picks the change
// up within seconds.
func (e *cmdEnv) keysRotate(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("keys rotate", &f, keyFlags)
	now := fs.Bool("now", false, "make the new key sign immediately instead of after the publication lead")
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if err := e.newKeyAlgorithm(fs, &f); err != nil {
		return e.fail("%v", err)
	}
	return e.onData(fs, &f, true, func(svc *auth.Service) int {
		k, err := svc.RotateKey(e.ctx, auth.Operator(), *now)
		if err != nil {
			return e.failErr(err)
		}
		fmt.Fprintf(e.stdout, "%s\n", keyJSON(k))
		return exitOK
	})
}

// keysRevoke is the emergency revocation of a signing key (see
// auth.Service.RevokeKey): a fresh key of the same algorithm signs at once
// if KID was the active key, KID leaves the JWKS, and a key entry in the
// revocation feed kills its tokens at every verifier. It prints
// {"revoked_kid":…,"active_kid":…}. A KID that starts with "-" (about one
// thumbprint in 64) is given after "--" or as --kid.
func (e *cmdEnv) keysRevoke(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("keys revoke", &f, keyFlags)
	kidFlag := fs.String("kid", "", "the key id to revoke, instead of the argument")
	if _, code, ok := e.parseFlags(fs.FlagSet, args, -1); !ok {
		return code
	}
	kid := *kidFlag
	switch {
	case kid == "" && fs.NArg() == 1:
		kid = fs.Arg(0)
	case kid == "" || fs.NArg() != 0:
		fmt.Fprintln(e.stderr, "keycard keys revoke: give one KID, as the argument (after -- if it starts with -) or as --kid")
		printFlags(e.stderr, fs.FlagSet)
		return exitUsage
	}
	if code, ok := e.layer(fs); !ok {
		return code
	}
	if err := e.newKeyAlgorithm(fs, &f); err != nil {
		return e.fail("%v", err)
	}
	return e.onData(fs, &f, true, func(svc *auth.Service) int {
		active, err := svc.RevokeKey(e.ctx, auth.Operator(), kid)
		if err != nil {
			return e.failErr(err)
		}
		e.printJSON(map[string]string{"revoked_kid": kid, "active_kid": active.KID})
		return exitOK
	})
}

// newKeyAlgorithm settles f.alg for a key made by the CLI: the algorithm
// asked for with --signing-alg or KEYCARD_SIGNING_ALG, otherwise that of
// the active key (so a CLI rotation never changes the server's algorithm),
// otherwise ES256.
func (e *cmdEnv) newKeyAlgorithm(fs *flagSetWithConfig, f *serverFlags) error {
	if !explicitlySet(fs.FlagSet, "signing-alg") && e.getenv(envName("signing-alg")) == "" {
		f.alg = string(jose.ES256)
		a, err := e.openData(fs, f, false)
		if err != nil {
			return err
		}
		defer a.Close()
		keys, err := a.Service().SigningKeys(e.ctx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.State == keycard.KeyActive {
				f.alg = k.Alg
			}
		}
	}
	if !jose.Algorithm(f.alg).Valid() {
		return fmt.Errorf("--signing-alg: unsupported algorithm %q", f.alg)
	}
	return nil
}
