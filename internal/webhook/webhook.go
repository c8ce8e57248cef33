// Package webhook delivers webhooks signed as Standard Webhooks
// (https://www.standardwebhooks.com): a Worker claims the deliveries that
// the store owes for every subscribed audit event (keycard.WebhookStore),
// POSTs each endpoint the event's JSON body with the webhook-id,
// webhook-timestamp and webhook-signature headers, and retries with
// exponential back-off and jitter until the endpoint answers 2xx or the
// attempts run out. It runs beside the server's requests, never in them:
// a slow or dead endpoint delays nobody's sign-in.
//
// Delivery is at least once: an endpoint that answered 2xx to a worker
// that died before recording it gets the message again, with the same
// webhook-id, by which receivers drop duplicates.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/outbox"
)

// Defaults for Options.
const (
	DefaultMaxAttempts  = 10
	DefaultBackoff      = 5 * time.Second
	DefaultMaxBackoff   = 30 * time.Minute
	DefaultTimeout      = 10 * time.Second
	DefaultConcurrency  = 8
	DefaultPollInterval = time.Second
)

// Outcomes of an attempt, the label of the delivery metric.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetried   = "retried"
	OutcomeFailed    = "failed"
)

// Events makes the bodies of deliveries and hears of those given up;
// *auth.Service implements it.
type Events interface {
	// WebhookBody returns the JSON body of the delivery.
	WebhookBody(d *keycard.WebhookDelivery) ([]byte, error)
	// WebhookGivenUp records that the delivery was given up for the
	// reason.
	WebhookGivenUp(ctx context.Context, d *keycard.WebhookDelivery, reason string)
}

// Options tune a Worker: the Settings every outbox worker has (zero
// fields take this package's Default… constants), and its own.
type Options struct {
	outbox.Settings
	// Outcome, when not nil, is told of each attempt's outcome
	// (OutcomeDelivered, OutcomeRetried, OutcomeFailed): the metrics.
	Outcome func(outcome string)
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
	o.Settings, err = o.Settings.WithDefaults("webhook", outbox.Settings{MaxAttempts: DefaultMaxAttempts, Backoff: DefaultBackoff,
		MaxBackoff: DefaultMaxBackoff, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency, PollInterval: DefaultPollInterval})
	if err != nil {
		return o, err
	}
	if o.Outcome == nil {
		o.Outcome = func(string) {}
	}
	return o, nil
}

// Worker sends webhooks. Run it in its own goroutine; several workers, in
// one process or in several on a shared database, share the work: each
// delivery is claimed by one at a time.
type Worker struct {
	store  keycard.WebhookStore
	events Events
	o      Options
}

// New returns a Worker that takes deliveries from store and their bodies
// from events. It fails as Options.Check does.
func New(store keycard.WebhookStore, events Events, o Options) (*Worker, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Worker{store: store, events: events, o: o}, nil
}

// Run sends deliveries as they become due until ctx ends, then waits for
// the requests under way to end (ctx's end cancels them; their deliveries
// are claimed again once their lease runs out).
func (w *Worker) Run(ctx context.Context) {
	outbox.Run(ctx, outbox.Loop[*keycard.WebhookDelivery]{
		Claim: w.store.ClaimWebhookDeliveries, Deliver: w.deliver,
		Concurrency: w.o.Concurrency, PollInterval: w.o.PollInterval, Lease: w.o.Lease,
		Now: w.o.Now, Logger: w.o.Logger, Name: "webhooks",
	})
}

// deliver makes one attempt at d and records its outcome.
func (w *Worker) deliver(ctx context.Context, d *keycard.WebhookDelivery) {
	log := w.o.Logger.With("delivery", d.ID, "endpoint", d.EndpointID, "event", d.EventType, "webhook_id", d.MessageID(), "attempt", d.RoundAttempts())
	err := w.send(ctx, d)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and the attempt is made again
	}
	// The outcome is recorded even if ctx ends meanwhile, so that a
	// delivered webhook is not sent again.
	rec, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.o.Timeout)
	defer cancel()
	now := w.o.Now()
	var permanent *permanentError
	switch {
	case err == nil:
		if err := w.store.WebhookDelivered(rec, d.ID, d.Attempts, now); err != nil {
			log.Warn("webhooks: recording the delivery", "err", err)
			return
		}
		w.o.Outcome(OutcomeDelivered)
		log.Debug("webhook delivered", "url", d.URL)
	case d.RoundAttempts() >= w.o.MaxAttempts || errors.As(err, &permanent):
		if err := w.store.GiveUpWebhook(rec, d.ID, d.Attempts, now, err.Error()); err != nil {
			log.Warn("webhooks: recording that it was given up", "err", err)
			return
		}
		w.o.Outcome(OutcomeFailed)
		w.events.WebhookGivenUp(rec, d, err.Error())
		log.Warn("webhook given up", "url", d.URL, "err", err)
	default:
		next := now.Add(outbox.Backoff(d.RoundAttempts(), w.o.Backoff, w.o.MaxBackoff, rand.Float64()))
		if err := w.store.RetryWebhook(rec, d.ID, d.Attempts, now, next, err.Error()); err != nil {
			log.Warn("webhooks: recording the failure", "err", err)
			return
		}
		w.o.Outcome(OutcomeRetried)
		log.Info("webhook failed; will retry", "url", d.URL, "err", err, "retry_at", next)
	}
}

// permanentError is a failure that retrying cannot change: the delivery
// cannot be made at all (its body or signature cannot be made).
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// send POSTs d's body, signed, to its endpoint and returns an error
// unless the answer is 2xx.
func (w *Worker) send(ctx context.Context, d *keycard.WebhookDelivery) error {
	b, err := w.events.WebhookBody(d)
	if err != nil {
		return &permanentError{err.Error()}
	}
	id, ts := d.MessageID(), w.o.Now()
	sig, err := Sign(d.Secret, id, ts, b)
	if err != nil {
		return &permanentError{err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(b))
	if err != nil {
		return &permanentError{"the endpoint's URL is not a valid URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Keycard-Webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	return outbox.Send(w.o.Client, req)
}
