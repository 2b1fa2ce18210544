package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/metrics"
)

// Options build a Service.
type Options struct {
	// Config is the loaded e-mail configuration (LoadConfig); zero fields take defaults.
	Config Config
	// Pool is where the e-mail worker reads deliveries and records attempts. Required
	// by RegisterWorkers; RunFinished and Dispatch use the caller's transaction.
	Pool *pgxpool.Pool
	// Logger receives the "email sent" and "email failed" lines, and the log transport's
	// lines. Defaults to slog.Default().
	Logger *slog.Logger
	// Metrics receives owlmetry_emails_total. Defaults to a private set.
	Metrics *metrics.Set
	// NowFunc is the clock that decides when RetryWindow is over. Defaults to time.Now.
	NowFunc func() time.Time
	// RetryDelayFunc is the backoff after a failed attempt. Defaults to RetryDelay; tests
	// shorten it.
	RetryDelayFunc func(attempt int) time.Duration
	// JobTimeout bounds one attempt. Defaults to EmailJobTimeout, raised to the SMTP
	// timeout plus 10s when that is longer.
	JobTimeout time.Duration
	// SMTPTLSConfig verifies the relay's certificate, for relays signed by a private CA.
	// Defaults to the system roots.
	SMTPTLSConfig *tls.Config
}

// Service is owlmetry's notifier: it decides and enqueues e-mails inside the engine's
// transactions (RunFinished) and sends them from River (RegisterWorkers).
type Service struct {
	cfg           Config
	pool          *pgxpool.Pool
	log           *slog.Logger
	metrics       *metrics.Set
	now           func() time.Time
	retryDelay    func(int) time.Duration
	jobTimeout    time.Duration
	transport     transport
	messageDomain string
}

var _ Notifier = (*Service)(nil)

// New builds a Service. With o.Config.SMTP nil, e-mails go to the log transport.
func New(o Options) *Service {
	cfg := o.Config.withDefaults()
	s := &Service{
		cfg: cfg, pool: o.Pool, log: o.Logger, metrics: o.Metrics,
		now: o.NowFunc, retryDelay: o.RetryDelayFunc, jobTimeout: o.JobTimeout,
		messageDomain: "owlmetry",
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.retryDelay == nil {
		s.retryDelay = RetryDelay
	}
	if s.jobTimeout <= 0 {
		s.jobTimeout = EmailJobTimeout
		if cfg.SMTP != nil && cfg.SMTP.Timeout+10*time.Second > s.jobTimeout {
			s.jobTimeout = cfg.SMTP.Timeout + 10*time.Second
		}
	}
	if a, err := mail.ParseAddress(cfg.From); err == nil {
		if _, domain, ok := strings.Cut(a.Address, "@"); ok && domain != "" {
			s.messageDomain = domain
		}
	}
	if cfg.SMTP != nil {
		s.transport = smtpTransport{cfg: *cfg.SMTP, from: cfg.From, tlsConfig: o.SMTPTLSConfig}
	} else {
		s.transport = logTransport{log: s.log}
	}
	return s
}

// Config returns the effective configuration, defaults applied.
func (s *Service) Config() Config { return s.cfg }

// RegisterWorkers adds the email_delivery worker. Only clients that work the internal
// queue need it; insert-only clients enqueue without it.
func (s *Service) RegisterWorkers(workers *river.Workers) {
	if s.pool == nil {
		panic("notify: RegisterWorkers needs Options.Pool")
	}
	river.AddWorker(workers, &emailWorker{s: s})
}

// RunFinished decides the e-mails a finished run produces and enqueues them in tx
// (engine.md §14.1): the system alert of §14.2 and the notify: true notification of
// §14.3. It sends nothing itself, so an SMTP outage cannot change the run's outcome.
func (s *Service) RunFinished(ctx context.Context, tx pgx.Tx, ins Inserter, run FinishedRun) error {
	if err := s.systemAlert(ctx, tx, ins, run); err != nil {
		return err
	}
	if run.Notify {
		return s.notifyTrigger(ctx, tx, ins, run)
	}
	return nil
}

// Interested reports whether RunFinished would enqueue anything for the run: a system
// alert or a "notify me" e-mail.
func (s *Service) Interested(run FinishedRun) bool {
	return run.Notify || (run.TeamID == nil && len(s.cfg.AlertEmails) > 0 && alertWanted(s.cfg.AlertOn, run))
}

// alertWanted applies the table of engine.md §14.2.
func alertWanted(mode AlertMode, run FinishedRun) bool {
	switch apitype.Status(run.Status) {
	case apitype.StatusCompleted:
		if resultTrue(run.Result, "aborted") {
			return true
		}
		return mode == AlertAll && !resultTrue(run.Result, "_silent")
	case apitype.StatusFailed:
		return true
	case apitype.StatusCancelled:
		return mode == AlertAll
	}
	return false
}

func (s *Service) systemAlert(ctx context.Context, tx pgx.Tx, ins Inserter, run FinishedRun) error {
	if run.TeamID != nil || len(s.cfg.AlertEmails) == 0 || !alertWanted(s.cfg.AlertOn, run) {
		return nil
	}
	email, err := renderJobEmail(reportFromRun(run), s.cfg.WebAppURL)
	if err != nil {
		return err
	}
	// One job per address: each retries on its own, and one refused mailbox cannot
	// hold back or duplicate the others.
	for _, to := range s.cfg.AlertEmails {
		args := EmailArgs{
			To: []string{to}, Subject: email.Subject, Text: email.Text, HTML: email.HTML,
			RunID: run.ID, MailKind: KindSystemAlert,
		}
		if _, err := ins.InsertTx(ctx, tx, args, emailInsertOpts()); err != nil {
			return fmt.Errorf("enqueue system alert for run %s: %w", run.ID, err)
		}
	}
	return nil
}

func (s *Service) notifyTrigger(ctx context.Context, tx pgx.Tx, ins Inserter, run FinishedRun) error {
	log := s.log.With(slog.String("run_id", run.ID), slog.String("job_type", run.JobType),
		slog.String("triggered_by", run.TriggeredBy))
	user, why := s.triggerUser(ctx, tx, run.TriggeredBy)
	if user == "" {
		log.WarnContext(ctx, "notify: no recipient for run", slog.String("reason", why))
		return nil
	}
	n, err := Dispatch(ctx, tx, ins, jobCompleted(run, user))
	if err != nil {
		return fmt.Errorf("notify for run %s: %w", run.ID, err)
	}
	if n == 0 {
		log.WarnContext(ctx, "notify: no recipient for run", slog.String("reason", "unknown user "+user))
	}
	return nil
}

// triggerUser finds the user behind an actor string (engine.md §14.3), or "" with the
// reason. The API key lookup runs in a savepoint, so a failed lookup leaves the
// caller's transaction usable.
func (s *Service) triggerUser(ctx context.Context, tx pgx.Tx, triggeredBy string) (string, string) {
	if id, ok := strings.CutPrefix(triggeredBy, "manual:user:"); ok {
		if !isUUID(id) {
			return "", "malformed user id"
		}
		return strings.ToLower(id), ""
	}
	keyID, ok := strings.CutPrefix(triggeredBy, "manual:api_key:")
	if !ok {
		return "", "no user behind this actor"
	}
	if !isUUID(keyID) {
		return "", "malformed api key id"
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return "", "api key lookup: " + err.Error()
	}
	var creator string
	if err := sp.QueryRow(ctx, sqlAPIKeyCreator, keyID).Scan(&creator); err != nil {
		_ = sp.Rollback(ctx)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", "unknown api key"
		}
		return "", "api key lookup: " + err.Error()
	}
	if err := sp.Commit(ctx); err != nil {
		return "", "api key lookup: " + err.Error()
	}
	return creator, ""
}
