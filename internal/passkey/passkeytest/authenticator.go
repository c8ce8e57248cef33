// Package passkeytest is a WebAuthn authenticator for tests, written from
// the specification and independent of go-webauthn.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator is a WebAuthn authenticator written for the tests
// from the specification (WebAuthn Level 3 §6.1 authenticator data, §8.7
// "none" attestation, §6.3.3 assertion signatures), independent of
// go-webauthn: one P-256 credential, with flags and counter the test
// chooses, answering for whatever origin and relying party id the test
// says — which is how a phishing page's or another site's answer is
// made.
type Authenticator struct {
	Key          *ecdsa.PrivateKey
	CredentialID []byte
	UserHandle   []byte
	Counter      uint32
	// backup sets BE and BS; noUV clears UV; noCounter keeps the
	// counter at 0, as synced passkeys do.
	Backup, NoUV, NoCounter bool
}

// New returns an authenticator with a new P-256 credential.
func New(t testing.TB) *Authenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &Authenticator{Key: key, CredentialID: id}
}

// B64 is the base64url of WebAuthn's JSON.
var B64 = base64.RawURLEncoding

// Authenticator data flags (WebAuthn Level 3 §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

func (a *Authenticator) flags() byte {
	f := byte(flagUP)
	if !a.NoUV {
		f |= flagUV
	}
	if a.Backup {
		f |= flagBE | flagBS
	}
	return f
}

// authData returns the authenticator data for rpID, with the attested
// credential data when attested.
func (a *Authenticator) authData(rpID string, attested bool) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append([]byte{}, h[:]...)
	f := a.flags()
	if attested {
		f |= flagAT
	}
	out = append(out, f)
	out = binary.BigEndian.AppendUint32(out, a.Counter)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID: none
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.CredentialID)))
		out = append(out, a.CredentialID...)
		raw, err := a.Key.PublicKey.Bytes() // 0x04 || x || y
		if err != nil {
			panic(err)
		}
		x, y := raw[1:33], raw[33:65]
		// COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
		cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
		if err != nil {
			panic(err)
		}
		out = append(out, cose...)
	}
	return out
}

// ClientData is a client data JSON (WebAuthn Level 3 §5.8.1).
func ClientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// Options is what the tests read of the server's options.
type Options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		AuthenticatorSelection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		UserVerification string `json:"userVerification"`
	} `json:"publicKey"`
}

func ParseOptions(t testing.TB, raw []byte) Options {
	t.Helper()
	var o Options
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("options %s: %v", raw, err)
	}
	return o
}

// Create answers a registration ceremony's options as if from origin,
// for the relying party rpID.
func (a *Authenticator) Create(t testing.TB, opts []byte, origin, rpID string) []byte {
	t.Helper()
	o := ParseOptions(t, opts)
	handle, err := B64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("user id %q: %v", o.PublicKey.User.ID, err)
	}
	a.UserHandle = handle
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(rpID, true)})
	if err != nil {
		t.Fatal(err)
	}
	return a.response(map[string]any{
		"clientDataJSON":    B64.EncodeToString(ClientData("webauthn.create", o.PublicKey.Challenge, origin)),
		"attestationObject": B64.EncodeToString(att),
		"transports":        []string{"internal"},
	})
}

// Get answers a sign-in ceremony's options as if from origin, for the
// relying party rpID, counting one more signature.
func (a *Authenticator) Get(t testing.TB, opts []byte, origin, rpID string) []byte {
	t.Helper()
	o := ParseOptions(t, opts)
	if !a.NoCounter {
		a.Counter++
	}
	ad := a.authData(rpID, false)
	cd := ClientData("webauthn.get", o.PublicKey.Challenge, origin)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.Key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return a.response(map[string]any{
		"clientDataJSON":    B64.EncodeToString(cd),
		"authenticatorData": B64.EncodeToString(ad),
		"signature":         B64.EncodeToString(sig),
		"UserHandle":        B64.EncodeToString(a.UserHandle),
	})
}

func (a *Authenticator) response(resp map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": B64.EncodeToString(a.CredentialID), "rawId": B64.EncodeToString(a.CredentialID), "type": "public-key",
		"authenticatorAttachment": "platform", "response": resp, "clientExtensionResults": map[string]any{},
	})
	return b
}
