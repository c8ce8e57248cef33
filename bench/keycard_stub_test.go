//go:build !keycardapi

package bench

import "testing"

// Stand-ins until Keycard's jwt package compiles.

func keycardVerifier(tb testing.TB, f *fixture, token string) verifier {
	tb.Skip("keycard jwt package not ready")
	return verifier{}
}

func keycardSigner(tb testing.TB, f *fixture) func() (signed, error) {
	tb.Skip("keycard jwt package not ready")
	return nil
}

func keycardCheck(tb testing.TB, f *fixture, token, typ string) (decoded, error) {
	tb.Skip("keycard jwt package not ready")
	return decoded{}, nil
}
