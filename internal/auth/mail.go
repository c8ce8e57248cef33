package auth

import (
	"context"
	"time"
)

// Mail templates: the messages the Service sends. The mailer renders each
// from its text and HTML templates (internal/mail).
const (
	MailVerifyEmail     = "verify-email"
	MailPasswordReset   = "password-reset"
	MailPasswordChanged = "password-changed"
	MailPasskeyAdded    = "passkey-added"
	MailPasskeyRemoved  = "passkey-removed"
)

// Mail is a message to a user, before rendering.
type Mail struct {
	// To is the normalized address to send to.
	To string
	// Template is one of the Mail… names.
	Template string
	Data     MailData
}

// MailData is what a mail template can show.
type MailData struct {
	// Username is the user's display name.
	Username string
	// Email is the address the mail goes to.
	Email string
	// Link is the single-use link of a verification or a reset; empty in
	// a notification. It is a secret: mailers must not log it outside
	// development.
	Link string
	// ValidFor is how long Link works.
	ValidFor time.Duration
	// Issuer is the server's public base URL.
	Issuer string
	// At is when the event happened.
	At time.Time
	// Passkey is the name of the passkey added or removed.
	Passkey string
}

// Mailer sends mail. Send may block for as long as ctx allows; the
// Service calls it from its mail worker (RunMail), never on a request.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// Mail queue defaults (Config.MailQueue, RunMail).
const (
	// DefaultMailQueue is how many mail jobs wait for the worker before
	// new ones are dropped (and logged).
	DefaultMailQueue = 256
	// mailJobTimeout bounds one job: the store work of a reset request
	// and the SMTP conversation.
	mailJobTimeout = 60 * time.Second
)

// mailJob is work done by the mail worker, away from the request that
// asked for it.
type mailJob func(ctx context.Context)

// MailEnabled reports whether the Service has a mailer: without one, no
// verification or reset links are sent, and RequestPasswordReset is
// refused.
func (s *Service) MailEnabled() bool { return s.mailer != nil }

// enqueue hands job to the mail worker without waiting. A full queue
// drops the job, with an error in the log: a request is never held up by
// a slow mail server.
func (s *Service) enqueue(ctx context.Context, what string, job mailJob) {
	select {
	case s.mailJobs <- job:
	default:
		s.log.ErrorContext(ctx, "mail queue full; mail dropped", "mail", what, "queue", cap(s.mailJobs))
	}
}

// send enqueues the sending of m.
func (s *Service) send(ctx context.Context, m Mail) {
	if s.mailer == nil || m.To == "" {
		return
	}
	s.enqueue(ctx, m.Template, func(ctx context.Context) {
		if err := s.mailer.Send(ctx, m); err != nil {
			s.log.ErrorContext(ctx, "sending mail failed", "mail", m.Template, "err", err)
		}
	})
}

// RunMail runs the mail worker until ctx is done, then finishes the jobs
// already queued (each bounded by a timeout) and returns. The server runs
// one; jobs run one at a time, in order. Without a mailer it returns at
// once.
func (s *Service) RunMail(ctx context.Context) {
	if s.mailer == nil {
		return
	}
	run := func(job mailJob) {
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mailJobTimeout)
		defer cancel()
		job(jctx)
	}
	for {
		select {
		case job := <-s.mailJobs:
			run(job)
		case <-ctx.Done():
			for {
				select {
				case job := <-s.mailJobs:
					run(job)
				default:
					return
				}
			}
		}
	}
}
