package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUpstreamAnswersEveryGET(t *testing.T) {
	h, err := handler("")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/", "/me/x", "/weather/today?city=Lisbon"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"forecast"`) {
			t.Errorf("GET %s = %d %q %s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
}

func TestBareProxyForwards(t *testing.T) {
	var got *http.Request
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		io.WriteString(w, "from upstream")
	}))
	defer back.Close()
	h, err := handler(back.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	defer front.Close()
	req, _ := http.NewRequest("GET", front.URL+"/me/x?q=1", nil)
	req.Header.Set("Authorization", "Bearer t")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "from upstream" {
		t.Fatalf("through the proxy: %d %s", res.StatusCode, body)
	}
	if got.URL.Path != "/me/x" || got.URL.RawQuery != "q=1" || got.Header.Get("Authorization") != "Bearer t" || got.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("upstream got %s?%s, Authorization %q, X-Forwarded-For %q", got.URL.Path, got.URL.RawQuery, got.Header.Get("Authorization"), got.Header.Get("X-Forwarded-For"))
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-proxy", "ftp://h"},
		{"-proxy", "127.0.0.1:80"},
		{"-proxy", "http://"},
		{"extra"},
		{"-listen", "not an address"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q): no error", args)
		}
	}
}
