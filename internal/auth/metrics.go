package auth

// Outcomes of a login, reported to Metrics.LoginOutcome.
const (
	LoginSucceeded = "succeeded"
	LoginFailed    = "failed"    // refused: unknown user, wrong password, disabled user, malformed input
	LoginThrottled = "throttled" // refused by the login throttle before the password was checked
)

// Outcomes of a refresh grant, reported to Metrics.RefreshOutcome.
const (
	RefreshRotated  = "rotated"  // a live refresh token was exchanged for a successor
	RefreshReplayed = "replayed" // a just-rotated token, within the grace window, got the same successor
	RefreshTheft    = "theft"    // a rotated token after the grace window: the session was revoked
)

// Outcomes of a call of the custom-claims hook, reported to
// Metrics.ClaimsHookOutcome.
const (
	ClaimsHookOK     = "ok"
	ClaimsHookFailed = "failed" // an error, a timeout, or an answer refused (see ClaimsHook)
)

// Metrics receives counts of the Service's security-relevant events, for
// monitoring. It is implemented outside this package (internal/metrics,
// over Prometheus), so that the domain logic does not depend on a metrics
// library. Implementations must be safe for concurrent use and cheap: they
// are called on the request path.
type Metrics interface {
	// LoginOutcome counts one login attempt by its outcome, one of the
	// Login… constants.
	LoginOutcome(outcome string)
	// RefreshOutcome counts one honoured or theft-revealing refresh
	// grant by its outcome, one of the Refresh… constants. Refresh
	// tokens that are simply invalid are not counted.
	RefreshOutcome(outcome string)
	// SessionsRevoked counts n sessions revoked for reason, one of the
	// keycard.Revoke… constants.
	SessionsRevoked(reason string, n int)
	// ClaimsHookOutcome counts one call of the custom-claims hook by its
	// outcome, one of the ClaimsHook… constants.
	ClaimsHookOutcome(outcome string)
}

// noMetrics is the Metrics of a Service given none: it reports nothing.
type noMetrics struct{}

func (noMetrics) LoginOutcome(string)         {}
func (noMetrics) RefreshOutcome(string)       {}
func (noMetrics) SessionsRevoked(string, int) {}
func (noMetrics) ClaimsHookOutcome(string)    {}
