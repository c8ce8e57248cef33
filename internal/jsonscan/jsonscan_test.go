package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// member is one top-level member as ScanObject hands it over.
type member struct{ name, value string }

func scanAll(data string, fold bool) ([]member, error) {
	var got []member
	err := ScanObject([]byte(data), fold, func(name, value []byte) error {
		got = append(got, member{string(name), string(value)})
		return nil
	})
	return got, err
}

func TestScanObjectMembers(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []member
	}{
		{name: "empty object", data: `{}`},
		{name: "white space around", data: " \t\r\n{ } \n"},
		{name: "every kind of value", data: `{"s":"x","n":-1.5e+3,"t":true,"f":false,"z":null,"a":[1,{"b":[]}],"o":{"k":"v"}}`,
			want: []member{{"s", `"x"`}, {"n", `-1.5e+3`}, {"t", "true"}, {"f", "false"}, {"z", "null"}, {"a", `[1,{"b":[]}]`}, {"o", `{"k":"v"}`}}},
		{name: "escaped name is unescaped", data: `{"\u0061lg":"HS256"}`, want: []member{{"alg", `"HS256"`}}},
		{name: "value keeps its escapes", data: `{"k":"a\"b"}`, want: []member{{"k", `"a\"b"`}}},
		{name: "surrogate pair", data: `{"k":"\ud83d\ude00"}`, want: []member{{"k", `"\ud83d\ude00"`}}},
		{name: "non-ASCII names that differ", data: `{"é":1,"e":2}`, want: []member{{"é", "1"}, {"e", "2"}}},
		{name: "same name in sibling objects", data: `{"a":{"x":1},"b":{"x":2}}`, want: []member{{"a", `{"x":1}`}, {"b", `{"x":2}`}}},
	}
	for _, tt := range tests {
		got, err := scanAll(tt.data, true)
		if err != nil {
			t.Errorf("%s: got error %v, want none", tt.name, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: member %d: got %q, want %q", tt.name, i, got[i], tt.want[i])
			}
		}
	}
}

func TestScanObjectRefuses(t *testing.T) {
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}` }
	tests := []struct {
		name string
		data string
		fold bool
		want error // besides ErrMalformed, which every refusal wraps
	}{
		{name: "empty", data: ``},
		{name: "array", data: `[]`},
		{name: "string", data: `"x"`},
		{name: "trailing data", data: `{} {}`},
		{name: "trailing comma", data: `{"a":1,}`},
		{name: "unterminated", data: `{"a":1`},
		{name: "single quotes", data: `{'a':1}`},
		{name: "bare name", data: `{a:1}`},
		{name: "leading zero", data: `{"a":01}`},
		{name: "fraction without digits", data: `{"a":1.}`},
		{name: "exponent without digits", data: `{"a":1e}`},
		{name: "lone minus", data: `{"a":-}`},
		{name: "plus sign", data: `{"a":+1}`},
		{name: "NaN", data: `{"a":NaN}`},
		{name: "bad literal", data: `{"a":tru}`},
		{name: "control character in a string", data: "{\"a\":\"x\ny\"}"},
		{name: "bad escape", data: `{"a":"\x"}`},
		{name: "short \\u escape", data: `{"a":"\u12"}`},
		{name: "lone high surrogate", data: `{"a":"\ud83d"}`},
		{name: "lone low surrogate", data: `{"a":"\ude00"}`},
		{name: "reversed surrogates", data: `{"a":"\ude00\ud83d"}`},
		{name: "invalid UTF-8", data: "{\"a\":\"\xff\"}"},
		{name: "invalid UTF-8 in a name", data: "{\"\xc3\":1}"},
		{name: "duplicate name", data: `{"a":1,"a":2}`, want: ErrDuplicateMember},
		{name: "duplicate through an escape", data: `{"alg":1,"\u0061lg":2}`, want: ErrDuplicateMember},
		{name: "duplicate in a nested object", data: `{"x":{"a":1,"a":2}}`, want: ErrDuplicateMember},
		{name: "duplicate in an object in an array", data: `{"x":[{"a":1,"a":2}]}`, want: ErrDuplicateMember},
		{name: "case variants with fold", data: `{"iss":1,"ISS":2}`, fold: true, want: ErrDuplicateMember},
		{name: "non-ASCII case variants with fold", data: `{"é":1,"É":2}`, fold: true, want: ErrDuplicateMember},
		{name: "long s with fold", data: `{"sub":1,"ſub":2}`, fold: true, want: ErrDuplicateMember},
		{name: "Kelvin sign with fold", data: `{"kid":1,"Kid":2}`, fold: true, want: ErrDuplicateMember},
		{name: "nesting deeper than MaxDepth", data: deep(MaxDepth + 1)},
		{name: "nesting far deeper than MaxDepth", data: deep(5000)},
	}
	for _, tt := range tests {
		_, err := scanAll(tt.data, tt.fold)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want an error wrapping ErrMalformed", tt.name, err)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	// The controls: what the refusals above come close to is accepted.
	for _, data := range []string{deep(MaxDepth), `{"iss":1,"ISS":2}`, `{"x":{"a":1,"A":2}}`} {
		if _, err := scanAll(data, false); err != nil {
			t.Errorf("%.40s: got %v, want no error", data, err)
		}
	}
	if _, err := scanAll(`{"x":{"a":1,"A":2}}`, true); err != nil {
		t.Errorf("fold applies to top-level names only: got %v, want no error", err)
	}
}

func TestScanObjectReturnsCallbackErrors(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := ScanObject([]byte(`{"a":1,"b":2}`), false, func(_, _ []byte) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("got %v after %d calls, want the callback's error unchanged after 1", err, calls)
	}
}

func TestScanObjectDoesNotAllocate(t *testing.T) {
	header := []byte(`{"alg":"ES256","kid":"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs","typ":"at+jwt"}`)
	allocs := testing.AllocsPerRun(100, func() {
		if err := ScanObject(header, true, func(_, value []byte) error {
			_, err := Unquote(value)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per scan, want 0", allocs)
	}
}

func TestUnquote(t *testing.T) {
	tests := []struct {
		name, value, want string
		bad               bool
	}{
		{name: "plain", value: `"at+jwt"`, want: "at+jwt"},
		{name: "empty", value: `""`, want: ""},
		{name: "escapes", value: `"a\"b\\c\/d\b\f\n\r\t"`, want: "a\"b\\c/d\b\f\n\r\t"},
		{name: "\\u escape", value: `"\u00e9\u20ac"`, want: "é€"},
		{name: "surrogate pair", value: `"\ud83d\ude00"`, want: "😀"},
		{name: "long plain", value: `"` + strings.Repeat("abcdefgh", 9) + `"`, want: strings.Repeat("abcdefgh", 9)},
		{name: "long with an escape at the end", value: `"` + strings.Repeat("abcdefgh", 9) + `\n"`, want: strings.Repeat("abcdefgh", 9) + "\n"},
		{name: "not a string", value: `12`, bad: true},
		{name: "one quote", value: `"`, bad: true},
		{name: "lone surrogate", value: `"\ud83d"`, bad: true},
	}
	for _, tt := range tests {
		got, err := Unquote([]byte(tt.value))
		switch {
		case tt.bad && !errors.Is(err, ErrMalformed):
			t.Errorf("%s: got %q, %v; want an error wrapping ErrMalformed", tt.name, got, err)
		case !tt.bad && (err != nil || string(got) != tt.want):
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestAppendQuote(t *testing.T) {
	for _, s := range []string{"", "at+jwt", `a"b\c`, "tab\tnew\nline\x00\x1f", "é€😀", "</script>", "\u2028"} {
		b := AppendQuote([]byte("prefix:"), s)
		rest, ok := strings.CutPrefix(string(b), "prefix:")
		if !ok {
			t.Fatalf("%q: got %q, want it appended to the prefix", s, b)
		}
		var got string
		if err := json.Unmarshal([]byte(rest), &got); err != nil || got != s {
			t.Errorf("%q: got %s, which decodes to %q (%v)", s, rest, got, err)
		}
		if back, err := Unquote([]byte(rest)); err != nil || string(back) != s {
			t.Errorf("%q: Unquote(%s) = %q, %v", s, rest, back, err)
		}
	}
}

// FuzzScanObject checks ScanObject against encoding/json: what it
// accepts is valid JSON, its members are the object's, and every string
// value unquotes to what encoding/json decodes.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"alg":"ES256","kid":"k","typ":"at+jwt"}`, `{"a":[1,2,{"b":null}],"c":-0.5e-3}`,
		`{"\u0061":"\ud83d\ude00"}`, `{"a":1,"a":2}`, `{"a":"\ud83d"}`, "{\"a\":\"\xff\"}", `{"a":01}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, fold bool) {
		var names []string
		err := ScanObject(data, fold, func(name, value []byte) error {
			names = append(names, string(name))
			if len(value) > 0 && value[0] == '"' {
				got, err := Unquote(value)
				var want string
				if jerr := json.Unmarshal(value, &want); err != nil || jerr != nil || string(got) != want {
					t.Fatalf("Unquote(%s) = %q, %v; encoding/json: %q, %v", value, got, err, want, jerr)
				}
			}
			return nil
		})
		// ScanObjectPlain hands over the same members, and plain exactly
		// when the value is a string with no backslash, so that its
		// contents are what Unquote returns.
		i := 0
		perr := ScanObjectPlain(data, fold, func(name, value []byte, plain bool) error {
			if i >= len(names) || string(name) != names[i] {
				t.Fatalf("ScanObjectPlain: member %d is %q, ScanObject's %q", i, name, names)
			}
			i++
			isPlain := len(value) >= 2 && value[0] == '"' && !bytes.Contains(value[1:len(value)-1], []byte{'\\'})
			if plain != isPlain {
				t.Fatalf("ScanObjectPlain: plain %v for %s", plain, value)
			}
			if plain {
				if got, err := Unquote(value); err != nil || string(got) != string(value[1:len(value)-1]) {
					t.Fatalf("plain %s, but Unquote gives %q, %v", value, got, err)
				}
			}
			return nil
		})
		if (perr == nil) != (err == nil) || (err != nil && perr.Error() != err.Error()) {
			t.Fatalf("ScanObjectPlain: %v; ScanObject: %v", perr, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want an error wrapping ErrMalformed", err)
			}
			return
		}
		if i != len(names) {
			t.Fatalf("ScanObjectPlain: %d members, ScanObject %d", i, len(names))
		}
		if !json.Valid(data) || !utf8.Valid(data) {
			t.Fatalf("accepted %q, which is not valid JSON", data)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil || len(m) != len(names) {
			t.Fatalf("accepted %q with %d members; encoding/json: %d, %v", data, len(names), len(m), err)
		}
		for _, n := range names {
			if _, ok := m[n]; !ok {
				t.Fatalf("member %q of %q: encoding/json does not have it", n, data)
			}
		}
	})
}

// AppendQuoteValid writes what AppendQuote writes and says whether the
// string is valid UTF-8, as utf8.ValidString does, for strings of every
// length with quotes, backslashes, control characters, multi-byte and
// invalid sequences anywhere.
func TestAppendQuoteValid(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{'q'}))
	pieces := []string{"a", "Z", "0", " ", "\"", "\\", "\x00", "\x1f", "\x7f", "é", "€", "𝄞", "\xff", "\xc3", "\xed\xa0\x80", "https://auth.example.com"}
	for n := range 40 {
		for range 50 {
			var b strings.Builder
			for range n {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			s := b.String()
			got, ok := AppendQuoteValid([]byte("x"), s)
			if ok != utf8.ValidString(s) {
				t.Fatalf("AppendQuoteValid(%q): ok %v, want %v", s, ok, !ok)
			}
			if want := AppendQuote([]byte("x"), s); ok && !bytes.Equal(got, want) {
				t.Fatalf("AppendQuoteValid(%q) = %s, want %s", s, got, want)
			}
		}
	}
}

// firstSpecial finds the first byte plainASCII would not skip, whatever
// the bytes after it: every byte value at every place, behind plain bytes
// and before random ones (which may borrow-flag the bytes above).
func TestFirstSpecial(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	want := func(b [8]byte) int {
		for i, c := range b {
			if !plain(c) {
				return i
			}
		}
		return 8
	}
	r := rand.New(rand.NewPCG(1, 2))
	check := func(b [8]byte) {
		t.Helper()
		if got := firstSpecial(binary.LittleEndian.Uint64(b[:])); got != want(b) {
			t.Fatalf("firstSpecial(%q) = %d, want %d", b, got, want(b))
		}
	}
	for place := range 8 {
		for c := range 256 {
			for range 64 {
				var b [8]byte
				for i := range b {
					switch {
					case i < place:
						b[i] = byte(0x20 + r.IntN(0x60))
						for !plain(b[i]) {
							b[i] = byte(0x20 + r.IntN(0x60))
						}
					case i == place:
						b[i] = byte(c)
					default:
						b[i] = byte(r.IntN(256))
					}
				}
				check(b)
			}
		}
	}
	for range 100000 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		check(b)
	}
}
