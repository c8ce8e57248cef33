package redis_test

import (
	"fmt"
	"log"
	"log/slog"

	"github.com/keycard-auth/keycard/internal/redis"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// An auth server shares its login throttles through Redis and keeps
// throttling on its own while Redis is away.
func ExampleNewFallback() {
	client, err := redis.NewClient("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	p := throttle.Policy{Burst: 5}
	account := redis.NewFallback(
		redis.NewLimiter(client, p, redis.LimiterOptions{Prefix: "keycard:throttle:account:"}),
		throttle.NewMemory(p, nil),
		redis.FallbackOptions{
			Logger: slog.Default(),
			OnStateChange: func(degraded bool, reason error) {
				// Set a gauge here.
			},
		})

	// For the readiness detail:
	if degraded, reason := account.Degraded(); degraded {
		fmt.Println("login throttle degraded:", reason)
	}
}
