package passkey_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/passkey"
	"github.com/keycard-auth/keycard/internal/passkey/passkeytest"
)

// BenchmarkAssertion compares, in one run, the verification of a passkey
// assertion by the relying party (RelyingParty.FinishLogin: the JSON
// answer parsed, the client data, origin, challenge, relying party id
// hash and flags checked, the COSE key decoded, the ES256 signature
// verified) with its floor, what any verifier must do: the two SHA-256
// of the signed data (clientDataJSON, then authenticator data and its
// hash) and one ECDSA P-256 verification of the DER signature — the
// ES256 verify floor of the bench module (bench/floor_test.go) on the
// same message. The store's work (the ceremony taken, the counter
// written) is not in either. BENCHMARKS.md has the figures.
func BenchmarkAssertion(b *testing.B) {
	rp, err := passkey.New(passkey.Config{RPID: rpID, Origins: []string{origin}})
	if err != nil {
		b.Fatal(err)
	}
	a := passkeytest.New(b)
	user := &keycard.User{ID: "CgLRygpaBhuZLxOmVOOPMQ", Username: "alice"}
	a.UserHandle = []byte(user.ID)
	opts, state, err := rp.BeginLogin(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp := a.Get(b, opts, origin, rpID)
	// The stored credential, as a registration made it.
	regOpts, regState, err := rp.BeginRegistration(user, nil)
	if err != nil {
		b.Fatal(err)
	}
	pk, err := rp.FinishRegistration(user, regState, a.Create(b, regOpts, origin, rpID))
	if err != nil {
		b.Fatal(err)
	}
	pk.ID, pk.UserID = "pk", user.ID
	stored := []*keycard.Passkey{pk}
	lookup := func([]byte) (*keycard.User, []*keycard.Passkey, error) { return user, stored, nil }

	// The floor's inputs, taken from the same answer.
	var parsed struct {
		Response struct {
			ClientDataJSON    string `json:"clientDataJSON"`
			AuthenticatorData string `json:"authenticatorData"`
			Signature         string `json:"signature"`
		} `json:"response"`
	}
	if err := json.Unmarshal(resp, &parsed); err != nil {
		b.Fatal(err)
	}
	cd, _ := passkeytest.B64.DecodeString(parsed.Response.ClientDataJSON)
	ad, _ := passkeytest.B64.DecodeString(parsed.Response.AuthenticatorData)
	sig, _ := passkeytest.B64.DecodeString(parsed.Response.Signature)
	pub := &a.Key.PublicKey

	b.Run("floor-es256", func(b *testing.B) {
		signed := make([]byte, len(ad)+sha256.Size)
		defer cpuPerOp(b)()
		for b.Loop() {
			h := sha256.Sum256(cd)
			copy(signed, ad)
			copy(signed[len(ad):], h[:])
			digest := sha256.Sum256(signed)
			if !ecdsa.VerifyASN1(pub, digest[:], sig) {
				b.Fatal("floor: signature refused")
			}
		}
	})
	b.Run("passkey", func(b *testing.B) {
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := rp.FinishLogin(state, resp, lookup); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cpuPerOp reports the process's CPU time (user and system) per
// operation as "cpu-ns/op", steadier than wall time on a loaded machine;
// call it before the loop and its result after.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
