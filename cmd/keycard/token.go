package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keycard-auth/keycard/internal/jsonscan"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

func (e *cmdEnv) token(args []string) int {
	return e.subcommands("token", args, map[string]func([]string) int{
		"decode": e.tokenDecode, "verify": e.tokenVerify, "sign": e.tokenSign,
	})
}

// flagSet returns an empty flag set for the command name. parseFlags
// prints its messages: help on stdout, errors on stderr.
func (e *cmdEnv) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// printFlags prints the usage of fs, the flags of one command, on w.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage of keycard %s:\n", fs.Name())
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parseFlags parses args and checks that positional arguments are left
// (any number when it is negative), returning them; otherwise it returns
// ok false and the exit code, after printing the usage: on stdout for -h
// or --help (exit 0), on stderr with the error otherwise (exit 2). For a
// command that takes positional arguments, an argument that starts with
// "-" but names no flag of fs is one of them (key ids are base64url: one
// in 64 starts with "-"); "--" ends the flags as usual.
func (e *cmdEnv) parseFlags(fs *flag.FlagSet, args []string, positional int) (rest []string, code int, ok bool) {
	if positional != 0 {
		args = dashedPositionals(fs, args)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printFlags(e.stdout, fs)
			return nil, exitOK, false
		}
		fmt.Fprintf(e.stderr, "keycard %s: %v\n", fs.Name(), err)
		printFlags(e.stderr, fs)
		return nil, exitUsage, false
	}
	if positional >= 0 && fs.NArg() != positional {
		fmt.Fprintf(e.stderr, "keycard %s: want %d argument(s), got %d\n", fs.Name(), positional, fs.NArg())
		printFlags(e.stderr, fs)
		return nil, exitUsage, false
	}
	return fs.Args(), exitOK, true
}

// dashedPositionals returns args with every argument that starts with "-"
// but is not a flag of fs (nor the value of one) moved after a "--", so
// that the flag package takes it as positional.
func dashedPositionals(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		name, hasValue := strings.CutPrefix(a, "-")
		if !hasValue || a == "-" {
			positional = append(positional, a)
			continue
		}
		name = strings.TrimPrefix(name, "-")
		name, _, withValue := strings.Cut(name, "=")
		f := fs.Lookup(name)
		if f == nil && !isHelp(a) {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		if f == nil || withValue || i+1 == len(args) {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
			i++
			flags = append(flags, args[i]) // the flag's value, whatever it looks like
		}
	}
	if len(positional) == 0 {
		return flags
	}
	return append(append(flags, "--"), positional...)
}

// readToken returns the token argument, reading it from stdin for "-".
func (e *cmdEnv) readToken(arg string) (string, error) {
	if arg != "-" {
		return strings.TrimSpace(arg), nil
	}
	b, err := io.ReadAll(io.LimitReader(e.stdin, 1<<20))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (e *cmdEnv) tokenDecode(args []string) int {
	fs := e.flagSet("token decode")
	rest, code, ok := e.parseFlags(fs, args, 1)
	if !ok {
		return code
	}
	tok, err := e.readToken(rest[0])
	if err != nil {
		return e.fail("reading token: %v", err)
	}
	m, err := jose.UnsafeParse(tok)
	if err != nil {
		return e.fail("%v", err)
	}
	header := map[string]any{"alg": m.Header.Algorithm}
	if m.Header.KeyID != "" {
		header["kid"] = m.Header.KeyID
	}
	if m.Header.Type != "" {
		header["typ"] = m.Header.Type
	}
	if m.Header.ContentType != "" {
		header["cty"] = m.Header.ContentType
	}
	hb, _ := json.MarshalIndent(header, "", "  ")
	fmt.Fprintln(e.stdout, "UNVERIFIED: the signature has not been checked; do not trust these values.")
	fmt.Fprintf(e.stdout, "header:\n%s\n", hb)
	var pretty bytes.Buffer
	if json.Valid(m.Payload) && json.Indent(&pretty, m.Payload, "", "  ") == nil {
		fmt.Fprintf(e.stdout, "claims:\n%s\n", pretty.Bytes())
	} else {
		fmt.Fprintf(e.stdout, "payload (not JSON):\n%q\n", m.Payload)
	}
	return exitOK
}

// loadKeys reads FILE as a JWK, a JWK Set or a PEM key. alg binds PEM
// keys; for RSA PEM keys it is required, for EC and Ed25519 keys it is
// implied by the curve.
func loadKeys(path string, alg jose.Algorithm) (jose.KeyResolver, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		if alg != "" {
			return jose.ParsePEM(alg, trimmed)
		}
		for _, a := range []jose.Algorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA} {
			if k, err := jose.ParsePEM(a, trimmed); err == nil {
				return k, nil
			}
		}
		return nil, fmt.Errorf("%s: PEM key needs --alg (RSA keys fit several algorithms)", path)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return nil, fmt.Errorf("%s: neither PEM nor a JSON JWK: %v", path, err)
	}
	if _, isSet := probe["keys"]; isSet {
		set, err := jose.ParseKeySet(trimmed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(set.Keys()) == 0 {
			return nil, fmt.Errorf("%s: no usable key in the set (%v)", path, errors.Join(set.Skipped()...))
		}
		return set, nil
	}
	k, err := jose.ParseJWK(trimmed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func (e *cmdEnv) tokenVerify(args []string) int {
	fs := e.flagSet("token verify")
	keyFile := fs.String("key", "", "JWK, JWK Set or PEM public key `file` (required)")
	alg := fs.String("alg", "", "accept only this `algorithm`; binds a PEM key")
	iss := fs.String("iss", "", "require this issuer")
	aud := fs.String("aud", "", "require this audience")
	typ := fs.String("typ", "", "require this header typ, for example at+jwt")
	jwsOnly := fs.Bool("jws", false, "check the signature only; the payload need not be JWT claims")
	rest, code, ok := e.parseFlags(fs, args, 1)
	if !ok {
		return code
	}
	if *keyFile == "" {
		fmt.Fprintln(e.stderr, "keycard token verify: --key is required")
		return exitUsage
	}
	if *alg != "" && !jose.Algorithm(*alg).Valid() {
		fmt.Fprintf(e.stderr, "keycard token verify: unsupported --alg %q\n", *alg)
		return exitUsage
	}
	keys, err := loadKeys(*keyFile, jose.Algorithm(*alg))
	if err != nil {
		return e.fail("%v", err)
	}
	tok, err := e.readToken(rest[0])
	if err != nil {
		return e.fail("reading token: %v", err)
	}
	var algs []jose.Algorithm
	if *alg != "" {
		algs = []jose.Algorithm{jose.Algorithm(*alg)}
	}
	if *jwsOnly {
		v := jose.JWSVerifier{Keys: keys, Algorithms: algs}
		m, err := v.Verify(tok)
		if err != nil {
			return e.fail("invalid: %v", err)
		}
		if *typ != "" && m.Header.Type != *typ {
			return e.fail("invalid: header typ %q, want %q", m.Header.Type, *typ)
		}
		e.stdout.Write(m.Payload)
		fmt.Fprintln(e.stdout)
		return exitOK
	}
	opts := []jwt.ParserOption{jwt.WithAlgorithms(algs...)}
	if *iss != "" {
		opts = append(opts, jwt.WithIssuer(*iss))
	}
	if *aud != "" {
		opts = append(opts, jwt.WithAudience(*aud))
	}
	if *typ != "" {
		opts = append(opts, jwt.WithType(*typ))
	}
	var claims jwt.MapClaims
	if err := jwt.NewParser(keys, opts...).Parse(tok, &claims); err != nil {
		return e.fail("invalid: %v", err)
	}
	out, _ := json.MarshalIndent(claims, "", "  ")
	fmt.Fprintf(e.stdout, "%s\n", out)
	return exitOK
}

func (e *cmdEnv) tokenSign(args []string) int {
	fs := e.flagSet("token sign")
	keyFile := fs.String("key", "", "private JWK or PEM key `file` (required)")
	claimsArg := fs.String("claims", "", "claims as a JSON object, or @FILE to read them from a file (required)")
	typ := fs.String("typ", "JWT", "header typ, for example at+jwt")
	kid := fs.String("kid", "", "header kid (default: the key's kid)")
	alg := fs.String("alg", "", "`algorithm` for a PEM key (RSA keys need it)")
	rest, code, ok := e.parseFlags(fs, args, 0)
	if !ok {
		return code
	}
	_ = rest
	if *keyFile == "" || *claimsArg == "" {
		fmt.Fprintln(e.stderr, "keycard token sign: --key and --claims are required")
		return exitUsage
	}
	if *alg != "" && !jose.Algorithm(*alg).Valid() {
		fmt.Fprintf(e.stderr, "keycard token sign: unsupported --alg %q\n", *alg)
		return exitUsage
	}
	keys, err := loadKeys(*keyFile, jose.Algorithm(*alg))
	if err != nil {
		return e.fail("%v", err)
	}
	key, isKey := keys.(*jose.Key)
	if !isKey || !key.IsPrivate() {
		return e.fail("%s: signing needs one private key, not a key set or public key", *keyFile)
	}
	raw := []byte(*claimsArg)
	if strings.HasPrefix(*claimsArg, "@") {
		if raw, err = os.ReadFile((*claimsArg)[1:]); err != nil {
			return e.fail("%v", err)
		}
	}
	// Check the claims strictly (no duplicates, valid UTF-8), then keep
	// numbers exact.
	if err := jsonscan.ScanObject(bytes.TrimSpace(raw), true, func(_, _ []byte) error { return nil }); err != nil {
		return e.fail("--claims: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return e.fail("--claims: %v", err)
	}
	opts := []jwt.SignerOption{jwt.WithHeaderType(*typ)}
	if *kid != "" {
		opts = append(opts, jwt.WithKeyID(*kid))
	}
	tok, err := jwt.Sign(key, claims, opts...)
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintln(e.stdout, tok)
	return exitOK
}
