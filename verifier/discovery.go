package verifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/keycard-auth/keycard/internal/jsonscan"
)

// MaxMetadataSize is the largest discovery document [Discover] reads, in
// bytes: 256 KiB.
const MaxMetadataSize = 256 << 10

// The discovery paths tried by [Discover], in order.
const (
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	OAuthMetadataPath       = "/.well-known/oauth-authorization-server"
)

// Metadata is what a verifier needs from an auth server's metadata
// (RFC 8414 section 2).
type Metadata struct {
	// Issuer is the "issuer", equal to the issuer Discover was given.
	Issuer string
	// JWKSURI is the "jwks_uri": the JWK Set that verifies the issuer's
	// tokens. Always set.
	JWKSURI string
	// RevocationFeedEndpoint is Keycard's
	// "keycard_revocation_feed_endpoint", the long-poll revocation feed;
	// empty if the server does not publish one.
	RevocationFeedEndpoint string
	// RevocationStreamEndpoint is "keycard_revocation_stream_endpoint",
	// the same feed as server-sent events; empty if not published.
	RevocationStreamEndpoint string
}

// Discover fetches the metadata of issuer from
// issuer + "/.well-known/openid-configuration" and, if that answers 404
// Not Found, from issuer + "/.well-known/oauth-authorization-server"
// (RFC 8414 section 3.1, with the path appended as OpenID Connect
// Discovery does; the two coincide for an issuer without a path).
//
// The document must be a strict JSON object (no duplicate members, also
// none differing only in case at the top level) of at
// most MaxMetadataSize bytes, served with status 200 and a JSON media
// type. Its "issuer" must equal issuer exactly, or the document is
// refused (RFC 8414 section 3.3), so that a server cannot pass itself off
// as another issuer. "jwks_uri" is required; it and the revocation
// endpoints must be absolute http or https URLs, and https when the
// issuer is.
//
// A nil client means a client with a DefaultHTTPTimeout timeout.
func Discover(ctx context.Context, client *http.Client, issuer string) (*Metadata, error) {
	iss, err := url.Parse(issuer)
	if err != nil || (iss.Scheme != "https" && iss.Scheme != "http") || iss.Host == "" ||
		iss.RawQuery != "" || iss.ForceQuery || iss.Fragment != "" || iss.User != nil {
		return nil, fmt.Errorf("verifier: issuer %q must be an http or https URL without query or fragment (RFC 8414 section 2)", issuer)
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	base := strings.TrimSuffix(issuer, "/")
	body, _, err := get(ctx, client, base+OpenIDConfigurationPath, "application/json", MaxMetadataSize)
	if se := (*statusError)(nil); errors.As(err, &se) && se.code == http.StatusNotFound {
		body, _, err = get(ctx, client, base+OAuthMetadataPath, "application/json", MaxMetadataSize)
	}
	if err != nil {
		return nil, err
	}
	md, err := parseMetadata(body)
	if err != nil {
		return nil, fmt.Errorf("verifier: discovery document of %s: %w", issuer, err)
	}
	if md.Issuer != issuer {
		return nil, fmt.Errorf("verifier: discovery document of %s names issuer %q; it must be the same (RFC 8414 section 3.3)", issuer, md.Issuer)
	}
	if md.JWKSURI == "" {
		return nil, fmt.Errorf("verifier: discovery document of %s has no jwks_uri", issuer)
	}
	for _, e := range []struct{ name, value string }{
		{"jwks_uri", md.JWKSURI},
		{"keycard_revocation_feed_endpoint", md.RevocationFeedEndpoint},
		{"keycard_revocation_stream_endpoint", md.RevocationStreamEndpoint},
	} {
		if e.value == "" {
			continue
		}
		if err := checkEndpoint(e.value, iss.Scheme == "https"); err != nil {
			return nil, fmt.Errorf("verifier: discovery document of %s: %s %q %w", issuer, e.name, e.value, err)
		}
	}
	return md, nil
}

// parseMetadata reads the members of Metadata from a strict JSON object;
// each must be a string when present. Other members are ignored. Names
// are matched exactly, and top-level names that differ only in case are
// refused as duplicates, so that no reader that folds case (as
// encoding/json does) can see a different issuer or jwks_uri.
func parseMetadata(body []byte) (*Metadata, error) {
	md := new(Metadata)
	err := jsonscan.ScanObject(body, true, func(name, value []byte) error {
		var dst *string
		switch string(name) {
		case "issuer":
			dst = &md.Issuer
		case "jwks_uri":
			dst = &md.JWKSURI
		case "keycard_revocation_feed_endpoint":
			dst = &md.RevocationFeedEndpoint
		case "keycard_revocation_stream_endpoint":
			dst = &md.RevocationStreamEndpoint
		default:
			return nil
		}
		s, err := jsonscan.Unquote(value)
		if err != nil {
			return fmt.Errorf("member %q must be a string", name)
		}
		*dst = string(s)
		return nil
	})
	return md, err
}

// checkEndpoint checks that an endpoint from the metadata is an absolute
// http or https URL, and https when the issuer is.
func checkEndpoint(raw string, https bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("is not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && !https:
	case u.Scheme == "http":
		return errors.New("is http, but the issuer is https")
	default:
		return errors.New("is not an http or https URL")
	}
	return nil
}
