package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestAppendTokenResponse checks that the token answer's encoder writes
// what encoding/json (writeJSON) writes, for plain tokens and for strings
// that need escaping.
func TestAppendTokenResponse(t *testing.T) {
	tests := []struct {
		name string
		r    tokenResponse
	}{
		{"refresh", tokenResponse{AccessToken: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln", TokenType: "Bearer", ExpiresIn: 900,
			RefreshToken: "rt_abc.def", SessionID: "s1"}},
		{"code", tokenResponse{AccessToken: "a", TokenType: "DPoP", ExpiresIn: 300, RefreshToken: "r", IDToken: "i", Scope: "openid profile", SessionID: "s"}},
		{"empty", tokenResponse{}},
		{"negative", tokenResponse{ExpiresIn: -1}},
		{"escapes", tokenResponse{AccessToken: "a\"b\\c", TokenType: "x\ny\tz\x00", Scope: "<é> & \u2028 \xff", SessionID: "\x7f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(tt.r); err != nil {
				t.Fatal(err)
			}
			if got := appendTokenResponse(nil, &tt.r); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("got %s\nwant %s", got, want.Bytes())
			}
		})
	}
}

// FuzzAppendTokenResponse checks the encoder against encoding/json for any
// strings.
func FuzzAppendTokenResponse(f *testing.F) {
	f.Add("eyJ.a.b", "Bearer", int64(900), "rt", "", "openid", "s")
	f.Add("\"", "\\", int64(-5), "\n", "<>&", "\u2028", "\xff")
	f.Fuzz(func(t *testing.T, access, typ string, exp int64, refresh, id, scope, sess string) {
		r := tokenResponse{AccessToken: access, TokenType: typ, ExpiresIn: exp, RefreshToken: refresh, IDToken: id, Scope: scope, SessionID: sess}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		if got := appendTokenResponse(nil, &r); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("got %s\nwant %s", got, want.Bytes())
		}
	})
}

// writeJSONBytes returns what writeJSON writes for v.
func writeJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestAppendClientTokenResponse checks the client credentials answer's
// encoder against encoding/json, as TestAppendTokenResponse does.
func TestAppendClientTokenResponse(t *testing.T) {
	for _, r := range []clientTokenResponse{
		{AccessToken: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjIn0.c2ln", TokenType: "Bearer", ExpiresIn: 900, Scope: "read write"},
		{AccessToken: "a", TokenType: "DPoP", ExpiresIn: 300},
		{},
		{ExpiresIn: -1},
		{AccessToken: "a\"b\\c", TokenType: "x\ny\tz\x00", Scope: "<é> & \u2028 \xff"},
	} {
		if got, want := appendClientTokenResponse(nil, &r), writeJSONBytes(t, r); !bytes.Equal(got, want) {
			t.Errorf("got %s\nwant %s", got, want)
		}
	}
}

// FuzzAppendClientTokenResponse checks the encoder against encoding/json
// for any strings.
func FuzzAppendClientTokenResponse(f *testing.F) {
	f.Add("eyJ.a.b", "Bearer", int64(900), "read")
	f.Add("\"", "\\", int64(-5), "\u2028\xff<>&")
	f.Fuzz(func(t *testing.T, access, typ string, exp int64, scope string) {
		r := clientTokenResponse{AccessToken: access, TokenType: typ, ExpiresIn: exp, Scope: scope}
		if got, want := appendClientTokenResponse(nil, &r), writeJSONBytes(t, r); !bytes.Equal(got, want) {
			t.Errorf("got %s\nwant %s", got, want)
		}
	})
}
