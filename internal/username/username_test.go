package username_test

import (
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/username"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name           string
		in             string
		wantDisplay    string
		wantNormalized string
	}{
		{"ascii", "alice", "alice", "alice"},
		{"upper", "Alice", "Alice", "alice"},
		{"email", "Alice.Smith+test@Example.COM", "Alice.Smith+test@Example.COM", "alice.smith+test@example.com"},
		{"nfc composed", "J\u00f6rg", "J\u00f6rg", "j\u00f6rg"},
		{"nfd decomposed", "Jo\u0308rg", "J\u00f6rg", "j\u00f6rg"},
		{"fullwidth", "\uff21lice", "Alice", "alice"},
		{"greek", "ΣΟΦΙΑ", "ΣΟΦΙΑ", "σοφια"},
		{"cyrillic", "Иван", "Иван", "иван"},
		{"digits", "user42", "user42", "user42"},
		{"max length", strings.Repeat("a", 254), strings.Repeat("a", 254), strings.Repeat("a", 254)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			display, normalized, err := username.Normalize(tt.in)
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tt.in, err)
			}
			if display != tt.wantDisplay || normalized != tt.wantNormalized {
				t.Errorf("Normalize(%q) = %q, %q; want %q, %q", tt.in, display, normalized, tt.wantDisplay, tt.wantNormalized)
			}
		})
	}
}

func TestNormalizeSameAccount(t *testing.T) {
	tests := []struct{ a, b string }{
		{"alice", "ALICE"},
		{"J\u00f6rg", "JO\u0308RG"},
		{"\uff41\uff4c\uff49\uff43\uff45", "Alice"},
	}
	for _, tt := range tests {
		_, na, errA := username.Normalize(tt.a)
		_, nb, errB := username.Normalize(tt.b)
		if errA != nil || errB != nil || na != nb {
			t.Errorf("Normalize(%q) = %q, %v and Normalize(%q) = %q, %v; want equal", tt.a, na, errA, tt.b, nb, errB)
		}
	}
}

func TestNormalizeInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"space", "alice smith"},
		{"leading space", " alice"},
		{"tab", "alice\t"},
		{"nul", "al\x00ice"},
		{"newline", "alice\n"},
		{"emoji", "alice🔑"},
		{"invalid utf8", "alice\xff"},
		{"too long", strings.Repeat("a", 255)},
		{"very long", strings.Repeat("a", 100000)},
		{"zero width joiner", "al\u200dice"},
		{"bidi override", "\u202ealice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := username.Normalize(tt.in)
			if got, want := keycard.ErrorCode(err), keycard.EINVALID; got != want {
				t.Errorf("ErrorCode(Normalize(%q)) = %q, want %q (err %v)", tt.in, got, want, err)
			}
		})
	}
}
