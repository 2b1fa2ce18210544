package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// The outbox's River settings (engine.md §14.4, §18.3).
const (
	// KindEmailDelivery is the River kind of every e-mail.
	KindEmailDelivery = "email_delivery"
	// QueueInternal keeps e-mails apart from long handlers.
	QueueInternal = "internal"
	// EmailMaxAttempts outlasts RetryWindow under the backoff of RetryDelay (about 300
	// attempts fit in 48 hours), so the window, not River, decides when to give up.
	EmailMaxAttempts = 400
	// EmailJobTimeout bounds one attempt; the SMTP timeout sits inside it.
	EmailJobTimeout = 60 * time.Second
	// RetryWindow is how long transient failures are retried, counted from the job's
	// creation.
	RetryWindow = 48 * time.Hour
	// RetryBase and RetryCap shape the backoff: RetryBase × 2^(attempt−1), at most RetryCap.
	RetryBase = 5 * time.Second
	RetryCap  = 10 * time.Minute
)

// KindSystemAlert is the kind of a system alert in metrics, logs and job args; user
// e-mails use their notification type.
const KindSystemAlert = "system_alert"

// The outcomes of owlmetry_emails_total.
const (
	OutcomeSent   = "sent"
	OutcomeLogged = "logged"
	OutcomeRetry  = "retry"
	OutcomeFailed = "failed"
)

// EmailArgs are the args of an email_delivery job. A system alert carries the rendered
// message; a user notification carries only DeliveryID and is rendered when sent, from
// its notifications row.
type EmailArgs struct {
	// DeliveryID is the notification_deliveries row of a user e-mail.
	DeliveryID string `json:"delivery_id,omitempty"`
	// To, Subject, Text and HTML are a rendered system alert.
	To      []string `json:"to,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Text    string   `json:"text,omitempty"`
	HTML    string   `json:"html,omitempty"`
	// RunID is the run a system alert reports.
	RunID string `json:"run_id,omitempty"`
	// MailKind labels a system alert in logs and metrics (KindSystemAlert).
	MailKind string `json:"kind,omitempty"`
}

// Kind is the River kind, email_delivery.
func (EmailArgs) Kind() string { return KindEmailDelivery }

// InsertOpts puts every e-mail on the internal queue with room for 48 hours of retries,
// whichever client inserts it.
func (EmailArgs) InsertOpts() river.InsertOpts { return *emailInsertOpts() }

func emailInsertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: QueueInternal, MaxAttempts: EmailMaxAttempts}
}

// RetryDelay is the wait after a failed attempt (attempt counts from 1):
// RetryBase × 2^(attempt−1), capped at RetryCap, with ±10 % jitter so a recovering relay
// is not hit by every queued e-mail at once.
func RetryDelay(attempt int) time.Duration {
	d := RetryBase
	for i := 1; i < attempt && d < RetryCap; i++ {
		d *= 2
	}
	d = min(d, RetryCap)
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// emailWorker sends email_delivery jobs.
type emailWorker struct {
	river.WorkerDefaults[EmailArgs]
	s *Service
}

// NextRetry applies the outbox's own backoff instead of River's default.
func (w *emailWorker) NextRetry(job *river.Job[EmailArgs]) time.Time {
	return time.Now().Add(w.s.retryDelay(job.Attempt))
}

// Timeout bounds one attempt.
func (w *emailWorker) Timeout(*river.Job[EmailArgs]) time.Duration { return w.s.jobTimeout }

// Work sends one e-mail and records the attempt.
func (w *emailWorker) Work(ctx context.Context, job *river.Job[EmailArgs]) error {
	if job.Args.DeliveryID != "" {
		return w.s.workDelivery(ctx, job)
	}
	return w.s.workMessage(ctx, job)
}

func (s *Service) workMessage(ctx context.Context, job *river.Job[EmailArgs]) error {
	a := job.Args
	kind := a.MailKind
	if kind == "" {
		kind = KindSystemAlert
	}
	m := outgoing{
		message:   message{To: a.To, Subject: a.Subject, Text: a.Text, HTML: a.HTML},
		Kind:      kind,
		MessageID: fmt.Sprintf("email-%d@%s", job.ID, s.messageDomain),
	}
	log := s.log.With(slog.String("kind", kind), slog.Int64("job_id", job.ID), slog.Int("attempt", job.Attempt))
	if a.RunID != "" {
		log = log.With(slog.String("run_id", a.RunID))
	}
	if len(a.To) == 0 {
		return s.finish(ctx, log, job, kind, permanentError(errors.New("no recipient")), nil)
	}
	return s.finish(ctx, log, job, kind, s.transport.send(ctx, m), nil)
}

// delivery is a notification_deliveries row with what its e-mail needs.
type delivery struct {
	status    string
	channel   string
	recipient string
	n         storedNotification
}

func (s *Service) workDelivery(ctx context.Context, job *river.Job[EmailArgs]) error {
	id := job.Args.DeliveryID
	log := s.log.With(slog.String("delivery_id", id), slog.Int64("job_id", job.ID), slog.Int("attempt", job.Attempt))
	if !isUUID(id) {
		log.WarnContext(ctx, "email skipped: malformed delivery id")
		return nil
	}
	d, err := s.loadDelivery(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		log.InfoContext(ctx, "email skipped: delivery no longer exists")
		return nil
	}
	if err != nil {
		// The database is unreachable or similar: try again later like an SMTP outage.
		log.WarnContext(ctx, "email delayed: cannot load delivery", slog.String("error", err.Error()))
		return fmt.Errorf("load delivery %s: %w", id, err)
	}
	log = log.With(slog.String("kind", d.n.Type))
	if d.status != DeliveryPending || d.channel != ChannelEmail {
		log.InfoContext(ctx, "email skipped: delivery not pending",
			slog.String("status", d.status), slog.String("channel", d.channel))
		return nil
	}
	record := func(status, errText string, code int) error {
		return s.recordDelivery(ctx, id, status, errText, job.Attempt, code)
	}
	email, err := renderNotification(d.n, s.cfg.WebAppURL)
	if err != nil {
		return s.finish(ctx, log, job, d.n.Type, permanentError(err), record)
	}
	email.To = []string{d.recipient}
	m := outgoing{message: email, Kind: d.n.Type, MessageID: "delivery-" + id + "@" + s.messageDomain}
	return s.finish(ctx, log, job, d.n.Type, s.transport.send(ctx, m), record)
}

// finish turns the result of one attempt into metrics, logs, the delivery row (when
// record is set) and what River should do next.
func (s *Service) finish(ctx context.Context, log *slog.Logger, job *river.Job[EmailArgs], kind string, sendErr error,
	record func(status, errText string, code int) error,
) error {
	if sendErr == nil {
		outcome := OutcomeSent
		if s.transport.name() == TransportLog {
			outcome = OutcomeLogged // the transport wrote the one line about it
		} else {
			log.InfoContext(ctx, "email sent")
		}
		s.metrics.Emails.WithLabelValues(kind, outcome).Inc()
		if record != nil {
			if err := record(DeliverySent, "", 0); err != nil {
				// Returning an error would send the e-mail again; a row left pending is
				// the smaller harm.
				log.ErrorContext(ctx, "email sent but not recorded", slog.String("error", err.Error()))
			}
		}
		return nil
	}

	var se *sendError
	if !errors.As(sendErr, &se) {
		se = &sendError{err: sendErr}
	}
	age := s.now().Sub(job.CreatedAt)
	final := se.permanent || age >= RetryWindow || job.Attempt >= job.MaxAttempts
	attrs := []any{slog.String("error", se.Error()), slog.Bool("final", final)}
	if se.code != 0 {
		attrs = append(attrs, slog.Int("smtp_code", se.code))
	}
	log.WarnContext(ctx, "email failed", attrs...)
	if !final {
		s.metrics.Emails.WithLabelValues(kind, OutcomeRetry).Inc()
		if record != nil {
			if err := record(DeliveryPending, se.Error(), se.code); err != nil {
				log.WarnContext(ctx, "email attempt not recorded", slog.String("error", err.Error()))
			}
		}
		return se
	}
	s.metrics.Emails.WithLabelValues(kind, OutcomeFailed).Inc()
	reason := se.Error()
	if !se.permanent {
		reason = fmt.Sprintf("gave up after %d attempts over %s: %s", job.Attempt, age.Round(time.Second), reason)
	}
	if record != nil {
		if err := record(DeliveryFailed, reason, se.code); err != nil {
			// Retry so the outcome gets recorded; the next attempt decides again.
			log.WarnContext(ctx, "email failure not recorded", slog.String("error", err.Error()))
			return fmt.Errorf("record failed delivery: %w", err)
		}
	}
	return river.JobCancel(se)
}

func (s *Service) loadDelivery(ctx context.Context, id string) (delivery, error) {
	var d delivery
	var data []byte
	err := s.pool.QueryRow(ctx, sqlLoadDelivery, id).Scan(
		&d.status, &d.channel, &d.n.Type, &d.n.Title, &d.n.Body, &d.n.Link, &data, &d.n.TeamID, &d.recipient)
	if err != nil {
		return delivery{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&d.n.Data); err != nil {
		d.n.Data = map[string]any{}
	}
	if d.n.Type == TypeJobCompleted {
		if runID, _ := d.n.Data["run_id"].(string); isUUID(runID) {
			var r storedRun
			err := s.pool.QueryRow(ctx, sqlLoadRun, runID).Scan(&r.TriggeredBy, &r.TeamID, &r.ProjectID, &r.StartedAt, &r.CompletedAt)
			switch {
			case err == nil:
				d.n.Run = &r
			case !errors.Is(err, pgx.ErrNoRows):
				return delivery{}, fmt.Errorf("load run %s: %w", runID, err)
			}
		}
	}
	return d, nil
}

// recordDelivery writes an attempt to a pending row. It uses its own short deadline so a
// cancelled job context still gets its outcome recorded.
func (s *Service) recordDelivery(ctx context.Context, id, status, errText string, attempts, code int) error {
	meta := map[string]any{"attempts": attempts, "transport": s.transport.name()}
	if code != 0 {
		meta["smtp_code"] = code
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err = s.pool.Exec(ctx, sqlRecordDelivery, id, status, nullIfEmpty(errText), metaJSON)
	return err
}
