package federation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSetRefresh: the providers of Load follow the configuration file's;
// an unchanged one is kept (its discovery with it), a changed one
// replaced, a removed one gone; one that fails its checks, takes the
// file's name or a domain routed elsewhere is left out; a failing Load
// keeps the last providers.
func TestSetRefresh(t *testing.T) {
	ctx := context.Background()
	stored := []Config{
		{Name: "b", Issuer: "https://b.example", ClientID: "b", ClientSecret: "sb"},
		{Name: "c", Issuer: "https://c.example", ClientID: "c", Domains: []string{"c.example"}},
	}
	var loadErr error
	load := func(context.Context) ([]Config, error) {
		if loadErr != nil {
			return nil, loadErr
		}
		out := make([]Config, len(stored))
		for i, c := range stored {
			c.Domains = append([]string(nil), c.Domains...)
			out[i] = c
		}
		return out, nil
	}
	s, err := New([]Config{{Name: "a", Issuer: "https://a.example", ClientID: "a", Domains: []string{"a.example"}}}, Options{Load: load})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	names := func() string {
		var n []string
		for _, p := range s.Providers() {
			n = append(n, p.Name())
		}
		return strings.Join(n, ",")
	}
	if !s.Dynamic() || !s.Static("a") || s.Static("b") {
		t.Fatal("Dynamic or Static is wrong")
	}
	if err := s.Refresh(ctx); err != nil || names() != "a,b,c" {
		t.Fatalf("after Refresh: %s, %v", names(), err)
	}
	if s.Provider("b").Config().ClientSecret != "sb" || s.ForEmail("x@c.example") != s.Provider("c") {
		t.Fatal("a loaded provider lost its secret or its domain")
	}
	b, c := s.Provider("b"), s.Provider("c")

	stored[1].DisplayName = "C2"
	stored = append(stored,
		Config{Name: "a", Issuer: "https://x.example", ClientID: "x"},                                 // the file's name
		Config{Name: "d", Issuer: "http://d.example", ClientID: "d"},                                  // not https
		Config{Name: "e", Issuer: "https://e.example", ClientID: "e", Domains: []string{"a.example"}}) // the file's domain
	if err := s.Refresh(ctx); err != nil || names() != "a,b,c" {
		t.Fatalf("after the second Refresh: %s, %v", names(), err)
	}
	if s.Provider("b") != b {
		t.Error("an unchanged provider was replaced")
	}
	if s.Provider("c") == c || s.Provider("c").Config().DisplayName != "C2" {
		t.Error("a changed provider was not replaced")
	}
	if s.Provider("a").Config().Issuer != "https://a.example" || s.ForEmail("x@a.example") != s.Provider("a") {
		t.Error("a loaded provider took the configuration file's name or domain")
	}

	loadErr = errors.New("store down")
	stored = stored[:1]
	if err := s.Refresh(ctx); err == nil || names() != "a,b,c" {
		t.Fatalf("a failing Load: %s, %v; want the last providers and the error", names(), err)
	}
	loadErr = nil
	if err := s.Refresh(ctx); err != nil || names() != "a,b" || s.Provider("c") != nil || s.ForEmail("x@c.example") != nil {
		t.Fatalf("after a removal: %s, %v", names(), err)
	}

	// CheckAdded: the file's checks, its names and the domains routed elsewhere.
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Name: "a", Issuer: "https://n.example", ClientID: "n"}, "configuration file"},
		{Config{Name: "n", Issuer: "http://n.example", ClientID: "n"}, "https"},
		{Config{Name: "n", Issuer: "https://n.example", ClientID: "n", Domains: []string{"A.example"}}, "routed to a"},
		{Config{Name: "b", Issuer: "https://n.example", ClientID: "n", Domains: []string{"n.example"}}, ""},
	} {
		err := tc.c.Check()
		if err == nil {
			err = s.CheckAdded(&tc.c)
		}
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckAdded(%s) = %v; want %q", tc.c.Name, err, tc.want)
		}
	}
}

// TestSetRefreshStale: the pages' reload reads the store at most once per
// MaxAge; Refresh always reads it.
func TestSetRefreshStale(t *testing.T) {
	ctx := context.Background()
	loads := 0
	now := time.Unix(1_800_000_000, 0)
	s, err := New(nil, Options{MaxAge: time.Second, Now: func() time.Time { return now },
		Load: func(context.Context) ([]Config, error) { loads++; return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, step := range []struct {
		name    string
		advance time.Duration
		stale   bool // RefreshStale, or Refresh
		want    int
	}{
		{"the first reload", 0, true, 1},
		{"within MaxAge", 999 * time.Millisecond, true, 1},
		{"at MaxAge", time.Millisecond, true, 2},
		{"right after", 0, true, 2},
		{"Refresh, whatever the age", 0, false, 3},
		{"within MaxAge of that", 500 * time.Millisecond, true, 3},
	} {
		now = now.Add(step.advance)
		if step.stale {
			err = s.RefreshStale(ctx)
		} else {
			err = s.Refresh(ctx)
		}
		if err != nil || loads != step.want {
			t.Errorf("%s: %d loads (%v), want %d", step.name, loads, err, step.want)
		}
	}
}
