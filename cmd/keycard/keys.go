package main

import (
	"fmt"

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
