package tlsconfig

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// HSTSValue is the Strict-Transport-Security header Keycard sends on
// every HTTPS response (RFC 6797 section 6.1): browsers use HTTPS only
// for the host and its subdomains for two years.
const HSTSValue = "max-age=63072000; includeSubDomains"

// DefaultTrustedProxies are the addresses whose X-Forwarded-Proto is
// believed when no other list is given: loopback only.
const DefaultTrustedProxies = "127.0.0.0/8,::1/128"

// Proxies is the set of addresses of TLS-terminating proxies (load
// balancers) whose X-Forwarded-Proto header is believed. A nil *Proxies
// trusts no one. It is safe for concurrent use.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies parses a comma-separated list of CIDR prefixes
// ("10.0.0.0/8, fd00::/8") or single addresses.
func ParseProxies(list string) (*Proxies, error) {
	p := &Proxies{}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(item)
		if err != nil {
			addr, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("tlsconfig: trusted proxy %q is not an address or CIDR prefix such as 10.0.0.0/8", item)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		if pfx.Addr().Is4In6() && pfx.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		p.prefixes = append(p.prefixes, pfx.Masked())
	}
	if len(p.prefixes) == 0 {
		return nil, fmt.Errorf("tlsconfig: the trusted proxy list is empty")
	}
	return p, nil
}

// Trusts reports whether the peer at remoteAddr (an http.Request's
// RemoteAddr, host:port) is a trusted proxy.
func (p *Proxies) Trusts(remoteAddr string) bool {
	if p == nil {
		return false
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.WithZone("")
	for _, pfx := range p.prefixes {
		if pfx.Contains(addr) || pfx.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// IsHTTPS reports whether r reached Keycard over HTTPS: on a TLS
// connection, or from a trusted proxy whose X-Forwarded-Proto says https
// (every value of it, when a chain of proxies listed several). The header
// from any other peer is ignored: a client could send anything.
func IsHTTPS(r *http.Request, trusted *Proxies) bool {
	if r.TLS != nil {
		return true
	}
	if !trusted.Trusts(r.RemoteAddr) {
		return false
	}
	vals := r.Header.Values("X-Forwarded-Proto")
	if len(vals) == 0 {
		return false
	}
	for _, v := range vals {
		for proto := range strings.SplitSeq(v, ",") {
			if !strings.EqualFold(strings.TrimSpace(proto), "https") {
				return false
			}
		}
	}
	return true
}

// HSTS returns middleware that sets Strict-Transport-Security (HSTSValue)
// on every response to a request that IsHTTPS with trusted (nil: TLS
// connections only). RFC 6797 section 7.2 forbids it over plain HTTP.
func HSTS(trusted *Proxies) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if IsHTTPS(r, trusted) {
				w.Header().Set("Strict-Transport-Security", HSTSValue)
			}
			next.ServeHTTP(w, r)
		})
	}
}
