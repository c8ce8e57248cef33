package dpop

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// NormalizeURL returns the form of an HTTP URL in which a proof's htu is
// compared with the request's (RFC 9449 section 4.3, step 9): the scheme
// and host in lower case, the port dropped when it is the scheme's
// default, an empty path made "/", percent-encodings in upper case, and
// no query, fragment or user information. Only http and https URLs with a
// host are accepted.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: htu is not a URL", ErrInvalidProof)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Opaque != "" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%w: htu must be an absolute http or https URL without user information", ErrInvalidProof)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	path := upperPercent(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// upperPercent writes the hexadecimal digits of percent-encodings in
// upper case (RFC 3986 section 6.2.2.1).
func upperPercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	b := []byte(p)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if b[j] >= 'a' && b[j] <= 'f' {
					b[j] -= 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}
