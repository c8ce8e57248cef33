package keycard_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := keycard.NewID(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(id), 22; got != want {
			t.Fatalf("len(NewID()) = %d, want %d", got, want)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
	if _, err := keycard.NewID(strings.NewReader("short")); err == nil {
		t.Errorf("NewID(short reader): got nil error, want one")
	}
}

func TestRefreshTokenRoundTrip(t *testing.T) {
	tok, id, hash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(tok), 22+1+43; got != want {
		t.Errorf("len(token) = %d, want %d", got, want)
	}
	gotID, gotHash, err := keycard.ParseRefreshToken(tok)
	if err != nil {
		t.Fatalf("ParseRefreshToken(new token): %v", err)
	}
	if gotID != id || !bytes.Equal(gotHash, hash) {
		t.Errorf("ParseRefreshToken = %q, %x; want %q, %x", gotID, gotHash, id, hash)
	}
}

func TestParseRefreshTokenMalformed(t *testing.T) {
	good, _, _, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, secret, _ := strings.Cut(good, ".")
	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"no dot", id + secret},
		{"two dots", id + "." + secret + "."},
		{"short id", id[1:] + "." + secret},
		{"long secret", id + "." + secret + "A"},
		{"padding", id + "." + secret[:42] + "="},
		{"std alphabet", id + "." + secret[:42] + "+"},
		{"space", " " + good[1:]},
		{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := keycard.ParseRefreshToken(tt.token)
			if got, want := keycard.ErrorCode(err), keycard.EUNAUTHORIZED; got != want {
				t.Errorf("ErrorCode(ParseRefreshToken(%q)) = %q, want %q", tt.token, got, want)
			}
		})
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantCode    string
		wantMessage string
	}{
		{"nil", nil, "", ""},
		{"error", keycard.Errorf(keycard.ENOTFOUND, "User %q not found.", "x"), keycard.ENOTFOUND, `User "x" not found.`},
		{"wrapped", fmt.Errorf("ctx: %w", &keycard.Error{Code: keycard.ECONFLICT, Message: "Taken."}), keycard.ECONFLICT, "Taken."},
		{"other", errors.New("disk on fire at /secret/path"), keycard.EINTERNAL, "Internal error."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keycard.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode() = %q, want %q", got, tt.wantCode)
			}
			if got := keycard.ErrorMessage(tt.err); got != tt.wantMessage {
				t.Errorf("ErrorMessage() = %q, want %q", got, tt.wantMessage)
			}
		})
	}
}

func TestSessionActive(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := keycard.Session{CreatedAt: t0, LastUsedAt: t0, IdleTimeout: time.Hour, ExpiresAt: t0.Add(3 * time.Hour)}
	revoked := s
	revoked.RevokedAt = t0.Add(time.Minute)
	used := s
	used.LastUsedAt = t0.Add(150 * time.Minute)
	tests := []struct {
		name string
		s    keycard.Session
		at   time.Time
		want bool
	}{
		{"fresh", s, t0, true},
		{"just before idle", s, t0.Add(time.Hour - 1), true},
		{"idle", s, t0.Add(time.Hour), false},
		{"revoked", revoked, t0.Add(time.Minute), false},
		{"used recently", used, t0.Add(170 * time.Minute), true},
		{"absolute end", used, t0.Add(3 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Active(tt.at); got != tt.want {
				t.Errorf("Active(%v) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestPageSize(t *testing.T) {
	tests := []struct{ in, want int }{{-1, 100}, {0, 100}, {1, 1}, {1000, 1000}, {5000, 1000}}
	for _, tt := range tests {
		if got := keycard.PageSize(tt.in); got != tt.want {
			t.Errorf("PageSize(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
