package jwt_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// FuzzParse feeds arbitrary tokens to Parser.Parse with every form of
// claims. It must never panic; every error must be a documented sentinel
// and leave the claims value zero; a token that is accepted must carry a
// signature that verifies on its own and an unexpired "exp". The forms
// must agree: AccessClaims checks more claim types than RegisteredClaims,
// so what it accepts RegisteredClaims accepts too, with the same
// registered claims, and so do MapClaims and a caller's struct, which
// read the registered claims the same way. A reused claims value must end
// up exactly like a fresh one.
//
// With resign set, the token's signature is first replaced by a valid one
// over its first two segments, read as they are, so that the claims
// parser sees fuzzed claims rather than only the seeds.
//
// The seeds are every token of the tables in strict_test.go.
func FuzzParse(f *testing.F) {
	for _, c := range allClaimCases() {
		f.Add(c.compact(), false)
	}
	valid := strictSign(strictSecret, `{"alg":"HS256","typ":"at+jwt","kid":"k1"}`,
		`{"iss":"`+strictIss+`","sub":"alice","aud":["api","web"],"exp":`+at(600)+`,"iat":`+at(0)+`,"nbf":`+at(0)+
			`,"jti":"j1","sid":"s1","client_id":"web","scope":"read write","roles":["admin","user"],"auth_time":`+at(-60)+`,"acr":"mfa","amr":["pwd","otp","mfa"],"role":"admin","ctx":{"a":[1,2]}}`)
	f.Add(valid, false)
	f.Add(valid, true)
	delegated := strictSign(strictSecret, `{"alg":"HS256","typ":"at+jwt","kid":"k1"}`,
		`{"iss":"`+strictIss+`","sub":"alice","exp":`+at(600)+`,"sid":"s1","client_id":"b","act":{"sub":"b","iss":"x","act":{"sub":"a"}}}`)
	f.Add(delegated, false)
	f.Add(delegated, true)
	f.Add(strictSign(strictSecret, strictHeader, malloryClaims), true)

	key := strictKey(f)
	p := jwt.NewParser(key, jwt.WithNow(strictClock))
	f.Fuzz(func(t *testing.T, tok string, resign bool) {
		if resign {
			if i := strings.LastIndexByte(tok, '.'); i >= 0 {
				tok = strictSignInput(strictSecret, tok[:i])
			}
		}
		var ac jwt.AccessClaims
		var rc jwt.RegisteredClaims
		var mc jwt.MapClaims
		var cc customClaims
		results := []struct {
			name  string
			err   error
			value any
		}{
			{"AccessClaims", p.Parse(tok, &ac), &ac},
			{"RegisteredClaims", p.Parse(tok, &rc), &rc},
			{"MapClaims", p.Parse(tok, &mc), &mc},
			{"custom struct", p.Parse(tok, &cc), &cc},
		}
		for _, r := range results {
			if r.err != nil {
				if !documentedError(r.err) {
					t.Fatalf("%s: undocumented error %v", r.name, r.err)
				}
				if v := reflect.ValueOf(r.value).Elem(); !v.IsZero() {
					t.Fatalf("%s: got claims %+v with error %v, want the zero value", r.name, v, r.err)
				}
				continue
			}
			if _, err := jose.Verify(tok, key); err != nil {
				t.Fatalf("%s: accepted a token whose signature does not verify: %v", r.name, err)
			}
		}
		errA, errR, errM, errC := results[0].err, results[1].err, results[2].err, results[3].err
		if errR != nil {
			for _, r := range []struct {
				name string
				err  error
			}{{"AccessClaims", errA}, {"MapClaims", errM}, {"custom struct", errC}} {
				if r.err == nil {
					t.Fatalf("%s accepted a token that RegisteredClaims rejects with %v", r.name, errR)
				}
			}
			return
		}
		if exp := rc.ExpiresAt; exp.IsZero() || !strictClock().Before(exp.Add(jwt.DefaultLeeway)) {
			t.Fatalf("accepted a token with exp %v at %v", exp, strictClock())
		}
		if errA == nil {
			if got, want := marshal(t, ac.RegisteredClaims), marshal(t, rc); got != want {
				t.Fatalf("registered claims: AccessClaims got %s, RegisteredClaims got %s", got, want)
			}
		}
		if errC == nil {
			if got, want := marshal(t, cc.RegisteredClaims), marshal(t, rc); got != want {
				t.Fatalf("registered claims: custom struct got %s, RegisteredClaims got %s", got, want)
			}
		}

		// The same token parsed into values that held another token's
		// claims gives the same result as a fresh value.
		reusedA, reusedM := new(jwt.AccessClaims), new(jwt.MapClaims)
		if err := p.Parse(valid, reusedA); err != nil {
			t.Fatal(err)
		}
		if err := p.Parse(valid, reusedM); err != nil {
			t.Fatal(err)
		}
		if err := p.Parse(tok, reusedA); (err == nil) != (errA == nil) || (err == nil && marshal(t, reusedA) != marshal(t, &ac)) {
			t.Fatalf("reused AccessClaims: got %s, %v; want %s, %v", marshal(t, reusedA), err, marshal(t, &ac), errA)
		}
		if err := p.Parse(tok, reusedM); (err == nil) != (errM == nil) || (err == nil && marshal(t, reusedM) != marshal(t, &mc)) {
			t.Fatalf("reused MapClaims: got %s, %v; want %s, %v", marshal(t, reusedM), err, marshal(t, &mc), errM)
		}
	})
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(b)
}

// documentedError reports whether err matches one of the sentinels Parse
// is documented to return.
func documentedError(err error) bool {
	for _, s := range []error{jwt.ErrMalformed, jwt.ErrUnsupportedAlgorithm, jwt.ErrAlgorithmMismatch, jwt.ErrKeyNotFound, jwt.ErrSignatureInvalid, jwt.ErrInvalidClaims} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
