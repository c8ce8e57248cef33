package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
)

// TestReplayCacheShared: an id used through one ReplayCache is a replay
// to another on the same Redis (another instance), until it expires.
func TestReplayCacheShared(t *testing.T) {
	c := testClient(t)
	prefix := testPrefix(t, c)
	a := NewReplayCache(c, ReplayOptions{Prefix: prefix})
	b := NewReplayCache(c, ReplayOptions{Prefix: prefix})
	now := time.Now()
	if !a.Use("jti-1", now, now.Add(time.Minute)) {
		t.Fatal("a new id refused")
	}
	if b.Use("jti-1", now, now.Add(time.Minute)) {
		t.Error("an id used on instance a accepted on instance b")
	}
	if a.Use("jti-1", now, now.Add(time.Minute)) {
		t.Error("an id accepted twice on the same instance")
	}
	if !b.Use("jti-2", now, now.Add(time.Minute)) {
		t.Error("another id refused")
	}
	// Redis forgets the id when its proof expires.
	ttl, err := c.PTTL(context.Background(), a.Key("jti-1")).Result()
	if err != nil || ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("the key's TTL is %v (%v), want the proof's remaining minute", ttl, err)
	}
	if a.Degraded() || b.Degraded() {
		t.Error("degraded with Redis up")
	}
}

// TestReplayCacheFallback: with Redis unreachable, ids are checked in the
// instance's own cache, which still refuses a replay there.
func TestReplayCacheFallback(t *testing.T) {
	c, err := NewClient("redis://127.0.0.1:1/0") // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := NewReplayCache(c, ReplayOptions{Local: dpop.NewReplayCache(100)})
	now := time.Now()
	if !r.Use("jti-1", now, now.Add(time.Minute)) {
		t.Fatal("a new id refused while Redis is down")
	}
	if !r.Degraded() {
		t.Error("not degraded with Redis down")
	}
	if r.Use("jti-1", now, now.Add(time.Minute)) {
		t.Error("a replay accepted while Redis is down")
	}
}

// BenchmarkReplayCacheRedis is the cost of the shared replay check: one
// SET NX round trip to the test Redis per proof.
//
//	KEYCARD_TEST_REDIS=redis://127.0.0.1:6379/0 go test -run '^$' -bench ReplayCacheRedis ./internal/redis/
func BenchmarkReplayCacheRedis(b *testing.B) {
	c := testClient(b)
	r := NewReplayCache(c, ReplayOptions{Prefix: testPrefix(b, c)})
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !r.Use("proof-"+strconv.Itoa(i), now, now.Add(2*time.Second)) {
			b.Fatal("a new id refused")
		}
		i++
	}
}
