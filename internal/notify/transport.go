package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"strings"

	"github.com/wneessen/go-mail"
)

// The transport names recorded in attempt_metadata.transport.
const (
	TransportSMTP = "smtp"
	TransportLog  = "log"
)

// outgoing is one e-mail ready for a transport.
type outgoing struct {
	message
	// Kind is the metrics and log label: KindSystemAlert or the notification type.
	Kind string
	// MessageID stays the same across retries of one job, so a receiving server that
	// saw an earlier attempt can tell it is the same message.
	MessageID string
}

// transport sends e-mails. There are two: SMTP through go-mail, and the log transport
// used when no SMTP server is configured.
type transport interface {
	name() string
	send(ctx context.Context, m outgoing) error
}

// sendError is a failed attempt, classified.
type sendError struct {
	// permanent failures (5xx on MAIL, RCPT or DATA, an invalid address) are not retried.
	permanent bool
	// code is the SMTP reply code when the server gave one.
	code int
	err  error
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

func permanentError(err error) *sendError { return &sendError{permanent: true, err: err} }

// logTransport writes one INFO line per e-mail: for development and for servers that
// have no SMTP relay. It never fails.
type logTransport struct {
	log *slog.Logger
}

func (t logTransport) name() string { return TransportLog }

func (t logTransport) send(ctx context.Context, m outgoing) error {
	t.log.InfoContext(ctx, "email logged",
		slog.String("recipient", strings.Join(m.To, ", ")),
		slog.String("subject", m.Subject),
		slog.String("kind", m.Kind))
	return nil
}

// smtpTransport sends through an SMTP relay with go-mail, one connection per message.
type smtpTransport struct {
	cfg       SMTPConfig
	from      string
	tlsConfig *tls.Config
}

func (t smtpTransport) name() string { return TransportSMTP }

func (t smtpTransport) send(ctx context.Context, m outgoing) error {
	msg := mail.NewMsg()
	if err := msg.From(t.from); err != nil {
		return permanentError(fmt.Errorf("invalid sender address: %w", err))
	}
	if err := msg.To(m.To...); err != nil {
		return permanentError(fmt.Errorf("invalid recipient address: %w", err))
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	}
	msg.SetDate()
	msg.SetUserAgent("owlmetry")

	opts := []mail.Option{mail.WithPort(t.cfg.Port), mail.WithTimeout(t.cfg.Timeout)}
	switch t.cfg.TLS {
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	case TLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if t.tlsConfig != nil {
		c := t.tlsConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = t.cfg.Host
		}
		opts = append(opts, mail.WithTLSConfig(c))
	}
	if t.cfg.Username != "" {
		// Auto-discovery offers PLAIN and LOGIN only on encrypted connections.
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(t.cfg.Username), mail.WithPassword(t.cfg.Password))
	}
	client, err := mail.NewClient(t.cfg.Host, opts...)
	if err != nil {
		return permanentError(fmt.Errorf("smtp client: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	err = client.DialAndSendWithContext(ctx, msg)
	if err == nil || msg.IsDelivered() {
		// A failed RSET or QUIT after the server accepted DATA is no reason to send the
		// message again.
		return nil
	}
	return classify(err)
}

// classify decides whether a go-mail error is worth retrying (engine.md §14.4).
// Permanent: a 5xx reply to MAIL, RCPT or DATA, or an address go-mail cannot use.
// Everything else — refused connections, timeouts, 4xx replies, TLS or AUTH trouble an
// operator can fix — is transient.
func classify(err error) *sendError {
	var se *mail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		switch se.Reason {
		case mail.ErrGetSender, mail.ErrGetRcpts:
			return &sendError{permanent: true, code: code, err: err}
		case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose, mail.ErrWriteContent:
			if code >= 500 && code < 600 {
				return &sendError{permanent: true, code: code, err: err}
			}
		}
		return &sendError{code: code, err: err}
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return &sendError{code: te.Code, err: err}
	}
	return &sendError{err: err}
}
