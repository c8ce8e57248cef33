// Package backchannel delivers OpenID Connect Back-Channel Logout 1.0:
// a Worker claims the deliveries that the store owes for every ended
// grant session (keycard.LogoutStore), POSTs each client a logout token
// at its registered back-channel logout URI, and retries with
// exponential back-off and jitter until the client answers 2xx or the
// attempts run out. It runs beside the server's requests, never in them:
// a slow or dead client delays nobody's logout.
package backchannel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/outbox"
)

// Defaults for Options.
const (
	DefaultMaxAttempts  = 10
	DefaultBackoff      = 2 * time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultTimeout      = 10 * time.Second
	DefaultConcurrency  = 8
	DefaultPollInterval = time.Second
)

// Tokens mints logout tokens and records deliveries given up;
// *auth.Service implements it.
type Tokens interface {
	// LogoutToken returns the signed logout token of the delivery.
	LogoutToken(ctx context.Context, d *keycard.LogoutDelivery) (string, error)
	// LogoutGivenUp records that the delivery was given up for the
	// reason.
	LogoutGivenUp(ctx context.Context, d *keycard.LogoutDelivery, reason string)
}

// Options tune a Worker: the Settings every outbox worker has (zero
// fields take this package's Default… constants), and its own.
type Options struct {
	outbox.Settings
	// Wake, when not nil, returns a channel that is closed when sessions
	// may have ended (the revocation feed's notification), taken before
	// each look, so that a logout is sent at once rather than at the
	// next poll.
	Wake func() <-chan struct{}
}

// Worker sends back-channel logouts. Run it in its own goroutine; several
// workers, in one process or in several on a shared database, share the
// work: each delivery is claimed by one at a time.
type Worker struct {
	store  keycard.LogoutStore
	tokens Tokens
	o      Options
}

// Check reports an option that is wrong on its face: a negative one, or
// a lease that does not exceed the request timeout.
func (o Options) Check() error {
	_, err := o.withDefaults()
	return err
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() (Options, error) {
	var err error
	o.Settings, err = o.Settings.WithDefaults("backchannel", outbox.Settings{MaxAttempts: DefaultMaxAttempts, Backoff: DefaultBackoff,
		MaxBackoff: DefaultMaxBackoff, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency, PollInterval: DefaultPollInterval})
	if err != nil {
		return o, err
	}
	return o, nil
}

// New returns a Worker that takes deliveries from store and their tokens
// from tokens. It fails as Options.Check does.
func New(store keycard.LogoutStore, tokens Tokens, o Options) (*Worker, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Worker{store: store, tokens: tokens, o: o}, nil
}

// Run sends deliveries as they become due until ctx ends, then waits for
// the requests under way to end (ctx's end cancels them; their deliveries
// are claimed again once their lease runs out).
func (w *Worker) Run(ctx context.Context) {
	outbox.Run(ctx, outbox.Loop[*keycard.LogoutDelivery]{
		Claim: w.store.ClaimLogouts, Deliver: w.deliver,
		Concurrency: w.o.Concurrency, PollInterval: w.o.PollInterval, Lease: w.o.Lease,
		Wake: w.o.Wake, Now: w.o.Now, Logger: w.o.Logger, Name: "back-channel logout",
	})
}

// deliver makes one attempt at d and records its outcome.
func (w *Worker) deliver(ctx context.Context, d *keycard.LogoutDelivery) {
	log := w.o.Logger.With("session", d.SessionID, "client", d.ClientID, "attempt", d.Attempts)
	if d.URI == "" {
		w.giveUp(ctx, log, d, "the client is gone or has no back-channel logout URI")
		return
	}
	err := w.send(ctx, d)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and the attempt is made again
	}
	// The outcome is recorded even if ctx ends meanwhile, so that a
	// delivered logout is not sent again.
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.o.Timeout)
	defer cancel()
	now := w.o.Now()
	switch {
	case err == nil:
		if err := w.store.LogoutDelivered(rec, d.SessionID, d.Attempts, now); err != nil {
			log.Warn("back-channel logout: recording the delivery", "err", err)
			return
		}
		log.Debug("back-channel logout delivered", "uri", d.URI)
	case d.Attempts >= w.o.MaxAttempts:
		w.giveUp(rec, log, d, err.Error())
	default:
		next := now.Add(outbox.Backoff(d.Attempts, w.o.Backoff, w.o.MaxBackoff, rand.Float64()))
		if err := w.store.RetryLogout(rec, d.SessionID, d.Attempts, now, next, err.Error()); err != nil {
			log.Warn("back-channel logout: recording the failure", "err", err)
			return
		}
		log.Info("back-channel logout failed; will retry", "uri", d.URI, "err", err, "retry_at", next)
	}
}

// giveUp marks d failed, audits and logs it.
func (w *Worker) giveUp(ctx context.Context, log *slog.Logger, d *keycard.LogoutDelivery, reason string) {
	if err := w.store.GiveUpLogout(ctx, d.SessionID, d.Attempts, w.o.Now(), reason); err != nil {
		log.Warn("back-channel logout: recording that it was given up", "err", err)
		return
	}
	w.tokens.LogoutGivenUp(ctx, d, reason)
	log.Warn("back-channel logout given up", "uri", d.URI, "err", reason)
}

// send POSTs d's logout token to its URI (section 2.5: form-encoded,
// logout_token) and returns an error unless the answer is 2xx (section
// 2.8 asks for 200; frameworks answer 204 too).
func (w *Worker) send(ctx context.Context, d *keycard.LogoutDelivery) error {
	token, err := w.tokens.LogoutToken(ctx, d)
	if err != nil {
		return fmt.Errorf("minting the logout token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URI, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return errors.New("the back-channel logout URI is not a valid URL")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cache-Control", "no-store")
	return outbox.Send(w.o.Client, req)
}
