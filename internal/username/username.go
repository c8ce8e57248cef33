// Package username normalizes usernames so that they compare
// case-insensitively and independently of Unicode encoding variants, with
// the RFC 8265 (PRECIS) UsernameCaseMapped profile. See
// docs/decisions/storage.md for why.
package username

import (
	"golang.org/x/text/secure/precis"

	"github.com/keycard-auth/keycard"
)

// Normalize returns the display form and the normalized form of a username
// as typed by a user.
//
// The display form is the username with full-width characters mapped to
// their usual width and put in Unicode NFC (the PRECIS UsernameCasePreserved
// profile); the normalized form additionally has its case mapped to lower
// case (UsernameCaseMapped). Two usernames are the same account when their
// normalized forms are equal. Spaces, control characters, symbols such as
// emoji, and characters unassigned in Unicode are rejected, as are names
// whose normalized form is shorter than keycard.MinUsernameLen or longer
// than keycard.MaxUsernameLen bytes. Errors are keycard EINVALID errors
// whose message can be shown to the user.
func Normalize(s string) (display, normalized string, err error) {
	if len(s) > 4*keycard.MaxUsernameLen {
		return "", "", tooLong()
	}
	if s == "" {
		return "", "", &keycard.Error{Code: keycard.EINVALID, Message: "Username is required."}
	}
	display, err = precis.UsernameCasePreserved.String(s)
	if err != nil {
		return "", "", invalid()
	}
	normalized, err = precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", "", invalid()
	}
	switch {
	case len(normalized) < keycard.MinUsernameLen:
		return "", "", invalid()
	case len(normalized) > keycard.MaxUsernameLen || len(display) > keycard.MaxUsernameLen:
		return "", "", tooLong()
	}
	return display, normalized, nil
}

func invalid() *keycard.Error {
	return &keycard.Error{Code: keycard.EINVALID, Message: "Username may contain letters, digits and ASCII punctuation, but no spaces, symbols or control characters."}
}

func tooLong() *keycard.Error {
	return keycard.Errorf(keycard.EINVALID, "Username must be at most %d bytes long.", keycard.MaxUsernameLen)
}
