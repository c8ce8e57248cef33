package keycard_test

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/keycard-auth/keycard"
)

func ExampleNewRefreshToken() {
	token, id, hash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		panic(err)
	}
	// Store id and hash; hand token to the client once.
	gotID, gotHash, err := keycard.ParseRefreshToken(token)
	fmt.Println(err == nil, gotID == id, string(gotHash) == string(hash), len(hash))
	// Output: true true true 32
}

func ExampleErrorCode() {
	err := keycard.Errorf(keycard.ENOTFOUND, "Session not found.")
	fmt.Println(keycard.ErrorCode(err), keycard.ErrorMessage(err))
	// Output: not_found Session not found.
}

// The message id of a webhook is the same for every attempt and replay
// of one event: receivers drop the messages whose id they have seen.
func ExampleWebhookDelivery_MessageID() {
	d := &keycard.WebhookDelivery{EventID: 42, EventType: keycard.WebhookUserCreated}
	fmt.Println(d.MessageID())
	// Output: msg_42
}

// A signing secret is whsec_ and the base64 of 32 random bytes.
func ExampleNewWebhookSecret() {
	secret, err := keycard.NewWebhookSecret(bytes.NewReader(make([]byte, 32))) // crypto/rand.Reader in real use
	if err != nil {
		panic(err)
	}
	fmt.Println(secret)
	// Output: whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
}
