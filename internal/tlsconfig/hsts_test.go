package tlsconfig

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestParseProxies(t *testing.T) {
	tests := []struct {
		list    string
		ok      bool
		trusts  []string
		refuses []string
	}{
		{list: DefaultTrustedProxies, ok: true, trusts: []string{"127.0.0.1:1", "127.9.9.9:80", "[::1]:443", "[::ffff:127.0.0.1]:5"}, refuses: []string{"10.0.0.1:1", "[::2]:1", "garbage", ""}},
		{list: " 10.0.0.0/8 , 192.168.1.7 ", ok: true, trusts: []string{"10.1.2.3:9", "192.168.1.7:1"}, refuses: []string{"192.168.1.8:1", "127.0.0.1:1"}},
		{list: "10.0.0.1/8", ok: true, trusts: []string{"10.200.0.1:1"}},                                                                // masked
		{list: "::ffff:10.0.0.0/104", ok: true, trusts: []string{"10.9.9.9:1", "[::ffff:10.9.9.9]:1"}, refuses: []string{"11.0.0.1:1"}}, // IPv4-mapped
		{list: "fe80::/10", ok: true, trusts: []string{"[fe80::1%eth0]:1"}},
		{list: "", ok: false},
		{list: " , ", ok: false},
		{list: "10.0.0.0/33", ok: false},
		{list: "example.com", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			p, err := ParseProxies(tt.list)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok %v", err, tt.ok)
			}
			for _, a := range tt.trusts {
				if !p.Trusts(a) {
					t.Errorf("Trusts(%q) = false", a)
				}
			}
			for _, a := range tt.refuses {
				if p.Trusts(a) {
					t.Errorf("Trusts(%q) = true", a)
				}
			}
		})
	}
	var none *Proxies
	if none.Trusts("127.0.0.1:1") {
		t.Error("a nil *Proxies trusts loopback")
	}
}

// TestHSTS sends requests over TLS, from a trusted proxy and from others,
// with and without a forged X-Forwarded-Proto.
func TestHSTS(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		trusted *Proxies
		remote  string
		tls     bool
		xfp     []string
		want    bool
	}{
		{name: "TLS connection", remote: "192.0.2.1:5", tls: true, want: true},
		{name: "TLS connection, proxies configured", trusted: proxies, remote: "192.0.2.1:5", tls: true, want: true},
		{name: "plain HTTP", remote: "192.0.2.1:5"},
		{name: "forged header, no proxies trusted", remote: "10.0.0.1:5", xfp: []string{"https"}},
		{name: "forged header from an untrusted peer", trusted: proxies, remote: "192.0.2.1:5", xfp: []string{"https"}},
		{name: "trusted proxy says https", trusted: proxies, remote: "10.0.0.1:5", xfp: []string{"https"}, want: true},
		{name: "trusted proxy says HTTPS", trusted: proxies, remote: "10.0.0.1:5", xfp: []string{"HTTPS"}, want: true},
		{name: "trusted proxy says http", trusted: proxies, remote: "10.0.0.1:5", xfp: []string{"http"}},
		{name: "trusted proxy, no header", trusted: proxies, remote: "10.0.0.1:5"},
		{name: "chain with an http hop", trusted: proxies, remote: "10.0.0.1:5", xfp: []string{"https, http"}},
		{name: "two header fields, one http", trusted: proxies, remote: "10.0.0.1:5", xfp: []string{"https", "http"}},
		{name: "chain of https hops", trusted: proxies, remote: "10.0.0.1:5", xfp: []string{"https,https"}, want: true},
		{name: "empty value", trusted: proxies, remote: "10.0.0.1:5", xfp: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := HSTS(tt.trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for _, v := range tt.xfp {
				r.Header.Add("X-Forwarded-Proto", v)
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, r)
			got := rec.Header().Get("Strict-Transport-Security")
			if tt.want && got != HSTSValue || !tt.want && got != "" {
				t.Errorf("Strict-Transport-Security %q, want it %v", got, tt.want)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	for _, tt := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 1, 2, 3)}, true},
		{&net.TCPAddr{IP: net.IPv6loopback}, true},
		{&net.TCPAddr{IP: net.IPv4zero}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified}, false},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, false},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, false},
	} {
		if got := LoopbackListener(tt.addr); got != tt.want {
			t.Errorf("LoopbackListener(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	for _, tt := range []struct {
		url            string
		loopback, safe bool
	}{
		{"https://auth.example.com", false, true},
		{"HTTPS://auth.example.com", false, true},
		{"http://auth.example.com", false, false},
		{"http://127.0.0.1:4000", true, true},
		{"http://127.0.0.2", true, true},
		{"http://localhost:4000/x", true, true},
		{"http://LOCALHOST.", true, true},
		{"http://[::1]:4000", true, true},
		{"http://[::ffff:127.0.0.1]:4000", true, true},
		{"http://localhost.example.com", false, false},
		{"http://127.0.0.1.example.com", false, false},
		{"http://evil.localhost", false, false},
		{"http://0.0.0.0:4000", false, false},
		{"http://10.0.0.1", false, false},
		{"ftp://127.0.0.1", true, false},
		{"127.0.0.1:4000", false, false},
		{"http://[::1", false, false},
	} {
		if got := LoopbackURL(tt.url); got != tt.loopback {
			t.Errorf("LoopbackURL(%q) = %v, want %v", tt.url, got, tt.loopback)
		}
		if got := SecureURL(tt.url); got != tt.safe {
			t.Errorf("SecureURL(%q) = %v, want %v", tt.url, got, tt.safe)
		}
	}
}

// FuzzParseProxies checks that any list either parses into prefixes
// that trust what they contain, or is refused, without a panic.
func FuzzParseProxies(f *testing.F) {
	for _, s := range []string{DefaultTrustedProxies, "10.0.0.0/8", "192.168.1.7", "::ffff:10.0.0.1/104", "", ",", "1.2.3.4/", "fe80::1%eth0", "10.0.0.0/8,lb"} {
		f.Add(s, "10.1.2.3:80")
	}
	f.Fuzz(func(t *testing.T, list, remote string) {
		p, err := ParseProxies(list)
		if err != nil {
			if p != nil {
				t.Fatalf("ParseProxies(%q) returned %v with the error %v", list, p, err)
			}
			return
		}
		if len(p.prefixes) == 0 {
			t.Fatalf("ParseProxies(%q) accepted an empty list", list)
		}
		for _, pfx := range p.prefixes {
			if !p.Trusts(net.JoinHostPort(pfx.Addr().String(), "1")) {
				t.Fatalf("ParseProxies(%q) does not trust its own prefix %v", list, pfx)
			}
		}
		p.Trusts(remote)
	})
}
