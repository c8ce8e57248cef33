package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/webhook"
)

// TestSignVector checks Sign against the test vector published with the
// Standard Webhooks reference libraries (standard-webhooks/standard-webhooks,
// libraries/go/webhook_test.go, TestWebhookSign; the same vector is in
// the other languages' tests).
func TestSignVector(t *testing.T) {
	got, err := webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign: got %s, want %s", got, want)
	}
}

// verify is a receiver's check, written from the specification: the
// HMAC-SHA256 of "id.timestamp.body" under the base64-decoded key after
// whsec_, compared in constant time with each v1 signature of the header.
func verify(secret, id, timestamp string, body []byte, header string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(header) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// TestNewWebhookSecret: a new secret is whsec_ and 32 random bytes, signs, and
// verifies with the receiver's check.
func TestNewWebhookSecret(t *testing.T) {
	s, err := keycard.NewWebhookSecret(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)); s != want {
		t.Errorf("NewWebhookSecret: got %s, want %s", s, want)
	}
	if err := webhook.CheckSecret(s); err != nil {
		t.Errorf("CheckSecret of a new secret: %v", err)
	}
	if _, err := keycard.NewWebhookSecret(bytes.NewReader(nil)); err == nil {
		t.Error("NewWebhookSecret without randomness: got nil error")
	}
	body := []byte(`{"type":"user.created"}`)
	sig, err := webhook.Sign(s, "msg_1", time.Unix(1700000000, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	if !verify(s, "msg_1", "1700000000", body, sig) {
		t.Error("the receiver's check refused the signature")
	}
	for _, tampered := range []struct{ id, ts, body string }{
		{"msg_2", "1700000000", string(body)},
		{"msg_1", "1700000001", string(body)},
		{"msg_1", "1700000000", `{"type":"user.deleted"}`},
	} {
		if verify(s, tampered.id, tampered.ts, []byte(tampered.body), sig) {
			t.Errorf("the signature verified for %+v", tampered)
		}
	}
}

// TestBadSecret: a secret without the prefix, not base64, or of a key too
// short or too long, is refused.
func TestBadSecret(t *testing.T) {
	for _, s := range []string{
		"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)),
	} {
		if _, err := webhook.Sign(s, "msg", time.Unix(0, 0), nil); !errors.Is(err, webhook.ErrSecret) {
			t.Errorf("Sign with secret %q: got %v, want ErrSecret", s, err)
		}
	}
}
