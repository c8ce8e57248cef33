package cliauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func creds(issuer, client, access string) *Credentials {
	return &Credentials{Issuer: issuer, ClientID: client, Token: Token{AccessToken: access, RefreshToken: "r-" + access, Expiry: time.Now().Add(time.Hour)}}
}

// TestStoreFileModes: the directory is made 0700, the file is 0600 after
// every write, and no temporary file is left behind.
func TestStoreFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix file modes")
	}
	dir := filepath.Join(t.TempDir(), "config", "keycard")
	s := &Store{Path: filepath.Join(dir, "credentials.json")}
	if err := s.Put(creds("https://a", "c", "at1")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, s.Path: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	// A file made readable by others is refused, not read.
	if err := os.Chmod(s.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("https://a", "c"); err == nil || !strings.Contains(err.Error(), "read by others") {
		t.Errorf("a 0644 file: got %v, want a refusal", err)
	}
	if err := os.Chmod(s.Path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Update("https://a", "c", func(c *Credentials) (*Credentials, error) { c.AccessToken = "at2"; return c, nil }); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "credentials.json" {
		t.Errorf("the directory holds %v, want credentials.json alone", entries)
	}
	if fi, _ := os.Stat(s.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("after an update: mode %04o", fi.Mode().Perm())
	}
}

// TestStoreLogins: logins by issuer and client, the latest the default,
// updates and deletions.
func TestStoreLogins(t *testing.T) {
	s := &Store{Path: filepath.Join(t.TempDir(), "credentials.json")}
	if _, err := s.Get("", ""); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("an empty store: got %v, want ErrNotSignedIn", err)
	}
	for _, c := range []*Credentials{creds("https://a", "c1", "a1"), creds("https://b", "c1", "b1"), creds("https://a", "c2", "a2")} {
		if err := s.Put(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ issuer, client, want string }{
		{"", "", "a2"}, {"https://a", "c1", "a1"}, {"https://b", "c1", "b1"}, {"https://a", "c2", "a2"},
	} {
		c, err := s.Get(tc.issuer, tc.client)
		if err != nil || c.AccessToken != tc.want {
			t.Errorf("Get(%q, %q): got %v, %v; want %s", tc.issuer, tc.client, c, err, tc.want)
		}
	}
	if _, err := s.Get("https://b", "c2"); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("Get of another pair: got %v", err)
	}
	failed := errors.New("refresh failed")
	if err := s.Update("https://a", "c1", func(c *Credentials) (*Credentials, error) { c.AccessToken = "lost"; return nil, failed }); !errors.Is(err, failed) {
		t.Errorf("a failed update: got %v", err)
	}
	if c, _ := s.Get("https://a", "c1"); c.AccessToken != "a1" {
		t.Errorf("a failed update changed the login: %+v", c)
	}
	// Deleting the default leaves no default.
	if err := s.Update("", "", func(*Credentials) (*Credentials, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("https://a", "c2"); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("after deleting: got %v", err)
	}
	if _, err := s.Get("", ""); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("the default after deleting it: got %v", err)
	}
	if c, err := s.Get("https://b", "c1"); err != nil || c.AccessToken != "b1" {
		t.Errorf("the others stay: %v, %v", c, err)
	}
}

// TestStoreUpdatesTakeTurns: concurrent updates (commands refreshing at
// once) each see the one before, so none is lost; a stale lock left by a
// crash is taken over.
func TestStoreUpdatesTakeTurns(t *testing.T) {
	s := &Store{Path: filepath.Join(t.TempDir(), "credentials.json"), LockWait: 30 * time.Second}
	if err := s.Put(creds("https://a", "c", "0")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	const n = 20
	for range n {
		wg.Go(func() {
			err := s.Update("https://a", "c", func(c *Credentials) (*Credentials, error) {
				var i int
				fmt.Sscan(c.AccessToken, &i)
				c.AccessToken = fmt.Sprint(i + 1)
				return c, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c, _ := s.Get("https://a", "c"); c.AccessToken != fmt.Sprint(n) {
		t.Errorf("after %d concurrent updates the count is %s", n, c.AccessToken)
	}
	lock := s.Path + ".lock"
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(creds("https://a", "c", "x")); err != nil {
		t.Errorf("with a stale lock: %v", err)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock is left behind: %v", err)
	}
	// A live lock makes a writer wait, then give up.
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	quick := &Store{Path: s.Path, LockWait: 200 * time.Millisecond}
	if err := quick.Put(creds("https://a", "c", "y")); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("with a live lock: got %v, want a lock error", err)
	}
}

func TestDefaultStorePath(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("XDG_CONFIG_HOME is Linux's")
	}
	t.Setenv("XDG_CONFIG_HOME", "/tmp/cfg")
	if p, err := DefaultStorePath(); err != nil || p != "/tmp/cfg/keycard/credentials.json" {
		t.Errorf("got %q, %v", p, err)
	}
}
