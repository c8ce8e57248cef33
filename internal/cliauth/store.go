package cliauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// ErrNotSignedIn: the credentials file has no login for the issuer and
// client asked for (or no default login).
var ErrNotSignedIn = errors.New("cliauth: not signed in")

// Credentials are one login's tokens, kept in the credentials file.
type Credentials struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// Subject and Username are who signed in, from the ID token.
	Subject  string `json:"sub,omitempty"`
	Username string `json:"preferred_username,omitempty"`
	Token
	UpdatedAt time.Time `json:"updated_at"`
}

// credentialsFile is the file's content: the logins by issuer and client,
// and which one is the default (the latest login).
type credentialsFile struct {
	Default string                  `json:"default,omitempty"`
	Logins  map[string]*Credentials `json:"logins"`
}

// loginKey is a login's key in the file.
func loginKey(issuer, clientID string) string { return issuer + " " + clientID }

// Store is the credentials file: a JSON file only its owner may read
// (0600, in a directory made 0700), written whole to a temporary file
// that is renamed over it, so that a reader never sees half a file and a
// rotated refresh token is never lost to a crash. Changes hold a lock
// file beside it, so that two commands that refresh at once take turns.
type Store struct {
	// Path is the file; DefaultStorePath when empty.
	Path string
	// LockWait bounds the wait for another command's lock; 60 seconds
	// when zero. A lock older than staleLock is taken to be left over
	// from a crash and removed.
	LockWait time.Duration
}

// staleLock is the age at which a lock file is taken to be left over
// from a crash: longer than any command holds it (a refresh is bounded
// by DefaultHTTPTimeout).
const staleLock = 2 * time.Minute

// DefaultStorePath returns os.UserConfigDir()/keycard/credentials.json:
// $XDG_CONFIG_HOME or ~/.config on Linux, ~/Library/Application Support
// on macOS, %AppData% on Windows.
func DefaultStorePath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("cliauth: %w", err)
	}
	return filepath.Join(dir, "keycard", "credentials.json"), nil
}

func (s *Store) path() (string, error) {
	if s.Path != "" {
		return s.Path, nil
	}
	return DefaultStorePath()
}

// read reads the file; a missing file is an empty one. On Unix a file
// that others may read is refused, as ssh refuses such keys: its tokens
// may have been read.
func (s *Store) read() (*credentialsFile, error) {
	path, err := s.path()
	if err != nil {
		return nil, err
	}
	f := &credentialsFile{Logins: map[string]*Credentials{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	} else if err != nil {
		return nil, fmt.Errorf("cliauth: %w", err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("cliauth: %s may be read by others (mode %04o): its tokens may be known; sign out, remove it, sign in again", path, fi.Mode().Perm())
		}
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("cliauth: %s: %w", path, err)
	}
	if f.Logins == nil {
		f.Logins = map[string]*Credentials{}
	}
	return f, nil
}

// write replaces the file with f: a temporary file of mode 0600 in the
// same directory, synced, then renamed over it.
func (s *Store) write(f *credentialsFile) error {
	path, err := s.path()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.tmp")
	if err != nil {
		return fmt.Errorf("cliauth: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("cliauth: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("cliauth: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cliauth: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cliauth: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cliauth: %w", err)
	}
	return nil
}

// lock takes the lock file beside the credentials file, making the
// directory (0700) when it does not exist, and returns its release.
func (s *Store) lock() (func(), error) {
	path, err := s.path()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cliauth: %w", err)
	}
	wait := s.LockWait
	if wait <= 0 {
		wait = 60 * time.Second
	}
	name := path + ".lock"
	deadline := time.Now().Add(wait)
	for {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(name) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cliauth: %w", err)
		}
		if fi, err := os.Stat(name); err == nil && time.Since(fi.ModTime()) > staleLock {
			os.Remove(name) // left over from a crash
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("cliauth: %s is locked by another keycard command; remove it if none runs", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pick returns the key of the login for issuer and clientID, or the
// default login's when both are empty.
func (f *credentialsFile) pick(issuer, clientID string) (string, error) {
	key := loginKey(issuer, clientID)
	if issuer == "" && clientID == "" {
		key = f.Default
	}
	if _, ok := f.Logins[key]; !ok || key == "" {
		if issuer == "" && clientID == "" {
			return "", fmt.Errorf("%w: run keycard login first", ErrNotSignedIn)
		}
		return "", fmt.Errorf("%w at %s with client %s: run keycard login first", ErrNotSignedIn, issuer, clientID)
	}
	return key, nil
}

// Get returns the login for issuer and clientID, or the default login
// (the latest) when both are empty; ErrNotSignedIn when there is none.
func (s *Store) Get(issuer, clientID string) (*Credentials, error) {
	f, err := s.read()
	if err != nil {
		return nil, err
	}
	key, err := f.pick(issuer, clientID)
	if err != nil {
		return nil, err
	}
	return f.Logins[key], nil
}

// Put stores c, replacing the login of its issuer and client, and makes
// it the default.
func (s *Store) Put(c *Credentials) error {
	return s.change(func(f *credentialsFile) error {
		key := loginKey(c.Issuer, c.ClientID)
		f.Logins[key], f.Default = c, key
		return nil
	})
}

// change runs fn on the file's content, holding the lock throughout, and
// writes what fn left unless it fails.
func (s *Store) change(fn func(*credentialsFile) error) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	f, err := s.read()
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	return s.write(f)
}

// Update runs fn on the login for issuer and clientID (or the default),
// holding the lock throughout, and stores what it returns: a changed
// login, or nil to delete it. fn may call the server (a refresh): a
// second command waits, then sees the first one's result. An error of fn
// leaves the file as it was.
func (s *Store) Update(issuer, clientID string, fn func(*Credentials) (*Credentials, error)) error {
	return s.change(func(f *credentialsFile) error {
		key, err := f.pick(issuer, clientID)
		if err != nil {
			return err
		}
		old := *f.Logins[key]
		c, err := fn(&old)
		if err != nil {
			return err
		}
		if c == nil {
			delete(f.Logins, key)
			if f.Default == key {
				f.Default = ""
			}
		} else {
			f.Logins[key] = c
		}
		return nil
	})
}
