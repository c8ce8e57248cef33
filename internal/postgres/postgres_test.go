package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
	"github.com/keycard-auth/keycard/internal/storetest"
)

// open opens a fresh database of its own for the test.
func open(t *testing.T) (*postgres.DB, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	db, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, url
}

func TestStores(t *testing.T) {
	pgtest.AdminURL(t) // skip the whole suite, not each test, without a server
	storetest.Run(t, func(t *testing.T) keycard.Stores {
		db, _ := open(t)
		return db.Stores()
	})
}

// TestMigrateRace starts several instances on one fresh database at once:
// the advisory lock lets one migrate while the others wait, and all of them
// open.
func TestMigrateRace(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			db, err := postgres.Open(context.Background(), url, postgres.Options{})
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	db, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Version(context.Background()); err != nil || v != postgres.SchemaVersion() {
		t.Errorf("Version = %d, %v; want %d", v, err, postgres.SchemaVersion())
	}
	// Each migration was applied once.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != postgres.SchemaVersion() {
		t.Errorf("schema_migrations has %d rows, %v; want %d", rows, err, postgres.SchemaVersion())
	}
}

// TestNewerSchemaRefused checks that a binary does not run on a schema it
// does not know.
func TestNewerSchemaRefused(t *testing.T) {
	db, url := open(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')`, postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err == nil {
		t.Error("Migrate on a newer schema: got nil error, want a refusal")
	}
}

// TestListenRevocations checks that an append made through one DB wakes
// the listener of another, as between two auth server instances.
func TestListenRevocations(t *testing.T) {
	a, url := open(t)
	b, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.ListenRevocations(ctx, func() { woke <- struct{}{} })
	}()
	defer func() { cancel(); <-done }()
	// The first call says "listening; look at the feed".
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("no call after LISTEN")
	}
	if err := a.Stores().Revocations.AddRevocation(context.Background(), &keycard.Revocation{Kind: keycard.RevokeToken, Value: "jti", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("no call after another DB appended to the feed")
	}
}

// TestListenReconnects kills the listener's connection: it reconnects and
// calls fn again, and notifications reach it afterwards.
func TestListenReconnects(t *testing.T) {
	db, url := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.ListenRevocations(ctx, func() { woke <- struct{}{} })
	}()
	defer func() { cancel(); <-done }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-woke:
		case <-time.After(15 * time.Second):
			t.Fatalf("no call %s", what)
		}
	}
	wait("after LISTEN")
	if n := terminate(t, url, `query ILIKE 'LISTEN%'`); n != 1 {
		t.Fatalf("terminated %d listening connections, want 1", n)
	}
	wait("after reconnecting")
	if err := db.Stores().Revocations.AddRevocation(context.Background(), &keycard.Revocation{Kind: keycard.RevokeToken, Value: "jti", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	wait("after an append on the new connection")
}

// terminate ends the server processes of the other connections to the
// database at url that match the SQL condition on pg_stat_activity, and
// returns how many.
func terminate(t *testing.T, url, cond string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND `+cond).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPoolRecovers terminates every pooled connection: queries work again
// once the pool has replaced them.
func TestPoolRecovers(t *testing.T) {
	db, url := open(t)
	ctx := context.Background()
	s := db.Stores()
	// Fill the pool with several connections.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.Revocations.LastRevocationSeq(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sess := &keycard.Session{ID: "s", UserID: "u", CreatedAt: t0, LastUsedAt: t0, IdleTimeout: time.Hour, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := s.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: "t1", SecretHash: []byte("h1"), CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	if n := terminate(t, url, `application_name = 'keycard'`); n == 0 {
		t.Fatal("no pooled connection to terminate")
	}
	deadline := time.Now().Add(10 * time.Second)
	failures := 0
	appended, rotated := false, false
	for {
		// First a rotation (managed by hand), then an append (through
		// update): each meets dead connections first.
		var err error
		if !rotated {
			_, err = s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{TokenID: "t1", SecretHash: []byte("h1"), Now: t0.Add(time.Minute),
				Successor: keycard.RefreshToken{ID: "t2", SecretHash: []byte("h2")}})
			rotated = err == nil
		}
		if err == nil && !appended {
			err = s.Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: keycard.RevokeToken, Value: "after", At: time.Now()})
			appended = err == nil
		}
		if appended && rotated {
			break
		}
		failures++
		if time.Now().After(deadline) {
			t.Fatalf("store still failing after the connections were terminated: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d failed attempts before the pool recovered", failures)
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping after recovery: %v", err)
	}
}

// TestUnstorableText sends what PostgreSQL refuses in text but an HTTP
// client can put in a client_id, a path or a header: NUL bytes and invalid
// UTF-8. Lookups find nothing and writes are EINVALID, never an internal
// error; descriptive fields are cleaned instead.
func TestUnstorableText(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	s := db.Stores()
	for _, bad := range []string{"a\x00b", "\xff\xfe", "caf\xc3"} {
		if _, err := s.Clients.Client(ctx, bad); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("Client(%q) = %v, want ENOTFOUND", bad, err)
		}
		if _, err := s.Users.UserByUsername(ctx, bad); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("UserByUsername(%q) = %v, want ENOTFOUND", bad, err)
		}
		if _, err := s.Sessions.Session(ctx, bad); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("Session(%q) = %v, want ENOTFOUND", bad, err)
		}
		if _, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{TokenID: bad, SecretHash: []byte("h"), Now: time.Now()}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Errorf("RotateRefreshToken(%q) = %v, want EUNAUTHORIZED", bad, err)
		}
		if ok, err := s.Revocations.HasRevocation(ctx, keycard.RevokeToken, bad); ok || err != nil {
			t.Errorf("HasRevocation(%q) = %v, %v; want false, nil", bad, ok, err)
		}
		if _, err := s.Users.ListUsers(ctx, keycard.UserFilter{Prefix: bad}); keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("ListUsers(prefix %q) = %v, want EINVALID", bad, err)
		}
		if err := s.Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: keycard.RevokeToken, Value: bad, At: time.Now()}); keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("AddRevocation(%q) = %v, want EINVALID", bad, err)
		}
		u := &keycard.User{ID: "u-" + bad, Username: bad, NormalizedUsername: bad, PasswordHash: "h"}
		if err := s.Users.CreateUser(ctx, u); keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("CreateUser(%q) = %v, want EINVALID", bad, err)
		}
		unstorableGrants(t, s, bad)
	}
	// A user agent from a request is kept, cleaned.
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u1", Username: "u1", NormalizedUsername: "u1", PasswordHash: "h", CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sess := &keycard.Session{ID: "s1", UserID: u.ID, CreatedAt: now, LastUsedAt: now, UserAgent: "curl\x00/\xff8", IdleTimeout: time.Hour, ExpiresAt: now.Add(time.Hour)}
	if err := s.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: "t1", SecretHash: []byte("h"), CreatedAt: now}, nil); err != nil {
		t.Fatalf("CreateSession(bad user agent): %v", err)
	}
	if got, err := s.Sessions.Session(ctx, sess.ID); err != nil || got.UserAgent != "curl/\uFFFD8" {
		t.Errorf("stored user agent = %q, %v; want %q", got.UserAgent, err, "curl/\uFFFD8")
	}
	// A session id that cannot be stored excepts nothing.
	if ids, err := s.Users.ChangePassword(ctx, u.ID, "h2", "\xff", now); err != nil || len(ids) != 1 || ids[0] != sess.ID {
		t.Errorf("ChangePassword(keep %q) = %v, %v; want [%s] revoked", "\xff", ids, err, sess.ID)
	}
	if err := s.Audit.AppendAudit(ctx, &keycard.AuditEvent{Time: now, Type: "x", UserAgent: "\xff", Detail: []byte(`{"a":"\u0000"}`)}); err != nil {
		t.Errorf("AppendAudit(bad user agent, escaped NUL in detail): %v", err)
	}
	// The other fields of a code are the caller's input: EINVALID.
	s2 := &keycard.Session{ID: "s2", UserID: u.ID, CreatedAt: now, LastUsedAt: now, IdleTimeout: time.Hour, ExpiresAt: now.Add(time.Hour)}
	if err := s.Sessions.CreateSession(ctx, s2, &keycard.RefreshToken{ID: "t2", SecretHash: []byte("h"), CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	c := &keycard.Client{ID: "c1", Name: "c1", SecretHash: []byte("h"), CreatedAt: now, UpdatedAt: now}
	if err := s.Clients.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	code := &keycard.AuthCode{ID: "code", SecretHash: []byte("h"), ClientID: c.ID, UserID: u.ID, SessionID: s2.ID,
		RedirectURI: "https://app.example/\xff", Nonce: "n\x00", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.Grants.CreateAuthCode(ctx, code); keycard.ErrorCode(err) != keycard.EINVALID {
		t.Errorf("CreateAuthCode(unstorable redirect URI) = %v, want EINVALID", err)
	}
}

// unstorableGrants is TestUnstorableText for the OpenID Connect methods.
func unstorableGrants(t *testing.T, s keycard.Stores, bad string) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	lookups := []struct {
		name string
		call func() error
	}{
		{"AuthCode", func() error { _, err := s.Grants.AuthCode(ctx, bad); return err }},
		{"DeviceCode", func() error { _, err := s.Grants.DeviceCode(ctx, bad); return err }},
		{"DeviceCodeByUserCode", func() error { _, err := s.Grants.DeviceCodeByUserCode(ctx, bad, now); return err }},
		{"PollDeviceCode", func() error { _, err := s.Grants.PollDeviceCode(ctx, bad, now); return err }},
		{"DecideDeviceCode", func() error {
			return s.Grants.DecideDeviceCode(ctx, &keycard.DeviceCode{ID: bad, UserID: bad, SessionID: bad}, keycard.DeviceApproved, now)
		}},
		{"Consent", func() error { _, err := s.Grants.Consent(ctx, bad, bad); return err }},
		{"SaveConsent", func() error {
			return s.Grants.SaveConsent(ctx, &keycard.Consent{UserID: bad, ClientID: bad, CreatedAt: now, UpdatedAt: now})
		}},
		{"RevokeConsent", func() error { _, err := s.Grants.RevokeConsent(ctx, bad, bad, now); return err }},
		{"PushedRequest", func() error { _, err := s.Grants.PushedRequest(ctx, bad, now); return err }},
		{"UpdateClient", func() error { _, err := s.Clients.UpdateClient(ctx, &keycard.Client{ID: bad, Name: "n"}); return err }},
		{"Redeem", func() error {
			_, err := s.Grants.Redeem(ctx, keycard.RedeemRequest{Kind: keycard.GrantKindAuthCode, ID: bad, At: now,
				Session: &keycard.Session{ID: "g", UserID: "u", ParentID: "p", ExpiresAt: now}})
			return err
		}},
		{"CreateSession(parent)", func() error {
			return s.Sessions.CreateSession(ctx, &keycard.Session{ID: "g", UserID: "u", ParentID: bad, ExpiresAt: now}, nil, nil)
		}},
		{"CreateAuthCode(client)", func() error {
			return s.Grants.CreateAuthCode(ctx, &keycard.AuthCode{ID: "c", SecretHash: []byte("h"), ClientID: bad, UserID: "u", SessionID: "s"})
		}},
		{"CreateAuthCode(session)", func() error {
			return s.Grants.CreateAuthCode(ctx, &keycard.AuthCode{ID: "c", SecretHash: []byte("h"), ClientID: "c", UserID: "u", SessionID: bad})
		}},
	}
	for _, l := range lookups {
		if err := l.call(); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("%s(%q) = %v, want ENOTFOUND", l.name, bad, err)
		}
	}
	if got, err := s.Grants.ListConsents(ctx, bad); err != nil || len(got) != 0 {
		t.Errorf("ListConsents(%q) = %v, %v; want none", bad, got, err)
	}
	if got, err := s.Sessions.RevokeClientSessions(ctx, bad, bad, now, "x"); err != nil || len(got) != 0 {
		t.Errorf("RevokeClientSessions(%q) = %v, %v; want none", bad, got, err)
	}
	if err := s.Grants.DeletePushedRequest(ctx, bad); err != nil {
		t.Errorf("DeletePushedRequest(%q) = %v, want nil", bad, err)
	}
	writes := []struct {
		name string
		call func() error
	}{
		{"CreateAuthCode(id)", func() error {
			return s.Grants.CreateAuthCode(ctx, &keycard.AuthCode{ID: bad, SecretHash: []byte("h"), ClientID: "c", UserID: "u", SessionID: "s"})
		}},
		{"CreateDeviceCode(user code)", func() error {
			return s.Grants.CreateDeviceCode(ctx, &keycard.DeviceCode{ID: "d", SecretHash: []byte("h"), UserCode: bad, ClientID: "c", State: keycard.DevicePending})
		}},
		{"CreatePushedRequest(id)", func() error {
			return s.Grants.CreatePushedRequest(ctx, &keycard.PushedRequest{ID: bad, ClientID: "c", Params: []byte(`{}`)})
		}},
		{"CreateSession(client)", func() error {
			return s.Sessions.CreateSession(ctx, &keycard.Session{ID: "g", UserID: "u", ParentID: "p", ClientID: bad, ExpiresAt: now}, nil, nil)
		}},
	}
	for _, w := range writes {
		if err := w.call(); keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("%s(%q) = %v, want EINVALID", w.name, bad, err)
		}
	}
}

// TestFeedFollowerNeverSkips appends from many goroutines on two instances
// while a follower reads the feed after its cursor, as verifiers do: every
// page must start right after the cursor, so no entry is ever skipped.
func TestFeedFollowerNeverSkips(t *testing.T) {
	a, url := open(t)
	b, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for i := range writers {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Go(func() {
			for j := range each {
				r := &keycard.Revocation{Kind: keycard.RevokeToken, Value: fmt.Sprintf("w%d-%d", i, j), At: time.Now()}
				if err := db.Stores().Revocations.AddRevocation(ctx, r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()
	var cursor int64
	seen := map[string]bool{}
	for done := false; !done; {
		select {
		case <-writing:
			done = true // one more read after the last commit
		default:
		}
		revs, err := b.Stores().Revocations.Revocations(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range revs {
			if r.Seq != cursor+1 {
				t.Fatalf("follower at %d got seq %d next: skipped %d", cursor, r.Seq, r.Seq-cursor-1)
			}
			cursor = r.Seq
			seen[r.Value] = true
		}
		if len(revs) == 7 {
			done = false // more to read
		}
	}
	if len(seen) != writers*each {
		t.Errorf("follower saw %d entries, want %d", len(seen), writers*each)
	}
}

// TestRotateAcrossInstances rotates one refresh token from two instances
// at once: exactly one rotation happens and every caller gets its
// successor.
func TestRotateAcrossInstances(t *testing.T) {
	a, url := open(t)
	b, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := a.Stores().Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
	sess := &keycard.Session{ID: "s", UserID: "u", CreatedAt: t0, LastUsedAt: t0, IdleTimeout: time.Hour, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := a.Stores().Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	const n = 40
	results := make([]*keycard.RotateResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Go(func() {
			_, nid, nhash, _ := keycard.NewRefreshToken(rand.Reader)
			<-start
			results[i], errs[i] = db.Stores().Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
				TokenID: tid, SecretHash: hash, Now: t0.Add(time.Minute), Grace: 10 * time.Second,
				Successor: keycard.RefreshToken{ID: nid, SecretHash: nhash}, SuccessorSealed: []byte(nid),
			})
		})
	}
	close(start)
	wg.Wait()
	rotated, successors := 0, map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("rotation %d: %v", i, errs[i])
		}
		if results[i].Outcome == keycard.Rotated {
			rotated++
		}
		successors[results[i].Successor.ID] = true
	}
	if rotated != 1 || len(successors) != 1 {
		t.Errorf("%d rotations, %d distinct successors; want 1 and 1", rotated, len(successors))
	}
}

// TestOpenErrorsHideThePassword opens bad URLs that carry a password: the
// errors, which reach logs and terminals, must not repeat it.
func TestOpenErrorsHideThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://keycard:s3cret@127.0.0.1:1/keycard?sslmode=disable",  // nothing listens
		"postgres://keycard:s3cret@127.0.0.1:5432/keycard?sslmode=bogus", // unparsable
		"postgres://keycard:s3cret@[::1/keycard",                         // unparsable
	} {
		db, err := postgres.Open(ctx, url, postgres.Options{})
		if err == nil {
			db.Close()
			t.Errorf("Open(%s): got nil error", url)
			continue
		}
		t.Logf("Open: %v", err)
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open error repeats the password: %v", err)
		}
	}
}
