package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// StatusError is a request answered with an HTTP status the workload did
// not expect. Its kind is "http_" and the status code, such as "http_429".
type StatusError struct {
	Code int
	// OAuthError is the "error" member of the answer's JSON body, if it
	// had one (RFC 6749 §5.2); it is for messages, not for the kind.
	OAuthError string
}

func (e *StatusError) Error() string {
	if e.OAuthError != "" {
		return fmt.Sprintf("loadgen: HTTP %d (%s)", e.Code, e.OAuthError)
	}
	return fmt.Sprintf("loadgen: HTTP %d", e.Code)
}

// KindError is a failure a workload names itself, such as an
// introspection that says a live token is inactive.
type KindError struct {
	Kind string // the error kind reported
	Msg  string
}

func (e *KindError) Error() string { return "loadgen: " + e.Kind + ": " + e.Msg }

// Error kinds other than HTTP statuses. The set is part of the JSON
// report's contract (docs/bench.md).
const (
	KindTimeout           = "timeout"            // a request or connect deadline passed
	KindConnectionRefused = "connection_refused" // nothing listens at the address
	KindConnectionReset   = "connection_reset"   // the peer reset the connection
	KindEOF               = "eof"                // the connection closed before a full answer
	KindDNS               = "dns"                // the host name did not resolve
	KindTLS               = "tls"                // TLS handshake or certificate failure
	KindNetwork           = "network"            // any other network error
	KindBadResponse       = "bad_response"       // a success status with a body the workload cannot use
	KindInactive          = "inactive"           // introspection said a live token is inactive
	KindNotRefused        = "not_refused"        // revocation-latency: still accepted at the time limit
	KindNoCode            = "no_code"            // authcode: the authorization endpoint answered without a code
	KindOther             = "other"              // anything else
)

// ErrorKind classifies err for the report: "http_NNN" for a StatusError,
// the Kind of a KindError, a network error class (KindTimeout,
// KindConnectionRefused, …), or KindOther.
func ErrorKind(err error) string {
	var se *StatusError
	var ke *KindError
	var dns *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("http_%d", se.Code)
	case errors.As(err, &ke):
		return ke.Kind
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return KindTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindConnectionRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return KindConnectionReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindEOF
	case errors.As(err, &dns):
		return KindDNS
	case errors.As(err, &certErr), errors.As(err, &recErr):
		return KindTLS
	case errors.As(err, &netErr):
		return KindNetwork
	}
	return KindOther
}
