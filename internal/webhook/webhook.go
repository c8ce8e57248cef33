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
	"fmt"
	"log/slog"
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

// Options tune a Worker. The zero value of each field means its default.
type Options struct {
	// MaxAttempts is how many times a delivery is tried (in each round:
	// a replay starts a new one) before it is given up;
	// DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled for each
	// retry after it up to MaxBackoff; each delay is then drawn at random
	// between its half and itself (jitter). DefaultBackoff and
	// DefaultMaxBackoff: ten attempts span about an hour and a half.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one request, from connecting to reading the answer;
	// DefaultTimeout.
	Timeout time.Duration
	// Lease is how long a claimed delivery is kept from other workers
	// (another instance, or this one after a crash); twice Timeout plus
	// ten seconds when zero. It must exceed Timeout.
	Lease time.Duration
	// Concurrency is how many deliveries are sent at once;
	// DefaultConcurrency.
	Concurrency int
	// PollInterval is how often the worker looks for due deliveries;
	// DefaultPollInterval.
	PollInterval time.Duration
	// Client sends the requests; nil means one with Timeout that follows
	// no redirect (a 3xx answer is a failure: the body goes to the
	// registered URL and nowhere else).
	Client *http.Client
	// Outcome, when not nil, is told of each attempt's outcome
	// (OutcomeDelivered, OutcomeRetried, OutcomeFailed): the metrics.
	Outcome func(outcome string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger hears of deliveries that fail; nil discards. It never hears
	// a secret or a body.
	Logger *slog.Logger
}

// Check reports an option that is wrong on its face: a negative one, or
// a lease that does not exceed the request timeout.
func (o Options) Check() error {
	_, err := o.withDefaults()
	return err
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() (Options, error) {
	if o.MaxAttempts < 0 || o.Backoff < 0 || o.MaxBackoff < 0 || o.Timeout < 0 || o.Lease < 0 || o.Concurrency < 0 || o.PollInterval < 0 {
		return o, errors.New("webhook: options must not be negative")
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff == 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.Backoff)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Lease == 0 {
		o.Lease = 2*o.Timeout + 10*time.Second
	}
	if o.Lease <= o.Timeout {
		return o, fmt.Errorf("webhook: the lease (%v) must exceed the request timeout (%v)", o.Lease, o.Timeout)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout:       o.Timeout,
			CheckRedirect: outbox.NoRedirects,
		}
	}
	if o.Outcome == nil {
		o.Outcome = func(string) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
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
