// Package mail sends the auth server's mail: verification and
// password-reset links and notifications, rendered from plain-text and
// HTML templates (built in, or overridden from a directory) and sent over
// SMTP (net/smtp) with STARTTLS or implicit TLS. In development, LogMailer
// writes them to the log instead. Both implement auth.Mailer.
//
// Nothing here logs a password: neither the SMTP URL's (String redacts
// it) nor a user's. Links are secrets too; only LogMailer, meant for
// --dev, prints them.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
)

// DefaultTimeout bounds one SMTP conversation when the context has no
// earlier deadline.
const DefaultTimeout = 30 * time.Second

// Config configures an SMTP Mailer.
type Config struct {
	// URL is the SMTP server: smtp://[user[:password]@]host[:port]
	// (port 587 by default; STARTTLS whenever the server offers it) or
	// smtps://… (port 465 by default; TLS from the first byte). With a
	// user, the server must offer AUTH and the password is sent with
	// AUTH PLAIN, which net/smtp allows only over TLS or to a loopback
	// host.
	URL string
	// From is the sender's address (the envelope sender and From).
	From string
	// Templates renders the messages; nil uses the built-in ones.
	Templates *Templates
	// TLS, when not nil, is the base TLS configuration (its RootCAs, for
	// a private CA); ServerName is always the URL's host.
	TLS *tls.Config
	// Hello is the name given in EHLO; "localhost" when empty.
	Hello string
	// Timeout bounds one conversation; DefaultTimeout when zero.
	Timeout time.Duration
	// Now and Rand may be nil (time.Now, crypto/rand).
	Now  func() time.Time
	Rand io.Reader
}

// Mailer sends mail over SMTP. It is safe for concurrent use; each Send
// is one connection.
type Mailer struct {
	cfg      Config
	host     string
	addr     string
	implicit bool
	user     *url.Userinfo
	redacted string
}

var _ auth.Mailer = (*Mailer)(nil)

// New returns a Mailer for cfg, after checking the URL and the sender. Its
// errors never hold the URL's password.
func New(cfg Config) (*Mailer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("mail: invalid SMTP URL: %v", err)
	}
	m := &Mailer{cfg: cfg, user: u.User, redacted: u.Redacted()}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		m.implicit = true
	default:
		return nil, fmt.Errorf("mail: SMTP URL %s: the scheme must be smtp or smtps", m.redacted)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("mail: SMTP URL %s: want scheme://[user[:password]@]host[:port] and nothing more", m.redacted)
	}
	m.host = u.Hostname()
	port := u.Port()
	if port == "" {
		port = "587"
		if m.implicit {
			port = "465"
		}
	}
	m.addr = net.JoinHostPort(m.host, port)
	from, err := auth.NormalizeEmail(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: sender address %q: %v", cfg.From, err)
	}
	m.cfg.From = from
	if m.cfg.Templates == nil {
		if m.cfg.Templates, err = LoadTemplates(""); err != nil {
			return nil, err
		}
	}
	if m.cfg.Timeout <= 0 {
		m.cfg.Timeout = DefaultTimeout
	}
	if m.cfg.Hello == "" {
		m.cfg.Hello = "localhost"
	}
	if m.cfg.Now == nil {
		m.cfg.Now = time.Now
	}
	if m.cfg.Rand == nil {
		m.cfg.Rand = rand.Reader
	}
	return m, nil
}

// String returns the SMTP URL with its password redacted, for logs.
func (m *Mailer) String() string { return m.redacted }

// Send renders the mail and sends it: connect (TLS for smtps), EHLO,
// STARTTLS when offered (smtp), AUTH PLAIN when the URL has a user, then
// the message. It gives up when ctx is done or the timeout passes.
func (m *Mailer) Send(ctx context.Context, mail auth.Mail) error {
	r, err := m.cfg.Templates.Render(mail)
	if err != nil {
		return err
	}
	msg, err := buildMessage(m.cfg.From, mail.To, r, m.cfg.Now(), m.cfg.Rand)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	if err := m.send(ctx, mail.To, msg); err != nil {
		return fmt.Errorf("mail: sending %s through %s: %w", mail.Template, m.redacted, err)
	}
	return nil
}

func (m *Mailer) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.cfg.TLS != nil {
		c = m.cfg.TLS.Clone()
	}
	c.ServerName = m.host
	return c
}

func (m *Mailer) send(ctx context.Context, to string, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return err
		}
	}
	// The deadline ends a conversation stuck on a slow server; closing
	// the connection ends one whose context is canceled early.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if m.implicit {
		tc := tls.Client(conn, m.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(m.cfg.Hello); err != nil {
		return err
	}
	if !m.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tlsConfig()); err != nil {
				return err
			}
		}
	}
	if m.user != nil {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the server offers no AUTH, and the URL has credentials")
		}
		pass, _ := m.user.Password()
		// PlainAuth refuses to send the password without TLS, unless the
		// host is a loopback name.
		if err := c.Auth(smtp.PlainAuth("", m.user.Username(), pass, m.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// LogMailer writes mail to the log instead of sending it: for --dev
// without an SMTP server, so that a developer can follow the links. It
// logs the links, which are secrets: never use it in production.
type LogMailer struct {
	Templates *Templates
	Logger    *slog.Logger
}

var _ auth.Mailer = (*LogMailer)(nil)

// Send renders the mail and logs it, at level Info, with its link.
func (l *LogMailer) Send(ctx context.Context, m auth.Mail) error {
	r, err := l.Templates.Render(m)
	if err != nil {
		return err
	}
	l.Logger.InfoContext(ctx, "mail not sent (development: no --smtp-url); here it is",
		"to", m.To, "subject", r.Subject, "link", m.Data.Link, "text", strings.TrimSpace(r.Text))
	return nil
}
