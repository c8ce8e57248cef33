package jose_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
)

// This file holds the "Strictness" list of the token-core issue: each
// point is a table of tokens an attacker would send. Every attack token is
// built by hand (header and payload JSON, base64url, a real signature) so
// that the property under test is the only thing wrong with it, and each
// table has a control case showing that the same construction without the
// fault verifies. The tokens also seed FuzzParseCompact.

// Test keys, fixed so that every attack token can be reproduced. They were
// made once with GenerateKey and MarshalPrivateJWK and protect nothing.
const (
	strictRSAJWK      = `{"e":"AQAB","kty":"RSA","n":"2MjnaFbEszp2D7x9DuzvX9sP0cNyDfDHhXqwzvv60GReOgMOjHddn8i_DBJmmhUXaEAmpd94SL1ibxlUMdCdc9GC4ydIhSCZT9vnWRxuMG4ZBP4C65CNfoExNT-cgw2ASHCeggkAhHsz10gOKlby1qngf5VvRRH77usGP5ibQl2PpPLgrSigax-5ZYhfrjAzT_IyxJiSQ96_dVIk2pj9WiYHMyybA2UTRLvV7J2GstdwoNPncbERVcvErWTvNeLkZKXXLdKeUW1HqdnBV5Ucud5vA-tzZOCcuoAtq5OJlIFwN7otjeWSM11UjpzFce8x3l3sh8KZNkMMpGN-LBZgXw","alg":"RS256","use":"sig","kid":"rsa-1","d":"DpAwkN8uB6b9whY02zPU65OZKcuqIIBJvGXUSui9SL1KtzWiseey78ZZ-e2ihudefdpmvkNCSWCvpCxcw5vyzT0IlfSloovgwMSnyLdoOkirKvKwL4heeQkkzSGg2gz7eTes7lS8fCnqqaO65TfsyGRRI0EJYJJ8t5LXsJ4H5W_-ogZIuYhlxNh4idZOP6WoGzsm9TMfnu29-o4rCRiAMVTlQHB9MQu_ko45gOMrWrL8_IG-GLYcKqekTNDDhHMyYT1aij2XMqMaDWl2VvOLOkNRIeZ7VUwAz0W2Druc1823bcLicFt97H06MQ7QtVuiwLJFtJbS9rZEKDyW4_LkAQ","p":"7PHkq2QsTZNd0lWWv09DAdKiYBNLWlT7qWZYaioOQ_HPAv7TPs1Nf26NJhcDrBTHx5gB7C3IiZAD0WzHa81UDwZqYH97Ud700__5i-eZYe6Ni4z8i_2taDtvFnoBpvjYKm_BCgV9vkELgiT9gmeTP4K3GUm-U3htU7QYXdCn8cE","q":"6jf2yianFSKY9uYlQXCH9IARhIXraDEYS7DssH-l8IBjWS0JpLBguotq7FvDoL_1yLIP2mfKySmSXG6u3ENrPP-ppREa5ckrRUWBGGrpdhOAmpgjUbU7iICMXI5aKqqNj9n6_OPa01PSmK0Dez0e2Pyei4RN82TqVVLd3JDSmh8","dp":"n2w1vje9M0jnBIE_12J-JDjTta7lsVaiqRzKekvno0GMVmicO5IpBYedgrZTazHkJWAaUw2O8zepyfvVxau2VhGr-1dq4vAPbKC7B64BXooCRJXMymgZh5sNqGLYv76IuyzMBnEhZKQhGSTISThlM4NArMwYOdM6Q-pVxrGAfkE","dq":"pt-KqIqTfl5xB2__2Tj41H2ufXIAv_JCsiLy7-lybAC9R9rrxPeZYy9T1eSnY8-AqSYcX2qVs284BT0ivnIWZJZu4tlmBZOnjaowiRobDfJlLT_54gwyx1V3K7aMjVuIkpYm2ajpzqkpIXgbQ-HPKaAKwbJY63HZ90KcKbrRIdc","qi":"V_RVfw_SnuWtFxJkCywoOTjEdt0gm57PGVXvHxXNHSRb2ukr7HyxRZsfAhjFPCviGhfWSdfsZV49GL4_4yCcmyPSN_qj-RQ5XiC88DEB80vgEhfC7qsByglhI6RgvVlfft6VKLi54iRDrbGWgMTk0N5PuiodTVFj5Az7PU45b70"}`
	strictEC256JWK    = `{"crv":"P-256","kty":"EC","x":"QpvNHBHnH_pCo-wBrxj-4SGGNDnuvcEyhVezKomvZBs","y":"ihJoKT4cqhpsszDBKJ92q4_yqWpCVBk9OJEXxatNCfo","alg":"ES256","use":"sig","kid":"ec-1","d":"P7Bschw4vhZJv_5uKRVx_3LHf61mzIbhkoIXvpfTSD4"}`
	strictEC384JWK    = `{"crv":"P-384","kty":"EC","x":"clxXPC5WXNC7wTuCvOsS5Y9bDemmwcwAibF1hF79qR443YNPuGIxmEFAXMFb8sGC","y":"OFiRadJzjxFsFUegHo5tp10dXKMOUaBFjF_piQVRTnlCxnSwEltD9kh8cYT0MQeo","alg":"ES384","use":"sig","kid":"ec384-1","d":"ehAMY1SR2bGQo2L2_9chC-osz6JDCOyEHMGUR1oJ3yt-oJ0VuWBxXbrpzBT-NkLt"}`
	strictEC521JWK    = `{"crv":"P-521","kty":"EC","x":"Ac5Jp9h32An-NGv8apJqfEX1omx3MKXbq9mEAuh4CFd10ePZxmsbaZ2_bPHGOyyP4K-k7bLVG2Jysq8gQvqKfq7n","y":"ARb2ppQBzahWrxF0Q33MyYftF6hbM0Zti7Fez6nwS7AuMugZvA7Z8lB1xPKiBsaAr0kf_AlN9YVY2NgcvLtAqJpR","alg":"ES512","use":"sig","kid":"ec521-1","d":"AT_bZq5blfahV0F8tCEnNR_rG7-6SeIMIr2j3Ph5cgPsVepmW0Hc81tGn1fqUuoCcmiLWaOb1L8CmheqRrlS1uHZ"}`
	strictEd25519JWK  = `{"crv":"Ed25519","kty":"OKP","x":"nX5uKXS-idQlsnrc3QjmIQuEfaeqmGrQG1hSTkEiHKk","alg":"EdDSA","use":"sig","kid":"ed-1","d":"Qe1PLNd09xg0y0-4VAC03nMrCVXY2OysyifIcAh20Sg"}`
	strictAttackerJWK = `{"crv":"P-256","kty":"EC","x":"i7ikTvljYgkOhbcSTGP7_C2trTBgsfZ478B7MQoP6q0","y":"TgvGA8rUhOjp_a9Zl9NE75ZW4mv9zLNGrlWNPL66IEU","alg":"ES256","use":"sig","kid":"attacker","d":"DyybMxXsp61Bq8-WKnagNt8vBNItU7zmC1jqUJBmf30"}`

	// strictSecret is exactly 32 bytes, the shortest HS256 secret allowed.
	strictSecret  = "keycard-test-hmac-secret-32bytes"
	strictSecret2 = "another-test-hmac-secret-32bytes"
)

// strictKey signs any signing input with the standard library alone, so a
// test can put bytes into a token that the package's own Signer would never
// write and still give it a signature that verifies.
type strictKey struct {
	alg    jose.Algorithm
	secret []byte        // HMAC algorithms
	priv   crypto.Signer // the others
	pub    *jose.Key     // what a verifier holds: the public half, or the HMAC key
}

func strictHMACKey(t testing.TB, alg jose.Algorithm, secret, kid string) strictKey {
	t.Helper()
	k, err := jose.NewHMACKey(alg, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		if k, err = k.WithKeyID(kid); err != nil {
			t.Fatal(err)
		}
	}
	return strictKey{alg: alg, secret: []byte(secret), pub: k}
}

func strictJWKKey(t testing.TB, jwk string) strictKey {
	t.Helper()
	k, err := jose.ParseJWK([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	return strictKey{alg: k.Algorithm(), priv: k.Signer(), pub: k.Public()}
}

// rebind returns the same key material bound to alg, another algorithm of
// the same family.
func (k strictKey) rebind(t testing.TB, alg jose.Algorithm) strictKey {
	t.Helper()
	if k.secret != nil {
		return strictKey{alg: alg, secret: k.secret, pub: nil}
	}
	pub, err := jose.NewKey(alg, k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return strictKey{alg: alg, priv: k.priv, pub: pub}
}

func strictHash(alg jose.Algorithm) crypto.Hash {
	switch {
	case strings.HasSuffix(string(alg), "256"):
		return crypto.SHA256
	case strings.HasSuffix(string(alg), "384"):
		return crypto.SHA384
	case strings.HasSuffix(string(alg), "512"):
		return crypto.SHA512
	}
	return 0
}

// sign returns the raw JWS signature of input (RFC 7518 section 3).
func (k strictKey) sign(t testing.TB, input string) []byte {
	t.Helper()
	h := strictHash(k.alg)
	var digest []byte
	if h != 0 {
		hh := h.New()
		hh.Write([]byte(input))
		digest = hh.Sum(nil)
	}
	var sig []byte
	var err error
	switch string(k.alg[:2]) {
	case "HS":
		m := hmac.New(h.New, k.secret)
		m.Write([]byte(input))
		return m.Sum(nil)
	case "RS":
		sig, err = rsa.SignPKCS1v15(nil, k.priv.(*rsa.PrivateKey), h, digest)
	case "PS":
		sig, err = rsa.SignPSS(rand.Reader, k.priv.(*rsa.PrivateKey), h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES":
		priv := k.priv.(*ecdsa.PrivateKey)
		r, s, serr := ecdsa.Sign(rand.Reader, priv, digest)
		if serr != nil {
			t.Fatal(serr)
		}
		size := (priv.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case "Ed":
		sig = ed25519.Sign(k.priv.(ed25519.PrivateKey), []byte(input))
	default:
		t.Fatalf("strictKey.sign: no signer for %s", k.alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// signed returns input + "." + base64url(signature of input).
func (k strictKey) signed(t testing.TB, input string) string {
	t.Helper()
	return input + "." + b64url(k.sign(t, input))
}

// token returns a compact JWS of the given header and payload JSON, written
// exactly as given.
func (k strictKey) token(t testing.TB, header, payload string) string {
	t.Helper()
	return k.signed(t, b64url([]byte(header))+"."+b64url([]byte(payload)))
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jsonString returns s as a JSON string literal.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// split3 splits a compact JWS into its three segments.
func split3(t testing.TB, tok string) (h, p, s string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("split3: %d segments", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

// strictFixture holds the keys the attack tables use.
type strictFixture struct {
	hs       strictKey // HS256, no kid (a single key without kid accepts any kid)
	hs384    strictKey
	hs512    strictKey
	rs       strictKey // RS256, kid "rsa-1"
	ps       strictKey // the same RSA key bound to PS256
	es       strictKey // ES256, kid "ec-1"
	es384    strictKey
	es512    strictKey
	ed       strictKey // EdDSA, kid "ed-1"
	attacker strictKey // ES256, kid "attacker": a key no verifier trusts
}

func newStrictFixture(t testing.TB) *strictFixture {
	t.Helper()
	fx := &strictFixture{
		hs:       strictHMACKey(t, jose.HS256, strictSecret, ""),
		hs384:    strictHMACKey(t, jose.HS384, strings.Repeat("x", 48), ""),
		hs512:    strictHMACKey(t, jose.HS512, strings.Repeat("y", 64), ""),
		rs:       strictJWKKey(t, strictRSAJWK),
		es:       strictJWKKey(t, strictEC256JWK),
		es384:    strictJWKKey(t, strictEC384JWK),
		es512:    strictJWKKey(t, strictEC521JWK),
		ed:       strictJWKKey(t, strictEd25519JWK),
		attacker: strictJWKKey(t, strictAttackerJWK),
	}
	fx.ps = fx.rs.rebind(t, jose.PS256)
	return fx
}

func (fx *strictFixture) set(t testing.TB, keys ...*jose.Key) *jose.KeySet {
	t.Helper()
	s, err := jose.NewKeySet(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// attackCase is one token and the verdict it must get.
type attackCase struct {
	name    string
	token   string
	keys    jose.KeyResolver // what the verifier trusts
	maxSize int              // JWSVerifier.MaxSize; 0 for the default
	algs    []jose.Algorithm // JWSVerifier.Algorithms
	// shape marks a fault that UnsafeParse must find too: the token is
	// rejected before any key is involved.
	shape bool
	want  error // nil for a control case, which must verify
}

func runAttacks(t *testing.T, cases []attackCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := jose.JWSVerifier{Keys: tc.keys, MaxSize: tc.maxSize, Algorithms: tc.algs}
			m, err := v.Verify(tc.token)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("control token: got %v, want it to verify", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("got %v, want %v", err, tc.want)
			case tc.want != nil && m != nil:
				t.Errorf("got message %+v for a rejected token, want nil", m)
			}
			// Again through the same verifier, which now remembers the
			// header segment if it was accepted and skips decoding and
			// parsing it: the same answer.
			m2, err2 := v.Verify(tc.token)
			if (err2 == nil) != (err == nil) || (err != nil && err2.Error() != err.Error()) ||
				(err == nil && (m2.Header != m.Header || string(m2.Payload) != string(m.Payload))) {
				t.Errorf("second Verify: got %+v, %v; first %+v, %v", m2, err2, m, err)
			}
			if !tc.shape || tc.maxSize != 0 {
				return
			}
			m, err = jose.UnsafeParse(tc.token)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("UnsafeParse of control token: got %v, want success", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("UnsafeParse: got %v, want %v", err, tc.want)
			case tc.want != nil && m != nil:
				t.Errorf("UnsafeParse: got message %+v for a rejected token, want nil", m)
			}
		})
	}
}

// allAttacks returns every attack table; FuzzParseCompact uses them as
// seeds.
func allAttacks(t testing.TB, fx *strictFixture) []attackCase {
	var all []attackCase
	for _, group := range []func(testing.TB, *strictFixture) []attackCase{
		segmentAttacks, sizeAttacks, base64Attacks, utf8Attacks, headerJSONAttacks,
		duplicateAttacks, caseVariantAttacks, criticalAttacks, embeddedKeyAttacks,
		kidAttacks, algNoneAttacks, confusionAttacks, signatureLengthAttacks, ecdsaRangeAttacks,
	} {
		all = append(all, group(t, fx)...)
	}
	return all
}

const strictPayload = `{"sub":"alice","exp":1800000600}`

// Exactly three segments; JWE and the JSON serialization get their own
// errors.
func segmentAttacks(t testing.TB, fx *strictFixture) []attackCase {
	valid := fx.hs.token(t, `{"alg":"HS256","typ":"JWT"}`, strictPayload)
	h, p, s := split3(t, valid)
	jwe := b64url([]byte(`{"alg":"dir","enc":"A128GCM"}`)) + "..48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ"
	jweRSA := b64url([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM"}`)) + ".OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ"
	return []attackCase{
		{name: "control: three segments", token: valid, keys: fx.hs.pub, shape: true},
		{name: "one segment", token: h, keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "two segments", token: h + "." + p, keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "two segments and a dot (unsecured JWS)", token: h + "." + p + ".", keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "four segments", token: valid + "." + s, keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "four segments, one empty", token: h + "." + p + ".." + s, keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "six segments", token: valid + "." + s + "." + s + "." + s, keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "five-segment JWE, alg dir", token: jwe, keys: fx.hs.pub, shape: true, want: jose.ErrEncrypted},
		{name: "five-segment JWE, alg RSA-OAEP", token: jweRSA, keys: fx.rs.pub, shape: true, want: jose.ErrEncrypted},
		{name: "five segments starting with a valid JWS", token: valid + "." + s + "." + s, keys: fx.hs.pub, shape: true, want: jose.ErrEncrypted},
		{name: "JSON serialization, flattened", token: `{"payload":"` + p + `","protected":"` + h + `","signature":"` + s + `"}`, keys: fx.hs.pub, shape: true, want: jose.ErrJSONSerialization},
		{name: "JSON serialization, general", token: `{"payload":"` + p + `","signatures":[{"protected":"` + h + `","signature":"` + s + `"}]}`, keys: fx.hs.pub, shape: true, want: jose.ErrJSONSerialization},
		{name: "empty token", token: "", keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "two dots only", token: "..", keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "empty header, signed", token: fx.hs.signed(t, "."+p), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
	}
}

// tokenOfSize returns a valid HS256 token exactly size bytes long.
func tokenOfSize(t testing.TB, k strictKey, size int) string {
	t.Helper()
	encLen := func(n int) int { return (4*n + 2) / 3 }
	sigLen := encLen(len(k.sign(t, "")))
	for extra := 0; extra < 3; extra++ {
		header := `{"alg":"` + string(k.alg) + `"` + strings.Repeat(" ", extra) + `}`
		const frame = `{"exp":1800000600,"pad":""}`
		for n := 0; ; n++ {
			l := encLen(len(header)) + 1 + encLen(len(frame)+n) + 1 + sigLen
			if l > size {
				break
			}
			if l == size {
				tok := k.token(t, header, `{"exp":1800000600,"pad":"`+strings.Repeat("x", n)+`"}`)
				if len(tok) != size {
					t.Fatalf("tokenOfSize: got %d bytes, want %d", len(tok), size)
				}
				return tok
			}
		}
	}
	t.Fatalf("tokenOfSize: cannot make a token of %d bytes", size)
	return ""
}

// A size cap checked before any decoding: 8 KiB by default.
func sizeAttacks(t testing.TB, fx *strictFixture) []attackCase {
	nineKiB := tokenOfSize(t, fx.hs, 9<<10)
	atLimit := tokenOfSize(t, fx.hs, jose.DefaultMaxTokenSize)
	overLimit := tokenOfSize(t, fx.hs, jose.DefaultMaxTokenSize+1)
	small := fx.hs.token(t, `{"alg":"HS256"}`, strictPayload)
	return []attackCase{
		{name: "9 KiB token", token: nineKiB, keys: fx.hs.pub, shape: true, want: jose.ErrTooLarge},
		{name: "control: 9 KiB token with MaxSize 16 KiB", token: nineKiB, keys: fx.hs.pub, maxSize: 16 << 10},
		{name: "control: exactly DefaultMaxTokenSize", token: atLimit, keys: fx.hs.pub, shape: true},
		{name: "one byte over DefaultMaxTokenSize", token: overLimit, keys: fx.hs.pub, shape: true, want: jose.ErrTooLarge},
		// Were the size checked after the character scan, these would be
		// plain ErrMalformed.
		{name: "9 KiB of non-base64url bytes", token: strings.Repeat("!", 9<<10), keys: fx.hs.pub, shape: true, want: jose.ErrTooLarge},
		{name: "9 KiB of dots", token: strings.Repeat(".", 9<<10), keys: fx.hs.pub, shape: true, want: jose.ErrTooLarge},
		{name: "9 KiB JSON serialization", token: `{"payload":"` + strings.Repeat("A", 9<<10) + `"}`, keys: fx.hs.pub, shape: true, want: jose.ErrTooLarge},
		{name: "small token over a custom MaxSize of 64", token: small, keys: fx.hs.pub, maxSize: 64, want: jose.ErrTooLarge},
		{name: "control: small token under a custom MaxSize", token: small, keys: fx.hs.pub, maxSize: len(small)},
	}
}

// padJSON inserts spaces before the closing brace of a JSON object until
// its length leaves a remainder of 1 when divided by 3, so that its
// base64url form needs two padding characters and has four trailing bits.
func padJSON(s string) string {
	for len(s)%3 != 1 {
		s = s[:len(s)-1] + " }"
	}
	return s
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// b64Tampers are non-canonical spellings of a base64url segment.
var b64Tampers = []struct {
	name string
	f    func(t testing.TB, seg string) string
}{
	{"padding", func(t testing.TB, seg string) string {
		n := (4 - len(seg)%4) % 4
		if n == 0 {
			t.Fatalf("padding: segment of %d characters needs none", len(seg))
		}
		return seg + strings.Repeat("=", n)
	}},
	{"'+' for '-'", func(t testing.TB, seg string) string { return mustChange(t, seg, strings.ReplaceAll(seg, "-", "+")) }},
	{"'/' for '_'", func(t testing.TB, seg string) string { return mustChange(t, seg, strings.ReplaceAll(seg, "_", "/")) }},
	{"standard alphabet with padding", func(t testing.TB, seg string) string {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatal(err)
		}
		return mustChange(t, seg, base64.StdEncoding.EncodeToString(b))
	}},
	{"space", func(t testing.TB, seg string) string { return seg[:4] + " " + seg[4:] }},
	{"tab", func(t testing.TB, seg string) string { return seg[:4] + "\t" + seg[4:] }},
	{"CR", func(t testing.TB, seg string) string { return seg[:4] + "\r" + seg[4:] }},
	{"LF", func(t testing.TB, seg string) string { return seg[:4] + "\n" + seg[4:] }},
	{"CRLF", func(t testing.TB, seg string) string { return seg[:4] + "\r\n" + seg[4:] }},
	{"trailing LF", func(t testing.TB, seg string) string { return seg + "\n" }},
	{"non-zero trailing bits", func(t testing.TB, seg string) string {
		var mask int
		switch len(seg) % 4 {
		case 2:
			mask = 0xf
		case 3:
			mask = 0x3
		default:
			t.Fatalf("trailing bits: segment of %d characters has none", len(seg))
		}
		last := strings.IndexByte(b64Alphabet, seg[len(seg)-1])
		out := seg[:len(seg)-1] + string(b64Alphabet[last|mask])
		// A lenient decoder sees the very same bytes: only the spelling is
		// wrong.
		want, _ := base64.RawURLEncoding.DecodeString(seg)
		got, err := base64.RawURLEncoding.DecodeString(out)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("trailing bits: %q decodes to %x (%v), want %x", out, got, err, want)
		}
		return mustChange(t, seg, out)
	}},
}

func mustChange(t testing.TB, before, after string) string {
	t.Helper()
	if before == after {
		t.Fatalf("tamper left %q unchanged", before)
	}
	return after
}

// Canonical base64url only: no padding, no '+' or '/', no whitespace, zero
// trailing bits. The issue reports that golang-jwt v5 accepts
// non-canonical base64url and that jwx accepts padded base64url.
func base64Attacks(t testing.TB, fx *strictFixture) []attackCase {
	// "???>>>???>>>" encodes to both '-' and '_' at any alignment.
	header := padJSON(`{"alg":"HS256","x":"???>>>???>>>"}`)
	var payload, valid string
	for n := 0; ; n++ {
		payload = padJSON(`{"sub":"alice","x":"???>>>???>>>","n":` + strconv.Itoa(n) + `}`)
		valid = fx.hs.token(t, header, payload)
		if _, _, s := split3(t, valid); strings.Contains(s, "-") && strings.Contains(s, "_") {
			break
		}
		if n > 1000 {
			t.Fatal("no signature with both '-' and '_'")
		}
	}
	h, p, s := split3(t, valid)
	cases := []attackCase{{name: "control: canonical", token: valid, keys: fx.hs.pub, shape: true}}
	for _, tm := range b64Tampers {
		// Header and payload: the tampered spelling is what gets signed,
		// so the signature is valid for exactly the bytes sent.
		cases = append(cases,
			attackCase{name: "header " + tm.name, token: fx.hs.signed(t, tm.f(t, h)+"."+p), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
			attackCase{name: "payload " + tm.name, token: fx.hs.signed(t, h+"."+tm.f(t, p)), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
			attackCase{name: "signature " + tm.name, token: h + "." + p + "." + tm.f(t, s), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		)
	}
	// The same for a signature whose length leaves four trailing bits
	// (ES256: 64 bytes).
	esValid := fx.es.token(t, `{"alg":"ES256"}`, strictPayload)
	eh, ep, es := split3(t, esValid)
	return append(cases,
		attackCase{name: "control: canonical ES256", token: esValid, keys: fx.es.pub, shape: true},
		attackCase{name: "ES256 signature padding", token: eh + "." + ep + "." + es + "==", keys: fx.es.pub, shape: true, want: jose.ErrMalformed},
		attackCase{name: "ES256 signature non-zero trailing bits", token: eh + "." + ep + "." + b64Tampers[len(b64Tampers)-1].f(t, es), keys: fx.es.pub, shape: true, want: jose.ErrMalformed},
		attackCase{name: "leading space before the token", token: " " + valid, keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		attackCase{name: "trailing CRLF after the token", token: valid + "\r\n", keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		attackCase{name: "Bearer prefix left on", token: "Bearer " + valid, keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
	)
}

// Valid UTF-8 in the header (I-JSON, RFC 7493).
func utf8Attacks(t testing.TB, fx *strictFixture) []attackCase {
	cases := []struct {
		name, header string
		want         error
	}{
		{"control: multi-byte kid", `{"alg":"HS256","kid":"ключ-🔑"}`, nil},
		{"control: escaped surrogate pair", `{"alg":"HS256","kid":"\ud83d\udd11"}`, nil},
		{"kid with byte 0xFF", `{"alg":"HS256","kid":"` + "\xff" + `"}`, jose.ErrMalformed},
		{"kid with an overlong '/' (C0 AF)", `{"alg":"HS256","kid":"` + "\xc0\xaf" + `"}`, jose.ErrMalformed},
		{"kid with an encoded surrogate (ED A0 80)", `{"alg":"HS256","kid":"` + "\xed\xa0\x80" + `"}`, jose.ErrMalformed},
		{"typ with a truncated sequence", `{"alg":"HS256","typ":"JWT` + "\xe2\x82" + `"}`, jose.ErrMalformed},
		{"member name with byte 0xFE", `{"alg":"HS256","` + "\xfe" + `":1}`, jose.ErrMalformed},
		{"invalid UTF-8 in a nested value", `{"alg":"HS256","x":["` + "\xff" + `"]}`, jose.ErrMalformed},
		{"lone high surrogate escape", `{"alg":"HS256","kid":"\ud800"}`, jose.ErrMalformed},
		{"lone low surrogate escape", `{"alg":"HS256","kid":"\udc00x"}`, jose.ErrMalformed},
		{"reversed surrogate pair", `{"alg":"HS256","kid":"\udc00\ud800"}`, jose.ErrMalformed},
		{"high surrogate then a letter escape", `{"alg":"HS256","kid":"\ud800\u0041"}`, jose.ErrMalformed},
	}
	var out []attackCase
	for _, c := range cases {
		out = append(out, attackCase{name: c.name, token: fx.hs.token(t, c.header, strictPayload), keys: fx.hs.pub, shape: true, want: c.want})
	}
	return out
}

// nestedHeader returns an HS256 header whose total nesting, counting the
// header object itself, is levels.
func nestedHeader(levels int) string {
	return `{"alg":"HS256","x":` + strings.Repeat("[", levels-1) + strings.Repeat("]", levels-1) + `}`
}

// The header is one strict JSON object.
func headerJSONAttacks(t testing.TB, fx *strictFixture) []attackCase {
	cases := []struct {
		name, header string
		want         error
	}{
		{"control: whitespace around the object", " {\"alg\" : \"HS256\"}\n", nil},
		{"control: nesting of exactly MaxJSONDepth", nestedHeader(jose.MaxJSONDepth), nil},
		{"nesting deeper than MaxJSONDepth", nestedHeader(jose.MaxJSONDepth + 1), jose.ErrMalformed},
		{"nesting far deeper than MaxJSONDepth", nestedHeader(2000), jose.ErrMalformed},
		{"array", `["alg","HS256"]`, jose.ErrMalformed},
		{"empty array", `[]`, jose.ErrMalformed},
		{"string", `"HS256"`, jose.ErrMalformed},
		{"number", `256`, jose.ErrMalformed},
		{"null", `null`, jose.ErrMalformed},
		{"true", `true`, jose.ErrMalformed},
		{"empty object", `{}`, jose.ErrMalformed},
		{"trailing garbage", `{"alg":"HS256"}x`, jose.ErrMalformed},
		{"two objects", `{"alg":"HS256"}{"alg":"HS256"}`, jose.ErrMalformed},
		{"NUL after the object", `{"alg":"HS256"}` + "\x00", jose.ErrMalformed},
		{"trailing comma", `{"alg":"HS256",}`, jose.ErrMalformed},
		{"single quotes", `{'alg':'HS256'}`, jose.ErrMalformed},
		{"unquoted name", `{alg:"HS256"}`, jose.ErrMalformed},
		{"comment", `{"alg":"HS256"/*x*/}`, jose.ErrMalformed},
		{"unterminated", `{"alg":"HS256"`, jose.ErrMalformed},
		{"byte order mark", "\ufeff" + `{"alg":"HS256"}`, jose.ErrMalformed},
		{"number with a leading zero", `{"alg":"HS256","x":01}`, jose.ErrMalformed},
		{"NaN", `{"alg":"HS256","x":NaN}`, jose.ErrMalformed},
		{"raw newline in a string", "{\"alg\":\"HS256\",\"kid\":\"a\nb\"}", jose.ErrMalformed},
		{"invalid escape", `{"alg":"HS256","kid":"\x41"}`, jose.ErrMalformed},
	}
	var out []attackCase
	for _, c := range cases {
		out = append(out, attackCase{name: c.name, token: fx.hs.token(t, c.header, strictPayload), keys: fx.hs.pub, shape: true, want: c.want})
	}
	return out
}

// Duplicate member names are rejected, after unescaping and at every
// depth, so no two parsers can disagree on which value counts.
func duplicateAttacks(t testing.TB, fx *strictFixture) []attackCase {
	cases := []struct {
		name, header string
		want         error
	}{
		{"control: the same name in sibling objects", `{"alg":"HS256","x":{"a":1},"y":{"a":2}}`, nil},
		{"alg twice", `{"alg":"HS256","alg":"HS256"}`, jose.ErrDuplicateMember},
		{"alg none, then HS256", `{"alg":"none","alg":"HS256"}`, jose.ErrDuplicateMember},
		{"alg HS256, then none", `{"alg":"HS256","alg":"none"}`, jose.ErrDuplicateMember},
		{"kid twice", `{"alg":"HS256","kid":"a","kid":"b"}`, jose.ErrDuplicateMember},
		{"alg through an escape", `{"alg":"HS256","\u0061lg":"HS256"}`, jose.ErrDuplicateMember},
		{"kid through an escape", `{"alg":"HS256","kid":"a","k\u0069d":"b"}`, jose.ErrDuplicateMember},
		{"names equal after unescaping '\\/'", `{"alg":"HS256","a/b":1,"a\/b":2}`, jose.ErrDuplicateMember},
		{"unregistered member twice", `{"alg":"HS256","foo":1,"foo":2}`, jose.ErrDuplicateMember},
		{"duplicate in a nested object", `{"alg":"HS256","x":{"a":1,"a":2}}`, jose.ErrDuplicateMember},
		{"duplicate in an object in an array", `{"alg":"HS256","x":[{"a":1,"a":2}]}`, jose.ErrDuplicateMember},
		{"duplicate through an escape in a nested object", `{"alg":"HS256","x":{"a":1,"\u0061":2}}`, jose.ErrDuplicateMember},
	}
	var out []attackCase
	for _, c := range cases {
		out = append(out, attackCase{name: c.name, token: fx.hs.token(t, c.header, strictPayload), keys: fx.hs.pub, shape: true, want: c.want})
	}
	return out
}

// Case variants of header names are rejected: a parser that matches names
// case-insensitively (encoding/json does) would read a different header.
func caseVariantAttacks(t testing.TB, fx *strictFixture) []attackCase {
	cases := []struct {
		name, header string
		want         error
	}{
		{"control: unregistered name in upper case", `{"alg":"HS256","Foo":1}`, nil},
		{"ALG alone", `{"ALG":"HS256"}`, jose.ErrMalformed},
		{"Alg before alg", `{"Alg":"none","alg":"HS256"}`, jose.ErrMalformed},
		{"ALG after alg", `{"alg":"HS256","ALG":"none"}`, jose.ErrMalformed},
		{"ALG through an escape", `{"alg":"HS256","\u0041LG":"none"}`, jose.ErrMalformed},
		{"Kid", `{"alg":"HS256","Kid":"other"}`, jose.ErrMalformed},
		{"KID beside kid", `{"alg":"HS256","kid":"k","KID":"other"}`, jose.ErrMalformed},
		{"TYP", `{"alg":"HS256","TYP":"at+jwt"}`, jose.ErrMalformed},
		{"Cty", `{"alg":"HS256","Cty":"JWT"}`, jose.ErrMalformed},
		{"Crit", `{"alg":"HS256","Crit":["exp"],"exp":1}`, jose.ErrMalformed},
		{"B64", `{"alg":"HS256","B64":false}`, jose.ErrMalformed},
		{"JWK", `{"alg":"HS256","JWK":{}}`, jose.ErrMalformed},
		{"X5c", `{"alg":"HS256","X5c":[]}`, jose.ErrMalformed},
		{"x5t#s256", `{"alg":"HS256","x5t#s256":"x"}`, jose.ErrMalformed},
		{"Foo beside foo", `{"alg":"HS256","foo":1,"Foo":2}`, jose.ErrMalformed},
		// encoding/json folds Unicode too: U+212A KELVIN SIGN matches "k".
		{"kid with a Kelvin sign", `{"alg":"HS256","\u212aid":"other"}`, jose.ErrMalformed},
		{"kid with a raw Kelvin sign beside kid", `{"alg":"HS256","kid":"k","Kid":"other"}`, jose.ErrMalformed},
	}
	var out []attackCase
	for _, c := range cases {
		out = append(out, attackCase{name: c.name, token: fx.hs.token(t, c.header, strictPayload), keys: fx.hs.pub, shape: true, want: c.want})
	}
	return out
}

// "crit" is rejected because no extension is understood, and so is "b64"
// (RFC 7515 section 4.1.11, RFC 7797).
func criticalAttacks(t testing.TB, fx *strictFixture) []attackCase {
	cases := []struct{ name, header string }{
		{"crit naming a header (RFC 7515 4.1.11 example)", `{"alg":"HS256","crit":["exp"],"exp":1363284000}`},
		{"crit empty", `{"alg":"HS256","crit":[]}`},
		{"crit not an array", `{"alg":"HS256","crit":"exp"}`},
		{"crit through an escape", `{"alg":"HS256","c\u0072it":["x"],"x":1}`},
		{"b64 false with crit (RFC 7797)", `{"alg":"HS256","b64":false,"crit":["b64"]}`},
		{"b64 true", `{"alg":"HS256","b64":true}`},
		{"b64 false without crit", `{"alg":"HS256","b64":false}`},
	}
	var out []attackCase
	for _, c := range cases {
		out = append(out, attackCase{name: c.name, token: fx.hs.token(t, c.header, strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrCritical})
	}
	// RFC 7797 section 4.2: the payload travels unencoded.
	out = append(out, attackCase{
		name:  "b64 false with an unencoded payload",
		token: fx.hs.signed(t, b64url([]byte(`{"alg":"HS256","b64":false,"crit":["b64"]}`))+".$.02"),
		keys:  fx.hs.pub, shape: true, want: jose.ErrCritical,
	})
	return out
}

// selfSignedCert returns a DER certificate for the attacker's key.
func selfSignedCert(t testing.TB, priv crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "auth.example.com"},
		NotBefore:    time.Unix(1_700_000_000, 0),
		NotAfter:     time.Unix(2_000_000_000, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// "jwk", "jku", "x5u" and "x5c" are never used to find a key: the attacker
// signs with their own key and points at it from the header.
func embeddedKeyAttacks(t testing.TB, fx *strictFixture) []attackCase {
	atkJWK, err := json.Marshal(fx.attacker.pub)
	if err != nil {
		t.Fatal(err)
	}
	x5c := base64.StdEncoding.EncodeToString(selfSignedCert(t, fx.attacker.priv))
	trusted := fx.set(t, fx.es.pub, fx.rs.pub, fx.ed.pub)
	embeds := []struct{ name, members string }{
		{"jwk", `"jwk":` + string(atkJWK)},
		{"jku", `"jku":"https://attacker.example/jwks.json"`},
		{"x5u", `"x5u":"https://attacker.example/cert.pem"`},
		{"x5c", `"x5c":["` + x5c + `"]`},
		{"jwk, jku, x5u and x5c", `"jwk":` + string(atkJWK) + `,"jku":"https://attacker.example/jwks.json","x5u":"https://attacker.example/cert.pem","x5c":["` + x5c + `"]`},
	}
	kids := []struct {
		name, member string
		want         error
	}{
		{"no kid", ``, jose.ErrSignatureInvalid},
		{"the trusted key's kid", `"kid":"ec-1",`, jose.ErrSignatureInvalid},
		{"the attacker's kid", `"kid":"attacker",`, jose.ErrKeyNotFound},
	}
	var out []attackCase
	for _, e := range embeds {
		for _, k := range kids {
			tok := fx.attacker.token(t, `{"alg":"ES256",`+k.member+e.members+`}`, strictPayload)
			name := e.name + ", " + k.name
			out = append(out,
				attackCase{name: name + ", one trusted key", token: tok, keys: fx.es.pub, want: k.want},
				attackCase{name: name + ", trusted key set", token: tok, keys: trusted, want: k.want},
			)
			if k.want == jose.ErrKeyNotFound || k.member == "" {
				// The token itself is sound: it verifies under the key it
				// names, so the key choice alone rejects it above.
				out = append(out, attackCase{name: "control: " + name + ", the attacker's own key", token: tok, keys: fx.attacker.pub})
			}
		}
	}
	// Registered members that only point at keys are ignored, not refused:
	// the trusted key's own token carrying them verifies.
	ownJWK, err := json.Marshal(fx.es.pub)
	if err != nil {
		t.Fatal(err)
	}
	own := fx.es.token(t, `{"alg":"ES256","kid":"ec-1","jwk":`+string(ownJWK)+`,"x5t":"`+b64url(make([]byte, 20))+`","x5t#S256":"`+b64url(make([]byte, 32))+`","jku":"https://auth.example.com/jwks.json"}`, strictPayload)
	out = append(out, attackCase{name: "control: trusted key's token with jwk, x5t, x5t#S256 and jku", token: own, keys: trusted, shape: true})
	// The same with a symmetric key in "jwk".
	atkSecret := "attacker-chosen-hmac-secret-32by"
	atk := strictKey{alg: jose.HS256, secret: []byte(atkSecret)}
	tok := atk.token(t, `{"alg":"HS256","jwk":{"kty":"oct","k":"`+b64url([]byte(atkSecret))+`"}}`, strictPayload)
	return append(out, attackCase{name: "jwk with an oct key, HS256", token: tok, keys: fx.hs.pub, want: jose.ErrSignatureInvalid})
}

// "kid" is an opaque string of bounded length; an unknown kid is
// ErrKeyNotFound, never a fallback to another key.
func kidAttacks(t testing.TB, fx *strictFixture) []attackCase {
	k1 := strictHMACKey(t, jose.HS256, strictSecret, "k1")
	k2 := strictHMACKey(t, jose.HS256, strictSecret2, "k2")
	maxKid := strings.Repeat("k", jose.MaxKeyIDLength)
	kMax := strictHMACKey(t, jose.HS256, strictSecret, maxKid)
	set := fx.set(t, k1.pub, k2.pub, fx.es.pub)
	// A set whose only HS256 key has no kid.
	kidless := fx.set(t, fx.hs.pub, fx.es.pub)
	hdr := func(kid string) string { return `{"alg":"HS256","kid":` + kid + `}` }
	return []attackCase{
		{name: "control: kid k1", token: k1.token(t, hdr(`"k1"`), strictPayload), keys: set},
		{name: "control: kid of exactly MaxKeyIDLength", token: kMax.token(t, hdr(jsonString(maxKid)), strictPayload), keys: kMax.pub},
		{name: "control: no kid, the set's only ES256 key", token: fx.es.token(t, `{"alg":"ES256"}`, strictPayload), keys: set},
		{name: "kid one byte over MaxKeyIDLength", token: fx.hs.token(t, hdr(jsonString(maxKid+"k")), strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "kid of 4000 bytes", token: fx.hs.token(t, hdr(jsonString(strings.Repeat("k", 4000))), `{}`), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "kid a number", token: fx.hs.token(t, hdr(`1`), strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "kid null", token: fx.hs.token(t, hdr(`null`), strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "kid true", token: fx.hs.token(t, hdr(`true`), strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "kid an array", token: fx.hs.token(t, hdr(`["k1"]`), strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		{name: "kid an object", token: fx.hs.token(t, hdr(`{"kid":"k1"}`), strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		// Signed with k1's secret: a fallback to any HS256 key would
		// accept it.
		{name: "unknown kid, signed with a key in the set", token: k1.token(t, hdr(`"k3"`), strictPayload), keys: set, want: jose.ErrKeyNotFound},
		{name: "unknown kid, set with a kid-less key of the same alg", token: fx.hs.token(t, hdr(`"k3"`), strictPayload), keys: kidless, want: jose.ErrKeyNotFound},
		{name: "kid differing in case", token: k1.token(t, hdr(`"K1"`), strictPayload), keys: set, want: jose.ErrKeyNotFound},
		{name: "kid with a trailing space", token: k1.token(t, hdr(`"k1 "`), strictPayload), keys: set, want: jose.ErrKeyNotFound},
		{name: "kid with a trailing NUL", token: k1.token(t, hdr(`"k1\u0000"`), strictPayload), keys: set, want: jose.ErrKeyNotFound},
		{name: "no kid, two HS256 keys in the set", token: k1.token(t, `{"alg":"HS256"}`, strictPayload), keys: set, want: jose.ErrKeyNotFound},
		{name: "empty kid, two HS256 keys in the set", token: k1.token(t, hdr(`""`), strictPayload), keys: set, want: jose.ErrKeyNotFound},
		{name: "kid of the ES256 key on an HS256 token", token: k1.token(t, hdr(`"ec-1"`), strictPayload), keys: set, want: jose.ErrAlgorithmMismatch},
		{name: "single key k1, token kid k2", token: k1.token(t, hdr(`"k2"`), strictPayload), keys: k1.pub, want: jose.ErrKeyNotFound},
	}
}

// There is no "none", in any spelling; every case carries a valid HS256
// signature so that the alg alone is wrong.
func algNoneAttacks(t testing.TB, fx *strictFixture) []attackCase {
	var out []attackCase
	for _, alg := range []string{"none", "None", "NONE", "nOnE", "", " HS256", "HS256 ", "hs256", "HS-256", "HS256\x00", "ES256K", "HS1", "RS1", "dir", "A128KW"} {
		out = append(out, attackCase{
			name:  "alg " + strconv.Quote(alg),
			token: fx.hs.token(t, `{"alg":`+jsonString(alg)+`}`, strictPayload),
			keys:  fx.hs.pub, shape: true, want: jose.ErrUnsupportedAlgorithm,
		})
	}
	none := b64url([]byte(`{"alg":"none"}`)) + "." + b64url([]byte(strictPayload))
	return append(out,
		attackCase{name: "control: alg spelled with escapes", token: fx.hs.token(t, `{"alg":"HS\u0032\u0035\u0036"}`, strictPayload), keys: fx.hs.pub, shape: true},
		attackCase{name: "unsecured JWS: alg none, empty signature", token: none + ".", keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		attackCase{name: "alg none, signature of the wrong length", token: none + ".AAAA", keys: fx.hs.pub, shape: true, want: jose.ErrUnsupportedAlgorithm},
		attackCase{name: "no alg", token: fx.hs.token(t, `{"typ":"JWT"}`, strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		attackCase{name: "alg null", token: fx.hs.token(t, `{"alg":null}`, strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		attackCase{name: "alg an array", token: fx.hs.token(t, `{"alg":["HS256"]}`, strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
		attackCase{name: "alg a number", token: fx.hs.token(t, `{"alg":256}`, strictPayload), keys: fx.hs.pub, shape: true, want: jose.ErrMalformed},
	)
}

// Algorithm confusion: an HMAC token keyed with the bytes of a public key,
// and tokens whose alg differs from the one the key is bound to.
func confusionAttacks(t testing.TB, fx *strictFixture) []attackCase {
	rsaPub := fx.rs.pub.PublicKey().(*rsa.PublicKey)
	ecPub := fx.es.pub.PublicKey().(*ecdsa.PublicKey)
	edPub := fx.ed.pub.PublicKey().(ed25519.PublicKey)
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaPKIX := must(x509.MarshalPKIXPublicKey(rsaPub))
	rsaPKCS1 := x509.MarshalPKCS1PublicKey(rsaPub)
	ecPKIX := must(x509.MarshalPKIXPublicKey(ecPub))
	secrets := []struct {
		name   string
		secret []byte
		victim strictKey
	}{
		{"RSA PKIX PEM", must(fx.rs.pub.MarshalPEM()), fx.rs},
		{"RSA PKIX PEM without the final newline", bytes.TrimSuffix(must(fx.rs.pub.MarshalPEM()), []byte("\n")), fx.rs},
		{"RSA PKCS1 PEM", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: rsaPKCS1}), fx.rs},
		{"RSA PKIX DER", rsaPKIX, fx.rs},
		{"RSA PKCS1 DER", rsaPKCS1, fx.rs},
		{"RSA public JWK", must(json.Marshal(fx.rs.pub)), fx.rs},
		{"RSA modulus", rsaPub.N.Bytes(), fx.rs},
		{"EC PKIX PEM", must(fx.es.pub.MarshalPEM()), fx.es},
		{"EC PKIX DER", ecPKIX, fx.es},
		{"EC uncompressed point", must(ecPub.Bytes()), fx.es},
		{"Ed25519 PKIX PEM", must(fx.ed.pub.MarshalPEM()), fx.ed},
		{"Ed25519 raw public key", edPub, fx.ed},
	}
	var out []attackCase
	for _, s := range secrets {
		for _, alg := range []jose.Algorithm{jose.HS256, jose.HS512} {
			forger := strictKey{alg: alg, secret: s.secret}
			kid := s.victim.pub.KeyID()
			noKid := forger.token(t, `{"alg":"`+string(alg)+`"}`, strictPayload)
			withKid := forger.token(t, `{"alg":"`+string(alg)+`","kid":"`+kid+`"}`, strictPayload)
			name := string(alg) + " keyed with the " + s.name
			out = append(out,
				attackCase{name: name + ", verified with that key", token: noKid, keys: s.victim.pub, want: jose.ErrAlgorithmMismatch},
				attackCase{name: name + ", its kid, key set", token: withKid, keys: fx.set(t, s.victim.pub), want: jose.ErrAlgorithmMismatch},
				attackCase{name: name + ", allowed algorithms exclude it", token: noKid, keys: s.victim.pub, algs: []jose.Algorithm{s.victim.alg}, want: jose.ErrAlgorithmMismatch},
				// Without a kid the set has no key for the alg at all.
				attackCase{name: name + ", no kid, key set", token: noKid, keys: fx.set(t, s.victim.pub), want: jose.ErrKeyNotFound},
			)
		}
	}
	rs384 := fx.rs.rebind(t, jose.RS384)
	hs384 := strictKey{alg: jose.HS384, secret: []byte(strictSecret)}
	rsTok := fx.rs.token(t, `{"alg":"RS256"}`, strictPayload)
	return append(out,
		attackCase{name: "control: RS256 token, RS256 key", token: rsTok, keys: fx.rs.pub},
		attackCase{name: "RS256 token, the same key bound to RS384", token: rsTok, keys: rs384.pub, want: jose.ErrAlgorithmMismatch},
		attackCase{name: "RS256 token, the same key bound to PS256", token: rsTok, keys: fx.ps.pub, want: jose.ErrAlgorithmMismatch},
		attackCase{name: "PS256 token, the same key bound to RS256", token: fx.ps.token(t, `{"alg":"PS256"}`, strictPayload), keys: fx.rs.pub, want: jose.ErrAlgorithmMismatch},
		attackCase{name: "HS384 token, the same secret bound to HS256", token: hs384.token(t, `{"alg":"HS384"}`, strictPayload), keys: fx.hs.pub, want: jose.ErrAlgorithmMismatch},
		attackCase{name: "ES256 token, EdDSA key", token: fx.es.token(t, `{"alg":"ES256"}`, strictPayload), keys: fx.ed.pub, want: jose.ErrAlgorithmMismatch},
		attackCase{name: "EdDSA token, ES256 key", token: fx.ed.token(t, `{"alg":"EdDSA"}`, strictPayload), keys: fx.es.pub, want: jose.ErrAlgorithmMismatch},
		attackCase{name: "control: HS256 token, allowed algorithms HS256", token: fx.hs.token(t, `{"alg":"HS256"}`, strictPayload), keys: fx.hs.pub, algs: []jose.Algorithm{jose.HS256}},
		attackCase{name: "HS256 token, allowed algorithms HS512 only", token: fx.hs.token(t, `{"alg":"HS256"}`, strictPayload), keys: fx.hs.pub, algs: []jose.Algorithm{jose.HS512}, want: jose.ErrAlgorithmMismatch},
	)
}

// The signature length must be exact for the algorithm.
func signatureLengthAttacks(t testing.TB, fx *strictFixture) []attackCase {
	var out []attackCase
	for _, k := range []strictKey{fx.hs, fx.hs384, fx.hs512, fx.rs, fx.ps, fx.es, fx.es384, fx.es512, fx.ed} {
		input := b64url([]byte(`{"alg":"`+string(k.alg)+`"}`)) + "." + b64url([]byte(strictPayload))
		sig := k.sign(t, input)
		name := string(k.alg) + " signature "
		variants := []struct {
			name string
			sig  []byte
			want error
		}{
			{"control: " + name + "as made", sig, nil},
			{name + "one byte short", sig[:len(sig)-1], jose.ErrSignatureInvalid},
			{name + "without its first byte", sig[1:], jose.ErrSignatureInvalid},
			{name + "one byte long (zero appended)", append(bytes.Clone(sig), 0), jose.ErrSignatureInvalid},
			{name + "one byte long (zero prepended)", append([]byte{0}, sig...), jose.ErrSignatureInvalid},
			{name + "twice", append(bytes.Clone(sig), sig...), jose.ErrSignatureInvalid},
			{name + "a single byte", sig[:1], jose.ErrSignatureInvalid},
		}
		if k.secret != nil {
			variants = append(variants, struct {
				name string
				sig  []byte
				want error
			}{name + "truncated to half its length", sig[:len(sig)/2], jose.ErrSignatureInvalid})
		}
		if k.alg[:2] == "ES" {
			n := len(sig) / 2
			der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
			if err != nil {
				t.Fatal(err)
			}
			variants = append(variants, struct {
				name string
				sig  []byte
				want error
			}{name + "in ASN.1 DER instead of r||s", der, jose.ErrSignatureInvalid})
		}
		for _, v := range variants {
			out = append(out, attackCase{name: v.name, token: input + "." + b64url(v.sig), keys: k.pub, want: v.want})
		}
	}
	return out
}

// ECDSA r and s must lie in [1, n-1]; r or s of 0 or n would satisfy a
// verifier that reduces them modulo n or skips the range check
// (CVE-2022-21449 was r = s = 0).
func ecdsaRangeAttacks(t testing.TB, fx *strictFixture) []attackCase {
	var out []attackCase
	for _, k := range []strictKey{fx.es, fx.es384, fx.es512} {
		input := b64url([]byte(`{"alg":"`+string(k.alg)+`"}`)) + "." + b64url([]byte(strictPayload))
		sig := k.sign(t, input)
		size := len(sig) / 2
		curve := k.priv.(*ecdsa.PrivateKey).Curve
		n := curve.Params().N.FillBytes(make([]byte, size))
		zero := make([]byte, size)
		r, s := sig[:size], sig[size:]
		cat := func(a, b []byte) []byte { return append(bytes.Clone(a), b...) }
		for _, v := range []struct {
			name string
			sig  []byte
			want error
		}{
			{"control: as made", sig, nil},
			{"r = 0", cat(zero, s), jose.ErrSignatureInvalid},
			{"s = 0", cat(r, zero), jose.ErrSignatureInvalid},
			{"r = s = 0", cat(zero, zero), jose.ErrSignatureInvalid},
			{"r = n", cat(n, s), jose.ErrSignatureInvalid},
			{"s = n", cat(r, n), jose.ErrSignatureInvalid},
			{"r = s = n", cat(n, n), jose.ErrSignatureInvalid},
			{"r = 0, s = n", cat(zero, n), jose.ErrSignatureInvalid},
		} {
			out = append(out, attackCase{name: string(k.alg) + " " + v.name, token: input + "." + b64url(v.sig), keys: k.pub, want: v.want})
		}
	}
	return out
}

func TestStrictSegments(t *testing.T)       { runAttacks(t, segmentAttacks(t, newStrictFixture(t))) }
func TestStrictSizeCap(t *testing.T)        { runAttacks(t, sizeAttacks(t, newStrictFixture(t))) }
func TestStrictBase64(t *testing.T)         { runAttacks(t, base64Attacks(t, newStrictFixture(t))) }
func TestStrictUTF8(t *testing.T)           { runAttacks(t, utf8Attacks(t, newStrictFixture(t))) }
func TestStrictHeaderJSON(t *testing.T)     { runAttacks(t, headerJSONAttacks(t, newStrictFixture(t))) }
func TestStrictDuplicateNames(t *testing.T) { runAttacks(t, duplicateAttacks(t, newStrictFixture(t))) }
func TestStrictCaseVariants(t *testing.T)   { runAttacks(t, caseVariantAttacks(t, newStrictFixture(t))) }
func TestStrictCritical(t *testing.T)       { runAttacks(t, criticalAttacks(t, newStrictFixture(t))) }
func TestStrictEmbeddedKeys(t *testing.T)   { runAttacks(t, embeddedKeyAttacks(t, newStrictFixture(t))) }
func TestStrictKeyID(t *testing.T)          { runAttacks(t, kidAttacks(t, newStrictFixture(t))) }
func TestStrictAlgNone(t *testing.T)        { runAttacks(t, algNoneAttacks(t, newStrictFixture(t))) }
func TestStrictAlgConfusion(t *testing.T)   { runAttacks(t, confusionAttacks(t, newStrictFixture(t))) }
func TestStrictSignatureLength(t *testing.T) {
	runAttacks(t, signatureLengthAttacks(t, newStrictFixture(t)))
}
func TestStrictECDSARange(t *testing.T) { runAttacks(t, ecdsaRangeAttacks(t, newStrictFixture(t))) }

// jwkWith returns the JWK base with the members in set replaced or added
// and the members in del removed.
func jwkWith(t testing.TB, base string, set map[string]any, del ...string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		m[k] = v
	}
	for _, k := range del {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// publicJWK returns the public members of a private JWK literal.
func publicJWK(t testing.TB, private string) string {
	return jwkWith(t, private, nil, "d", "p", "q", "dp", "dq", "qi")
}

// Key checks on import and generation.
func TestStrictKeyChecks(t *testing.T) {
	rsaPub := publicJWK(t, strictRSAJWK)
	ecPub := publicJWK(t, strictEC256JWK)
	ec384Pub := publicJWK(t, strictEC384JWK)
	edPub := publicJWK(t, strictEd25519JWK)
	fx := newStrictFixture(t)
	rsaKey := fx.rs.pub.PublicKey().(*rsa.PublicKey)

	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024JWK := `{"kty":"RSA","n":"` + b64url(rsa1024.N.Bytes()) + `","e":"AQAB"}`

	// A P-256 point off the curve: y with its last bit flipped.
	var ec map[string]string
	if err := json.Unmarshal([]byte(ecPub), &ec); err != nil {
		t.Fatal(err)
	}
	y, _ := base64.RawURLEncoding.DecodeString(ec["y"])
	y[len(y)-1] ^= 1
	offCurveY := b64url(y)
	zero32 := b64url(make([]byte, 32))

	parse := func(jwk string) func() (*jose.Key, error) {
		return func() (*jose.Key, error) { return jose.ParseJWK([]byte(jwk)) }
	}
	oct := func(alg string, n int) string {
		return `{"kty":"oct","alg":"` + alg + `","k":"` + b64url(bytes.Repeat([]byte{7}, n)) + `"}`
	}
	cases := []struct {
		name string
		make func() (*jose.Key, error)
		want error // nil: the key is accepted
	}{
		{"control: NewHMACKey HS256, 32 bytes", func() (*jose.Key, error) { return jose.NewHMACKey(jose.HS256, make([]byte, 32)) }, nil},
		{"NewHMACKey HS256, 31 bytes", func() (*jose.Key, error) { return jose.NewHMACKey(jose.HS256, make([]byte, 31)) }, jose.ErrInvalidKey},
		{"NewHMACKey HS384, 47 bytes", func() (*jose.Key, error) { return jose.NewHMACKey(jose.HS384, make([]byte, 47)) }, jose.ErrInvalidKey},
		{"NewHMACKey HS512, 63 bytes", func() (*jose.Key, error) { return jose.NewHMACKey(jose.HS512, make([]byte, 63)) }, jose.ErrInvalidKey},
		{"NewHMACKey HS256, empty", func() (*jose.Key, error) { return jose.NewHMACKey(jose.HS256, nil) }, jose.ErrInvalidKey},
		{"NewHMACKey with RS256", func() (*jose.Key, error) { return jose.NewHMACKey(jose.RS256, make([]byte, 64)) }, jose.ErrInvalidKey},
		{"NewKey HS256, 16-byte secret", func() (*jose.Key, error) { return jose.NewKey(jose.HS256, make([]byte, 16)) }, jose.ErrInvalidKey},
		{"control: oct JWK HS256, 32 bytes", parse(oct("HS256", 32)), nil},
		{"oct JWK HS256, 31 bytes", parse(oct("HS256", 31)), jose.ErrInvalidKey},
		{"oct JWK HS512, 32 bytes", parse(oct("HS512", 32)), jose.ErrInvalidKey},
		{"oct JWK without alg", parse(`{"kty":"oct","k":"` + b64url(make([]byte, 64)) + `"}`), jose.ErrInvalidKey},

		{"control: RSA 2048-bit JWK", parse(rsaPub), nil},
		{"RSA 1024-bit JWK", parse(rsa1024JWK), jose.ErrInvalidKey},
		{"RSA 1024-bit private key", func() (*jose.Key, error) { return jose.NewKey(jose.RS256, rsa1024) }, jose.ErrInvalidKey},
		{"RSA 1024-bit key, PS256", func() (*jose.Key, error) { return jose.NewKey(jose.PS256, &rsa1024.PublicKey) }, jose.ErrInvalidKey},
		{"RSA exponent 1 (JWK)", parse(jwkWith(t, rsaPub, map[string]any{"e": "AQ"})), jose.ErrInvalidKey},
		{"RSA exponent 2 (JWK)", parse(jwkWith(t, rsaPub, map[string]any{"e": "Ag"})), jose.ErrInvalidKey},
		{"RSA exponent 65536 (JWK)", parse(jwkWith(t, rsaPub, map[string]any{"e": "AQAA"})), jose.ErrInvalidKey},
		{"RSA exponent 2^32+1 (JWK)", parse(jwkWith(t, rsaPub, map[string]any{"e": "AQAAAAE"})), jose.ErrInvalidKey},
		{"control: RSA exponent 3 (JWK)", parse(jwkWith(t, rsaPub, map[string]any{"e": "Aw"})), nil},
		{"RSA exponent 1 (NewKey)", func() (*jose.Key, error) { return jose.NewKey(jose.RS256, &rsa.PublicKey{N: rsaKey.N, E: 1}) }, jose.ErrInvalidKey},
		{"RSA exponent 65536 (NewKey)", func() (*jose.Key, error) { return jose.NewKey(jose.RS256, &rsa.PublicKey{N: rsaKey.N, E: 65536}) }, jose.ErrInvalidKey},
		{"RSA JWK with alg ES256", parse(jwkWith(t, rsaPub, map[string]any{"alg": "ES256"})), jose.ErrInvalidKey},

		{"control: P-256 JWK", parse(ecPub), nil},
		{"EC point off the curve (y modified)", parse(jwkWith(t, ecPub, map[string]any{"y": offCurveY})), jose.ErrInvalidKey},
		{"EC point (0, 0)", parse(jwkWith(t, ecPub, map[string]any{"x": zero32, "y": zero32})), jose.ErrInvalidKey},
		{"EC private JWK with y modified", parse(jwkWith(t, strictEC256JWK, map[string]any{"y": offCurveY})), jose.ErrInvalidKey},
		{"P-384 JWK with alg ES256", parse(jwkWith(t, ec384Pub, map[string]any{"alg": "ES256"})), jose.ErrInvalidKey},
		{"P-256 JWK with alg ES384", parse(jwkWith(t, ecPub, map[string]any{"alg": "ES384"})), jose.ErrInvalidKey},
		{"P-256 JWK with alg EdDSA", parse(jwkWith(t, ecPub, map[string]any{"alg": "EdDSA"})), jose.ErrInvalidKey},
		{"P-384 key given to NewKey for ES256", func() (*jose.Key, error) { return jose.NewKey(jose.ES256, fx.es384.priv) }, jose.ErrInvalidKey},
		{"P-384 public key given to NewKey for ES256", func() (*jose.Key, error) { return jose.NewKey(jose.ES256, fx.es384.priv.Public()) }, jose.ErrInvalidKey},
		{"Ed25519 JWK with alg ES256", parse(jwkWith(t, edPub, map[string]any{"alg": "ES256"})), jose.ErrInvalidKey},
		{"RSA key given to NewKey for ES256", func() (*jose.Key, error) { return jose.NewKey(jose.ES256, rsaKey) }, jose.ErrInvalidKey},

		{"use enc", parse(jwkWith(t, ecPub, map[string]any{"use": "enc"})), jose.ErrInvalidKey},
		{"control: use sig", parse(jwkWith(t, ecPub, map[string]any{"use": "sig"})), nil},
		{"key_ops [sign]", parse(jwkWith(t, ecPub, map[string]any{"key_ops": []string{"sign"}})), jose.ErrInvalidKey},
		{"key_ops [encrypt]", parse(jwkWith(t, ecPub, map[string]any{"key_ops": []string{"encrypt"}})), jose.ErrInvalidKey},
		{"key_ops []", parse(jwkWith(t, ecPub, map[string]any{"key_ops": []string{}})), jose.ErrInvalidKey},
		{"control: key_ops [verify]", parse(jwkWith(t, ecPub, map[string]any{"key_ops": []string{"verify"}})), nil},
		{"control: key_ops [sign, verify]", parse(jwkWith(t, ecPub, map[string]any{"key_ops": []string{"sign", "verify"}})), nil},

		{"EC crv secp256k1", parse(jwkWith(t, ecPub, map[string]any{"crv": "secp256k1"}, "alg")), jose.ErrUnsupportedKey},
		{"OKP crv X25519", parse(jwkWith(t, edPub, map[string]any{"crv": "X25519"}, "alg")), jose.ErrUnsupportedKey},
		{"OKP crv Ed448", parse(jwkWith(t, edPub, map[string]any{"crv": "Ed448"}, "alg")), jose.ErrUnsupportedKey},
		{"kty unknown", parse(jwkWith(t, ecPub, map[string]any{"kty": "AKP"})), jose.ErrUnsupportedKey},
		{"alg none", parse(jwkWith(t, ecPub, map[string]any{"alg": "none"})), jose.ErrUnsupportedKey},
		{"alg RSA-OAEP", parse(jwkWith(t, rsaPub, map[string]any{"alg": "RSA-OAEP"})), jose.ErrUnsupportedKey},
		{"duplicate member in a JWK", parse(`{"kty":"EC","crv":"P-256","crv":"P-384"}`), jose.ErrDuplicateMember},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tc.make()
			if tc.want == nil {
				if err != nil || k == nil {
					t.Fatalf("got %v, want the key accepted", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if k != nil {
				t.Errorf("got a key for a refused import, want nil")
			}
		})
	}
}

// In a JWK Set a bad key is skipped and reported, and never makes the set
// unusable; duplicate kids are an error.
func TestStrictKeySetSkipsBadKeys(t *testing.T) {
	fx := newStrictFixture(t)
	good := publicJWK(t, strictEC256JWK)
	var ec map[string]string
	if err := json.Unmarshal([]byte(good), &ec); err != nil {
		t.Fatal(err)
	}
	y, _ := base64.RawURLEncoding.DecodeString(ec["y"])
	y[0] ^= 0x80
	bad := []struct {
		jwk, kid string
		want     error
	}{
		{jwkWith(t, good, map[string]any{"kid": "off-curve", "y": b64url(y)}), "off-curve", jose.ErrInvalidKey},
		{`{"kty":"oct","kid":"oct-no-alg","k":"` + b64url(make([]byte, 64)) + `"}`, "oct-no-alg", jose.ErrInvalidKey},
		{jwkWith(t, good, map[string]any{"kid": "k1", "crv": "secp256k1"}, "alg"), "k1", jose.ErrUnsupportedKey},
		{`{"kty":"OKP","crv":"X25519","kid":"x25519","x":"` + b64url(make([]byte, 32)) + `"}`, "x25519", jose.ErrUnsupportedKey},
		{jwkWith(t, good, map[string]any{"kid": "enc", "use": "enc"}), "enc", jose.ErrInvalidKey},
		{`42`, "", jose.ErrMalformed},
		{`{}`, "", jose.ErrMalformed},
	}
	doc := `{"keys":[`
	for _, b := range bad {
		doc += b.jwk + ","
	}
	doc += good + `]}`

	set, err := jose.ParseKeySet([]byte(doc))
	if err != nil {
		t.Fatalf("ParseKeySet: got %v, want the set with its one good key", err)
	}
	if got := len(set.Keys()); got != 1 {
		t.Errorf("usable keys: got %d, want 1", got)
	}
	if _, err := jose.Verify(fx.es.token(t, `{"alg":"ES256","kid":"ec-1"}`, strictPayload), set); err != nil {
		t.Errorf("token of the good key: got %v, want it to verify", err)
	}
	skipped := set.Skipped()
	if len(skipped) != len(bad) {
		t.Fatalf("Skipped: got %d errors, want %d: %v", len(skipped), len(bad), skipped)
	}
	for i, b := range bad {
		var se *jose.SkippedKeyError
		if !errors.As(skipped[i], &se) {
			t.Errorf("Skipped()[%d]: got %T, want *jose.SkippedKeyError", i, skipped[i])
			continue
		}
		if se.Index != i || se.KeyID != b.kid || !errors.Is(se, b.want) {
			t.Errorf("Skipped()[%d]: got index %d kid %q err %v, want index %d kid %q err %v", i, se.Index, se.KeyID, se.Err, i, b.kid, b.want)
		}
	}
	// A skipped key is not usable, even when a token names it.
	if _, err := jose.Verify(fx.attacker.token(t, `{"alg":"ES256","kid":"off-curve"}`, strictPayload), set); !errors.Is(err, jose.ErrKeyNotFound) {
		t.Errorf("token naming a skipped key: got %v, want ErrKeyNotFound", err)
	}

	dup := `{"keys":[` + good + `,` + jwkWith(t, publicJWK(t, strictAttackerJWK), map[string]any{"kid": "ec-1"}) + `]}`
	if set, err := jose.ParseKeySet([]byte(dup)); !errors.Is(err, jose.ErrDuplicateKeyID) || set != nil {
		t.Errorf("duplicate kid: got %v, %v, want nil, ErrDuplicateKeyID", set, err)
	}
	if _, err := jose.NewKeySet(fx.es.pub, fx.es.pub); !errors.Is(err, jose.ErrDuplicateKeyID) {
		t.Errorf("NewKeySet with a kid twice: got %v, want ErrDuplicateKeyID", err)
	}

	for _, doc := range []string{`[]`, `{"keys":{}}`, `{"keys":"x"}`, `{"keys":null}`, `{}`, `{"keys":[],"keys":[]}`} {
		if _, err := jose.ParseKeySet([]byte(doc)); !errors.Is(err, jose.ErrMalformed) {
			t.Errorf("ParseKeySet(%s): got %v, want ErrMalformed", doc, err)
		}
	}
}

// A published key set (ParsePublicKeySet) skips a symmetric key even with
// an alg, where ParseKeySet takes it: anyone who read the set could sign
// with it.
func TestStrictPublicKeySetSkipsSecrets(t *testing.T) {
	fx := newStrictFixture(t)
	secret := `{"kty":"oct","kid":"published","alg":"HS256","k":"` + b64url([]byte(strictSecret)) + `"}`
	doc := []byte(`{"keys":[` + secret + `,` + publicJWK(t, strictEC256JWK) + `]}`)
	forged := strictHMACKey(t, jose.HS256, strictSecret, "published").token(t, `{"alg":"HS256","kid":"published"}`, strictPayload)

	all, err := jose.ParseKeySet(doc)
	if err != nil || len(all.Keys()) != 2 {
		t.Fatalf("ParseKeySet: %v, %v; want both keys", all, err)
	}
	pub, err := jose.ParsePublicKeySet(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(pub.Keys()) != 1 || len(pub.Skipped()) != 1 || !errors.Is(pub.Skipped()[0], jose.ErrInvalidKey) {
		t.Errorf("ParsePublicKeySet: %d keys, skipped %v; want 1 key and the secret skipped as ErrInvalidKey", len(pub.Keys()), pub.Skipped())
	}
	if _, err := jose.Verify(forged, pub); !errors.Is(err, jose.ErrKeyNotFound) {
		t.Errorf("token signed with the published secret: got %v, want ErrKeyNotFound", err)
	}
	if _, err := jose.Verify(fx.es.token(t, `{"alg":"ES256","kid":"ec-1"}`, strictPayload), pub); err != nil {
		t.Errorf("token of the public key: %v", err)
	}
}

// Generated keys are bound to the algorithm asked for, and a generated key
// of the wrong curve is refused by NewKey.
func TestStrictGeneratedKeys(t *testing.T) {
	for _, alg := range []jose.Algorithm{jose.HS256, jose.HS384, jose.HS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA} {
		k, err := jose.GenerateKey(alg, nil)
		if err != nil {
			t.Fatalf("GenerateKey(%s): %v", alg, err)
		}
		if k.Algorithm() != alg {
			t.Errorf("GenerateKey(%s): got alg %s", alg, k.Algorithm())
		}
	}
	if _, err := jose.GenerateKey("none", nil); !errors.Is(err, jose.ErrUnsupportedAlgorithm) {
		t.Errorf("GenerateKey(none): got %v, want ErrUnsupportedAlgorithm", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jose.NewKey(jose.ES256, p384); !errors.Is(err, jose.ErrInvalidKey) {
		t.Errorf("NewKey(ES256, P-384 key): got %v, want ErrInvalidKey", err)
	}
}
