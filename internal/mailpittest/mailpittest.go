// Package mailpittest starts Mailpit (github.com/axllent/mailpit), a real
// SMTP server that keeps what it receives and shows it through an HTTP
// API, for the tests that send mail. Without the mailpit binary those
// tests skip, unless KEYCARD_TEST_MAIL=1 (CI), which makes them fail.
// Install it with go install github.com/axllent/mailpit@v1.33.1.
package mailpittest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Version is the Mailpit release the tests and CI use.
const Version = "v1.33.1"

// Wait bounds the waits of the helpers: for Mailpit to start, and for a
// message to arrive. It is generous: the machine may be loaded.
const Wait = 60 * time.Second

// Server is a running Mailpit.
type Server struct {
	// SMTPAddr is its SMTP address (host:port, on loopback).
	SMTPAddr string
	// API is the base URL of its HTTP API.
	API string
}

// Path returns the mailpit executable, skipping (or failing, with
// KEYCARD_TEST_MAIL=1) the test when there is none.
func Path(t testing.TB) string {
	t.Helper()
	candidates := []string{"mailpit"}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		candidates = append(candidates, filepath.Join(strings.TrimSpace(string(gopath)), "bin", "mailpit"))
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KEYCARD_TEST_MAIL") == "1" {
		t.Fatal("KEYCARD_TEST_MAIL=1 but no mailpit: go install github.com/axllent/mailpit@" + Version)
	}
	t.Skip("no mailpit: go install github.com/axllent/mailpit@" + Version + " to run the mail tests (KEYCARD_TEST_MAIL=1 makes them required)")
	return ""
}

// freePort returns a loopback address with a port that was free a moment
// ago (Mailpit cannot be told to pick one and report it).
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Start starts Mailpit on free loopback ports with a database in a
// temporary directory, with extra flags (such as TLS or authentication
// settings), and stops it when the test ends.
func Start(t testing.TB, flags ...string) *Server {
	t.Helper()
	path := Path(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port taken in between: try others
		s := &Server{SMTPAddr: freePort(t)}
		http := freePort(t)
		s.API = "http://" + http
		args := append([]string{"--smtp", s.SMTPAddr, "--listen", http,
			"--database", filepath.Join(t.TempDir(), "mailpit.db"), "--quiet", "--smtp-disable-rdns"}, flags...)
		cmd := exec.Command(path, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting mailpit: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		if lastErr = s.waitReady(exited); lastErr == nil {
			t.Cleanup(stop)
			return s
		}
		stop()
		lastErr = fmt.Errorf("%w; output: %s", lastErr, out.String())
	}
	t.Fatalf("mailpit did not start: %v", lastErr)
	return nil
}

func (s *Server) waitReady(exited chan error) error {
	deadline := time.Now().Add(Wait)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("mailpit exited: %v", err)
		default:
		}
		resp, err := http.Get(s.API + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if c, err := net.DialTimeout("tcp", s.SMTPAddr, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %v", Wait)
}

// Summary is a message in Mailpit's list.
type Summary struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
}

// Message is one message as Mailpit parsed it.
type Message struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	From    struct {
		Address string `json:"Address"`
	} `json:"From"`
	To []struct {
		Address string `json:"Address"`
	} `json:"To"`
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

func (s *Server) get(path string, v any) error {
	resp, err := http.Get(s.API + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Messages returns the messages received so far, newest first.
func (s *Server) Messages(t testing.TB) []Summary {
	t.Helper()
	var list struct {
		Messages []Summary `json:"messages"`
	}
	if err := s.get("/api/v1/messages", &list); err != nil {
		t.Fatalf("mailpit: %v", err)
	}
	return list.Messages
}

// Message returns the message with this id.
func (s *Server) Message(t testing.TB, id string) *Message {
	t.Helper()
	var m Message
	if err := s.get("/api/v1/message/"+id, &m); err != nil {
		t.Fatalf("mailpit: %v", err)
	}
	return &m
}

// Count returns how many messages to the address have arrived.
func (s *Server) Count(t testing.TB, to string) int {
	t.Helper()
	n := 0
	for _, m := range s.Messages(t) {
		for _, a := range m.To {
			if strings.EqualFold(a.Address, to) {
				n++
			}
		}
	}
	return n
}

// WaitFor waits for the n-th message (counting from 1, oldest first) to
// the address and returns it; the test fails if it has not arrived
// within Wait.
func (s *Server) WaitFor(t testing.TB, to string, n int) *Message {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		var ids []string
		for _, m := range s.Messages(t) {
			for _, a := range m.To {
				if strings.EqualFold(a.Address, to) {
					ids = append(ids, m.ID)
				}
			}
		}
		if len(ids) >= n {
			return s.Message(t, ids[len(ids)-n]) // the list is newest first
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: %d messages to %s after %v, want %d", len(ids), to, Wait, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
