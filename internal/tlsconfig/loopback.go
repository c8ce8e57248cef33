package tlsconfig

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// LoopbackListener reports whether addr, a listener's address, is on a
// loopback interface only, so that plain HTTP to it never crosses a
// network. The unspecified address (0.0.0.0, ::) is not loopback.
func LoopbackListener(addr net.Addr) bool {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// LoopbackURL reports whether the URL u names a loopback host:
// localhost, an address in 127.0.0.0/8, or [::1]. Other names are not
// resolved.
func LoopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := strings.ToLower(strings.TrimSuffix(pu.Hostname(), "."))
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// SecureURL reports whether u may carry tokens: an https:// URL, or an
// http:// URL of a loopback host (LoopbackURL).
func SecureURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	switch strings.ToLower(pu.Scheme) {
	case "https":
		return true
	case "http":
		return LoopbackURL(u)
	}
	return false
}
