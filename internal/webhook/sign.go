package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
)

// ErrSecret is returned for a signing secret that is not whsec_ followed
// by standard base64 of at least 24 bytes.
var ErrSecret = errors.New("webhook: the secret must be whsec_ followed by the base64 of 24 to 64 bytes")

// secretKey returns the HMAC key of a whsec_ secret.
func secretKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, keycard.WebhookSecretPrefix)
	if !ok {
		return nil, ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, ErrSecret
	}
	return key, nil
}

// CheckSecret reports whether secret is a valid signing secret.
func CheckSecret(secret string) error {
	_, err := secretKey(secret)
	return err
}

// Sign returns the webhook-signature header of a message (Standard
// Webhooks, "Signature scheme"): "v1," and the standard base64 of
// HMAC-SHA256, keyed with the secret's key, of the message id, the
// timestamp in Unix seconds and the body, joined by dots.
func Sign(secret, msgID string, timestamp time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
