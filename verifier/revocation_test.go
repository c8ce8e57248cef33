package verifier

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// feedT0 is the test feed's clock at the start: a cut-off time with
// microseconds, as the server writes them.
var feedT0 = time.Date(2026, 11, 22, 12, 0, 0, 123456000, time.UTC)

// feedTTL is the lifetime of the test entries.
const feedTTL = 15*time.Minute + 30*time.Second

// entry returns a feed entry at feedT0 that expires feedTTL later.
func entry(seq int64, kind, value string) Entry {
	return Entry{Seq: seq, Kind: kind, Value: value, At: feedT0, ExpiresAt: feedT0.Add(feedTTL)}
}

func TestRevocationSetRevoked(t *testing.T) {
	s := NewRevocationSet()
	for _, e := range []Entry{
		entry(1, KindSession, "sess-1"),
		entry(2, KindToken, "jti-1"),
		entry(3, KindKey, "kid-1"),
		entry(4, KindUser, "alice"),
		// Ids longer than the tables keep in their slots (maxInlineID).
		entry(5, KindSession, longSession),
		entry(6, KindUser, longUser),
	} {
		s.Apply(e)
	}
	second := feedT0.Truncate(time.Second) // the second of the cut-off, before it
	tests := []struct {
		name               string
		kid, sub, sid, jti string
		iat                time.Time
		want               bool
	}{
		{name: "nothing matches", kid: "kid-2", sub: "bob", sid: "sess-2", jti: "jti-2", iat: second, want: false},
		{name: "revoked session", sid: "sess-1", iat: feedT0.Add(time.Hour), want: true},
		{name: "revoked token", jti: "jti-1", iat: feedT0.Add(time.Hour), want: true},
		{name: "revoked key", kid: "kid-1", iat: feedT0.Add(time.Hour), want: true},
		{name: "user token issued before the cut-off", sub: "alice", iat: feedT0.Add(-time.Minute), want: true},
		{name: "user token issued in the cut-off's second (fails closed)", sub: "alice", iat: second, want: true},
		{name: "user token issued the next second", sub: "alice", iat: second.Add(time.Second), want: false},
		{name: "user token without iat", sub: "alice", want: true},
		{name: "another user before the cut-off", sub: "bob", iat: feedT0.Add(-time.Minute), want: false},
		{name: "empty values match nothing", iat: feedT0.Add(-time.Hour), want: false},
		{name: "values are case-sensitive", sid: "SESS-1", jti: "JTI-1", kid: "KID-1", sub: "Alice", iat: second, want: false},
		{name: "a session id is not a token id", jti: "sess-1", iat: feedT0.Add(time.Hour), want: false},
		{name: "revoked long session id", sid: longSession, iat: feedT0.Add(time.Hour), want: true},
		{name: "long session id one byte short", sid: longSession[:len(longSession)-1], iat: feedT0.Add(time.Hour), want: false},
		{name: "long user token issued before the cut-off", sub: longUser, iat: feedT0.Add(-time.Minute), want: true},
		{name: "long user token issued the next second", sub: longUser, iat: second.Add(time.Second), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Revoked(tt.kid, tt.sub, tt.sid, tt.jti, tt.iat); got != tt.want {
				t.Errorf("Revoked(%q, %q, %q, %q, %v) = %v, want %v", tt.kid, tt.sub, tt.sid, tt.jti, tt.iat, got, tt.want)
			}
		})
	}
	if got := s.Len(); got != 6 {
		t.Errorf("Len() = %d, want 6", got)
	}
}

// Ids longer than maxInlineID bytes.
const (
	longSession = "session-0123456789abcdef0123456789abcdef"
	longUser    = "user-0123456789abcdef0123456789abcdef"
)

func TestRevocationSetGlobalCutoff(t *testing.T) {
	s := NewRevocationSet()
	if s.Revoked("", "alice", "", "", time.Time{}) {
		t.Fatal("an empty set revokes a token without iat")
	}
	s.Apply(Entry{Seq: 1, Kind: KindAll, At: feedT0, ExpiresAt: feedT0.Add(feedTTL)})
	tests := []struct {
		name string
		sub  string
		iat  time.Time
		want bool
	}{
		{"user token before", "alice", feedT0.Add(-time.Second), true},
		{"service token before", "", feedT0.Add(-time.Second), true},
		{"same second", "bob", feedT0.Truncate(time.Second), true},
		{"after", "alice", feedT0.Truncate(time.Second).Add(time.Second), false},
	}
	for _, tt := range tests {
		if got := s.Revoked("", tt.sub, "sid", "jti", tt.iat); got != tt.want {
			t.Errorf("%s: Revoked = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := s.Len(); got != 1 {
		t.Errorf("Len() = %d, want 1", got)
	}
}

func TestRevocationSetKeepsTheMostRestrictiveCutoff(t *testing.T) {
	early := Entry{Seq: 1, Kind: KindUser, Value: "alice", At: feedT0, ExpiresAt: feedT0.Add(feedTTL)}
	late := Entry{Seq: 2, Kind: KindUser, Value: "alice", At: feedT0.Add(time.Minute), ExpiresAt: feedT0.Add(time.Minute + feedTTL)}
	globalEarly, globalLate := early, late
	globalEarly.Kind, globalEarly.Value = KindAll, ""
	globalLate.Kind, globalLate.Value = KindAll, ""
	between := feedT0.Add(30 * time.Second).Truncate(time.Second)
	for _, order := range [][]Entry{{early, late}, {late, early}, {globalEarly, globalLate}, {globalLate, globalEarly}} {
		s := NewRevocationSet()
		for _, e := range order {
			s.Apply(e)
		}
		if !s.Revoked("", "alice", "", "", between) {
			t.Errorf("entries %s then %s: a token issued between the cut-offs is accepted", order[0].At, order[1].At)
		}
		if got := s.Len(); got != 1 {
			t.Errorf("entries %s then %s: Len() = %d, want 1", order[0].At, order[1].At, got)
		}
		// The merged cut-off lives until the later expiry.
		if n := s.Prune(early.ExpiresAt.Add(time.Second)); n != 0 {
			t.Errorf("Prune after the earlier expiry dropped %d entries, want 0", n)
		}
		if n := s.Prune(late.ExpiresAt.Add(time.Second)); n != 1 {
			t.Errorf("Prune after the later expiry dropped %d entries, want 1", n)
		}
	}
}

func TestRevocationSetSkipsWhatItDoesNotKnow(t *testing.T) {
	s := NewRevocationSet()
	for _, e := range []Entry{
		entry(1, "device", "phone-1"),   // a kind from a later version
		entry(2, KindSession, ""),       // a session without id
		entry(3, KindUser, ""),          // a cut-off without user
		entry(4, KindSession, "sess-1"), // the one that counts
	} {
		s.Apply(e)
	}
	if got := s.Len(); got != 1 {
		t.Errorf("Len() = %d, want 1", got)
	}
	if got := s.Skipped(); got != 3 {
		t.Errorf("Skipped() = %d, want 3", got)
	}
	if s.Revoked("", "", "phone-1", "phone-1", feedT0) || s.Revoked("", "", "", "", time.Time{}) {
		t.Error("a skipped entry revokes something")
	}
}

func TestRevocationSetPrune(t *testing.T) {
	s := NewRevocationSet()
	short := entry(1, KindSession, "short")
	short.ExpiresAt = feedT0.Add(time.Minute)
	renewed := entry(2, KindToken, "renewed")
	renewed.ExpiresAt = feedT0.Add(time.Minute)
	renewedLater := renewed
	renewedLater.Seq, renewedLater.ExpiresAt = 3, feedT0.Add(time.Hour)
	forever := entry(4, KindKey, "forever")
	forever.ExpiresAt = time.Time{}
	user := entry(5, KindUser, "alice")
	user.ExpiresAt = feedT0.Add(time.Minute)
	all := entry(6, KindAll, "")
	all.ExpiresAt = feedT0.Add(time.Minute)
	long := entry(8, KindSession, longSession)
	long.ExpiresAt = feedT0.Add(time.Minute)
	for _, e := range []Entry{short, renewed, renewedLater, forever, user, all, long} {
		s.Apply(e)
	}
	if n := s.Prune(feedT0.Add(time.Minute)); n != 0 {
		t.Errorf("Prune at the expiry itself dropped %d, want 0 (expired means before now)", n)
	}
	if n := s.Prune(feedT0.Add(2 * time.Minute)); n != 4 {
		t.Errorf("Prune dropped %d, want 4 (the sessions, the user cut-off, the global cut-off)", n)
	}
	if s.Revoked("", "alice", "short", "", feedT0.Add(-time.Hour)) || s.Revoked("", "", longSession, "", feedT0) {
		t.Error("pruned entries still revoke")
	}
	if !s.Revoked("", "", "", "renewed", feedT0) {
		t.Error("a token id whose later entry lives on was pruned")
	}
	if !s.Revoked("forever", "", "", "", feedT0) {
		t.Error("an entry without expiry was pruned")
	}
	if got := s.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
	// A revoked key is kept past its expiry: a cached token of a leaked
	// key with a far-off exp must stay refused.
	expiring := entry(7, KindKey, "leaked")
	expiring.ExpiresAt = feedT0.Add(time.Minute)
	s.Apply(expiring)
	s.Prune(feedT0.Add(24 * time.Hour))
	if !s.Revoked("leaked", "", "", "", feedT0) {
		t.Error("a revoked key was pruned; it must never be")
	}
}

func TestRevocationSetReset(t *testing.T) {
	s := NewRevocationSet()
	s.Apply(entry(1, KindSession, "old"))
	s.Apply(entry(2, KindAll, ""))
	s.Reset([]Entry{entry(7, KindSession, "new"), entry(8, KindUser, "alice"), entry(9, "future", "x")})
	if s.Revoked("", "", "old", "", feedT0.Add(time.Hour)) {
		t.Error("Reset kept an old session")
	}
	if s.Revoked("", "bob", "", "", feedT0.Add(-time.Hour)) {
		t.Error("Reset kept the old global cut-off")
	}
	if !s.Revoked("", "", "new", "", feedT0) || !s.Revoked("", "alice", "", "", feedT0.Add(-time.Hour)) {
		t.Error("Reset did not add the new entries")
	}
	if got := s.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
	if got := s.Skipped(); got != 1 {
		t.Errorf("Skipped() = %d, want 1", got)
	}
	s.Reset(nil)
	if got := s.Len(); got != 0 {
		t.Errorf("after Reset(nil): Len() = %d, want 0", got)
	}
	var zero RevocationSet // the zero value is usable
	zero.Apply(entry(1, KindToken, "t"))
	if !zero.Revoked("", "", "", "t", feedT0) {
		t.Error("the zero RevocationSet does not hold what was applied")
	}
}

func TestRevokedDoesNotAllocate(t *testing.T) {
	s := NewRevocationSet()
	s.Apply(entry(1, KindSession, "sess-1"))
	s.Apply(entry(2, KindUser, "alice"))
	s.Apply(entry(3, KindAll, ""))
	iat := feedT0.Add(time.Hour)
	if n := testing.AllocsPerRun(100, func() {
		s.Revoked("kid", "alice", "sess-2", "jti", iat)
		s.Revoked("kid", "alice", "sess-1", "jti", iat)
	}); n != 0 {
		t.Errorf("Revoked allocates %v times per run, want 0", n)
	}
}

// TestRevocationSetConcurrentUse is for the race detector.
func TestRevocationSetConcurrentUse(t *testing.T) {
	s := NewRevocationSet()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				v := strconv.Itoa(i % 50)
				switch w {
				case 0:
					s.Apply(entry(int64(i), KindSession, v))
				case 1:
					if i%100 == 0 {
						s.Reset([]Entry{entry(int64(i), KindUser, v)})
					}
					s.Prune(feedT0.Add(feedTTL + time.Duration(i%2)*time.Hour))
				default:
					s.Revoked("k", v, v, v, feedT0)
					s.Len()
				}
			}
		})
	}
	wg.Wait()
}

// TestRevocationSetFilterHasNoFalseNegatives checks that the filter in
// front of the maps never hides a value the set holds, as it grows, is
// reset and is pruned.
func TestRevocationSetFilterHasNoFalseNegatives(t *testing.T) {
	s := NewRevocationSet()
	kinds := []string{KindSession, KindToken, KindKey, KindUser}
	var live []Entry
	check := func(when string) {
		t.Helper()
		for _, e := range live {
			kid, sub, sid, jti := "", "", "", ""
			switch e.Kind {
			case KindSession:
				sid = e.Value
			case KindToken:
				jti = e.Value
			case KindKey:
				kid = e.Value
			case KindUser:
				sub = e.Value
			}
			if !s.Revoked(kid, sub, sid, jti, feedT0.Add(-time.Second)) {
				t.Fatalf("%s: %s %q is not revoked", when, e.Kind, e.Value)
			}
		}
	}
	for i := range 5000 { // many rebuilds as the filter fills up
		e := entry(int64(i+1), kinds[i%len(kinds)], fmt.Sprintf("v%d", i))
		if i%2 == 0 {
			e.ExpiresAt = feedT0.Add(time.Minute)
		}
		s.Apply(e)
		live = append(live, e)
	}
	check("after Apply")
	s.Prune(feedT0.Add(2 * time.Minute))
	kept := live[:0]
	for _, e := range live {
		if e.ExpiresAt.After(feedT0.Add(time.Minute)) {
			kept = append(kept, e)
		}
	}
	live = kept
	check("after Prune")
	for i := range 3000 { // refill past the filter's room
		e := entry(int64(10000+i), kinds[i%len(kinds)], fmt.Sprintf("w%d", i))
		s.Apply(e)
		live = append(live, e)
	}
	check("after refilling")
	s.Reset(live[:1000])
	live = live[:1000]
	check("after Reset")

	// Few values it does not hold get past the filter.
	passed := 0
	for i := range 10000 {
		if s.filter.mayHold(maphash.String(s.seed, fmt.Sprintf("absent-%d", i))) {
			passed++
		}
	}
	if passed > 500 {
		t.Errorf("the filter lets %d of 10000 absent values through, want at most 500", passed)
	}
}

func ExampleRevocationSet() {
	set := NewRevocationSet()
	at := time.Date(2026, 11, 22, 12, 0, 0, 500000000, time.UTC) // cut-offs have microseconds
	exp := at.Add(15*time.Minute + 30*time.Second)
	set.Apply(Entry{Seq: 1, Kind: KindSession, Value: "QKxW6", At: at, ExpiresAt: exp})
	set.Apply(Entry{Seq: 2, Kind: KindUser, Value: "alice", At: at, ExpiresAt: exp})

	iat := at.Truncate(time.Second)                                                     // iat has whole seconds
	fmt.Println(set.Revoked("kid-1", "bob", "QKxW6", "jti-1", iat))                     // its session was revoked
	fmt.Println(set.Revoked("kid-1", "alice", "sess-2", "jti-2", iat))                  // issued in the cut-off's second
	fmt.Println(set.Revoked("kid-1", "alice", "sess-3", "jti-3", iat.Add(time.Second))) // issued after the cut-off
	// Output:
	// true
	// true
	// false
}

// TestRevocationSetReportsNewKeys: what the follower tells the key set
// about: keys revoked by entries that the set did not hold before.
func TestRevocationSetReportsNewKeys(t *testing.T) {
	s := NewRevocationSet()
	if got := s.applyAll([]Entry{entry(1, KindKey, "k1"), entry(2, KindSession, "s1"), entry(3, KindKey, "k2"), entry(4, KindKey, "k1")}); !slices.Equal(got, []string{"k1", "k2"}) {
		t.Errorf("applyAll: got %q, want [k1 k2]", got)
	}
	if got := s.applyAll([]Entry{entry(5, KindKey, "k2"), entry(6, KindKey, "")}); got != nil {
		t.Errorf("applyAll of held and empty keys: got %q, want none", got)
	}
	if !s.apply(&Entry{Seq: 7, Kind: KindKey, Value: "k3"}) || s.apply(&Entry{Seq: 8, Kind: KindKey, Value: "k3"}) {
		t.Error("apply: want true for a new key, then false for it again")
	}
	if s.apply(&Entry{Seq: 9, Kind: KindSession, Value: "k4"}) {
		t.Error("apply of a session: got true, want false")
	}
	got := s.reset([]Entry{entry(1, KindKey, "k2"), entry(2, KindKey, "k5"), entry(3, KindKey, "k6")})
	if slices.Sort(got); !slices.Equal(got, []string{"k5", "k6"}) {
		t.Errorf("reset: got %q, want [k5 k6]", got)
	}
	if !s.Revoked("k5", "", "", "", feedT0) || s.Revoked("k1", "", "", "", feedT0) {
		t.Error("reset did not replace the keys")
	}
}
