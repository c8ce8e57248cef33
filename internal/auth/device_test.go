package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/jose"
)

// TestNewUserCode draws user codes: 8 letters of the alphabet, every
// letter in use, and bytes past the alphabet's last whole multiple are
// drawn again rather than folded onto the first letters.
func TestNewUserCode(t *testing.T) {
	seen := map[rune]int{}
	for range 500 {
		c, err := newUserCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != userCodeLen {
			t.Fatalf("got code %q, want %d letters", c, userCodeLen)
		}
		for _, r := range c {
			if !strings.ContainsRune(userCodeAlphabet, r) {
				t.Fatalf("got code %q with %q, outside the alphabet", c, r)
			}
			seen[r]++
		}
	}
	if len(seen) != len(userCodeAlphabet) {
		t.Errorf("500 codes used %d letters, want all %d", len(seen), len(userCodeAlphabet))
	}
	// 240 and above would bias the first 16 letters: they are skipped.
	src := append(bytes.Repeat([]byte{255}, 16), []byte{0, 19, 20, 239, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}...)
	c, err := newUserCode(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := "BZBZCDFG"; c != want {
		t.Errorf("got %q, want %q", c, want)
	}
	if _, err := newUserCode(bytes.NewReader(bytes.Repeat([]byte{250}, 64))); err == nil {
		t.Error("a source that runs dry gave a code")
	}
}

func TestNormalizeUserCode(t *testing.T) {
	for _, tc := range []struct {
		typed string
		want  string
		ok    bool
	}{
		{typed: "BCDF-GHJK", want: "BCDFGHJK", ok: true},
		{typed: "bcdfghjk", want: "BCDFGHJK", ok: true},
		{typed: " bcdf ghjk ", want: "BCDFGHJK", ok: true},
		{typed: "bc-df-gh-jk", want: "BCDFGHJK", ok: true},
		{typed: "BCDF\u00a0GHJK", want: "BCDFGHJK", ok: true},
		{typed: "BCDF-GHJ", ok: false},                           // too short
		{typed: "BCDF-GHJKL", ok: false},                         // too long
		{typed: "BCDF-GHJA", ok: false},                          // a vowel
		{typed: "BCDF-GHJ1", ok: false},                          // a digit
		{typed: "BCDF_GHJK", ok: false},                          // another separator
		{typed: "BCDFGHJ\u212a", ok: false},                      // the Kelvin sign, which upper-cases to K in some folds
		{typed: "", ok: false},                                   // nothing
		{typed: strings.Repeat("-", 70) + "BCDFGHJK", ok: false}, // too much input
	} {
		got, ok := NormalizeUserCode(tc.typed)
		if ok != tc.ok || got != tc.want {
			t.Errorf("NormalizeUserCode(%q): got %q, %v; want %q, %v", tc.typed, got, ok, tc.want, tc.ok)
		}
	}
	if got := FormatUserCode("BCDFGHJK"); got != "BCDF-GHJK" {
		t.Errorf("FormatUserCode: got %q", got)
	}
}

// deviceApp registers a client of the device grant.
func (f *fixture) deviceApp(t *testing.T, first bool) *keycard.Client {
	t.Helper()
	c, _, err := f.svc.CreateClient(context.Background(), Operator(), ClientSpec{Name: "TV", Scopes: []string{"orders:read", "orders:write"}, OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantDeviceCode, keycard.GrantRefreshToken}, Public: true, FirstParty: first,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDeviceScopesAndConsent: the scopes a device gets are those the
// user's roles allow when role scopes are configured, and approving a
// third-party device records a consent the user can take back, which ends
// the device's grant.
func TestDeviceScopesAndConsent(t *testing.T) {
	f := newFixture(t, jose.ES256)
	f.svc.cfg.RoleScopes = map[string][]string{"user": {"orders:read"}}
	ctx := context.Background()
	f.user(t, "alice")
	c := f.deviceApp(t, false)
	start, err := f.svc.StartDevice(ctx, c, "openid orders:read orders:write offline_access")
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t, "alice")
	req, err := f.svc.DecideDevice(ctx, b, start.UserCode, true, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(req.Scopes, " "); got != "openid orders:read orders:write offline_access" {
		t.Errorf("the page showed scopes %q", got)
	}
	f.clock.Advance(DeviceInterval)
	tok, err := f.svc.DeviceToken(ctx, c, start.DeviceCode, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Scope != "openid orders:read offline_access" {
		t.Errorf("got scope %q, want the user's roles' API scopes only", tok.Scope)
	}
	if tok.RefreshToken == "" || tok.IDToken == "" {
		t.Errorf("got refresh token %v, ID token %v; want both (offline_access, openid)", tok.RefreshToken != "", tok.IDToken != "")
	}
	consents, err := f.svc.Consents(ctx, b.User.ID)
	if err != nil || len(consents) != 1 || consents[0].ClientID != c.ID {
		t.Fatalf("consents after a third-party approval: %+v, %v", consents, err)
	}
	if err := f.svc.RevokeConsent(ctx, UserActor(b.User.ID, Agent{}), b.User.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refresh(ctx, tok.RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("refresh after the consent was taken back: got %v, want EUNAUTHORIZED", err)
	}

	// A first-party device asks no consent of its own.
	first := f.deviceApp(t, true)
	start, err = f.svc.StartDevice(ctx, first, "openid")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DecideDevice(ctx, b, start.UserCode, true, Agent{}); err != nil {
		t.Fatal(err)
	}
	if consents, _ := f.svc.Consents(ctx, b.User.ID); len(consents) != 0 {
		t.Errorf("a first-party approval recorded consents %+v", consents)
	}
}

// TestUserCodeGuessing: wrong user codes count against the browser
// session and the address; past the burst, even a right code waits, and
// a valid code of one's own does not reset the count.
func TestUserCodeGuessing(t *testing.T) {
	f := newFixture(t, jose.ES256)
	policy := throttle.Policy{Burst: 3, Refill: time.Hour}
	f.svc.limits = LoginLimits{Account: throttle.NewMemory(policy, f.clock.Now), Address: throttle.NewMemory(throttle.Policy{Burst: 5, Refill: time.Hour}, f.clock.Now)}
	ctx := context.Background()
	f.user(t, "mallory")
	c := f.deviceApp(t, true)
	start, err := f.svc.StartDevice(ctx, c, "openid")
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t, "mallory")
	from := Agent{Addr: "192.0.2.7"}
	guess := func(code string) error {
		_, err := f.svc.LookupDevice(ctx, b, code, from)
		return err
	}
	wrong := "BBBB-BBBB"
	if start.UserCode == wrong {
		wrong = "CCCC-CCCC"
	}
	for i := range 3 {
		if err := guess(wrong); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Fatalf("guess %d: got %v, want ENOTFOUND", i+1, err)
		}
	}
	// Malformed input cannot match anything and is not counted.
	if err := guess("not a code"); keycard.ErrorCode(err) != keycard.EINVALID {
		t.Errorf("malformed: got %v, want EINVALID", err)
	}
	var throttled *ThrottledError
	if err := guess(start.UserCode); !errors.As(err, &throttled) || keycard.ErrorCode(err) != keycard.ETHROTTLED {
		t.Fatalf("a right code after 3 wrong ones: got %v, want a *ThrottledError", err)
	}
	if _, err := f.svc.DecideDevice(ctx, b, start.UserCode, true, from); !errors.As(err, &throttled) {
		t.Fatalf("approving while throttled: got %v, want a *ThrottledError", err)
	}
	// The session's back-off passes and the right code is found, but the
	// count is not forgotten: the very next guess waits again.
	f.clock.Advance(throttled.RetryAfter)
	if err := guess(start.UserCode); err != nil {
		t.Fatalf("the right code after the back-off: %v", err)
	}
	if err := guess(wrong); !errors.As(err, &throttled) {
		t.Errorf("after a right code, the next guess did not wait: %v", err)
	}

	// Another session from the same address has its own session count,
	// but shares the address's, which has two failures left.
	other := f.browser(t, "mallory")
	otherGuess := func(code string) error {
		_, err := f.svc.LookupDevice(ctx, other, code, from)
		return err
	}
	n := 0
	for ; n < 10; n++ {
		if err := otherGuess(wrong); errors.As(err, &throttled) {
			break
		}
	}
	if n == 10 {
		t.Fatal("a second session from the same address was never throttled")
	}
	if n >= 3 {
		t.Errorf("the second session made %d failures before the address stopped it, want fewer than its own burst of 3", n)
	}
}

// TestDeviceCodeUserCodeCollision: StartDevice draws again when the user
// code it drew is taken by a live device code.
func TestDeviceCodeUserCodeCollision(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	c := f.deviceApp(t, true)
	// The same 8 letters first (BBBBBBBB twice), then CCCCCCCC; the
	// opaque token's 48 bytes come before each draw.
	opaque := func(b byte) []byte { return bytes.Repeat([]byte{b}, keycard.IDLen+keycard.RefreshSecretLen) }
	var src []byte
	src = append(src, opaque(1)...)
	src = append(src, bytes.Repeat([]byte{0}, 16)...)
	src = append(src, opaque(2)...)
	src = append(src, bytes.Repeat([]byte{0}, 16)...)
	src = append(src, bytes.Repeat([]byte{1}, 16)...)
	f.svc.rand = bytes.NewReader(src)
	first, err := f.svc.StartDevice(ctx, c, "openid")
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.StartDevice(ctx, c, "openid")
	if err != nil {
		t.Fatal(err)
	}
	if first.UserCode != "BBBB-BBBB" || second.UserCode != "CCCC-CCCC" {
		t.Errorf("got user codes %q and %q, want BBBB-BBBB and CCCC-CCCC", first.UserCode, second.UserCode)
	}
}
