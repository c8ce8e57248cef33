// Command scalegen fills a Keycard PostgreSQL database with users and
// sessions for the scale benchmark (bench/scale.sh): it brings the
// database up to the numbers asked for, adding only what is missing, with
// COPY through pgx, never through the API.
//
//	scalegen -db postgres://…/keycard_scale -users 10000000 -sessions 1000000
//
// The database must be migrated first (keycard migrate --store URL).
// Users are scale-user-00000000, scale-user-00000001, … with a password
// hash no password matches ("!"): nobody can sign in as them. Each
// session belongs to a user picked at random, is live (created now, idle
// timeout 7 days, expiry in 2100) and has one live refresh token with a
// random id and secret hash, as a login leaves them. Sessions and tokens
// have random 22-character ids like the server's. The seed rows are
// counted by their id prefix, so the server's own rows (bench's users and
// sessions) do not count.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	db := flag.String("db", "", "PostgreSQL URL of a migrated Keycard database")
	users := flag.Int("users", 10_000, "users the database should hold (seeded ones)")
	sessions := flag.Int("sessions", 10_000, "live sessions the database should hold (seeded ones), each with a live refresh token")
	flag.Parse()
	if *db == "" || *users < 1 || *sessions < 0 {
		fmt.Fprintln(os.Stderr, "usage: scalegen -db URL -users N -sessions M (N ≥ 1)")
		os.Exit(2)
	}
	if err := run(context.Background(), *db, *users, *sessions); err != nil {
		log.Fatal(err)
	}
}

// userID is the id (and username) of the i-th seeded user.
func userID(i int) string { return fmt.Sprintf("scale-user-%08d", i) }

// sessionPrefix marks seeded sessions and refresh tokens.
const sessionPrefix = "scale-"

func run(ctx context.Context, url string, wantUsers, wantSessions int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var haveUsers, haveSessions int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM users WHERE id LIKE 'scale-user-%'`).Scan(&haveUsers); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE id LIKE 'scale-%'`).Scan(&haveSessions); err != nil {
		return err
	}
	now := time.Now().UTC()
	if wantUsers > haveUsers {
		start := time.Now()
		i := haveUsers
		n, err := conn.CopyFrom(ctx, pgx.Identifier{"users"},
			[]string{"id", "username", "username_normalized", "password_hash", "created_at", "updated_at", "password_changed_at"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i >= wantUsers {
					return nil, nil
				}
				id := userID(i)
				i++
				return []any{id, id, id, "!", now, now, now}, nil
			}))
		if err != nil {
			return fmt.Errorf("copying users: %w", err)
		}
		log.Printf("users: %d added (now %d) in %v", n, wantUsers, time.Since(start).Round(time.Millisecond))
	} else {
		log.Printf("users: %d already", haveUsers)
		wantUsers = haveUsers
	}
	if wantSessions <= haveSessions {
		log.Printf("sessions: %d already", haveSessions)
		return analyze(ctx, conn)
	}
	// Sessions and their refresh tokens in one transaction, so that no
	// session is left without its token.
	start := time.Now()
	add := wantSessions - haveSessions
	rng := mrand.New(mrand.NewPCG(uint64(now.UnixNano()), uint64(haveSessions)))
	ids := make([]string, add)
	for i := range ids {
		ids[i] = sessionPrefix + randomID()
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	const idle = 7 * 24 * time.Hour
	expires := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sessions"},
		[]string{"id", "user_id", "created_at", "last_used_at", "idle_timeout", "expires_at", "auth_time"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i >= len(ids) {
				return nil, nil
			}
			row := []any{ids[i], userID(rng.IntN(wantUsers)), now, now, idle.Microseconds(), expires, now}
			i++
			return row, nil
		})); err != nil {
		return fmt.Errorf("copying sessions: %w", err)
	}
	i = 0
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"refresh_tokens"},
		[]string{"id", "session_id", "secret_hash", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i >= len(ids) {
				return nil, nil
			}
			hash := make([]byte, 32)
			rand.Read(hash)
			row := []any{sessionPrefix + randomID(), ids[i], hash, now}
			i++
			return row, nil
		})); err != nil {
		return fmt.Errorf("copying refresh tokens: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	log.Printf("sessions: %d added with their refresh tokens (now %d) in %v", add, wantSessions, time.Since(start).Round(time.Millisecond))
	return analyze(ctx, conn)
}

// analyze updates the planner's statistics, as autovacuum would soon.
func analyze(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `ANALYZE users; ANALYZE sessions; ANALYZE refresh_tokens`)
	return err
}

// randomID is 16 random bytes as unpadded base64url, like keycard.NewID.
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
