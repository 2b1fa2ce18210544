package server

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/notify"
)

// handlerDeps is what the job handlers are built from: the shared pool, the process
// logger and metrics, the credentials key and the environment (handler variables of
// jobs.md §3.10, upstream base URLs of upstreams.md §1.3).
type handlerDeps struct {
	Pool      *pgxpool.Pool
	Logger    *slog.Logger
	Metrics   *metrics.Set
	SecretKey []byte
	LookupEnv func(string) (string, bool)
}

// jobHandlers is the one place where this build's job handlers are chosen: every
// handler internal/jobs implements (jobs.All). A type without one is refused by the
// run-creating routes with 501 "<type> has no handler in this build" rather than
// accepted as a run no replica could execute.
func jobHandlers(d handlerDeps, cfg jobs.Config) map[string]engine.Handler {
	return jobs.All(jobs.Deps{Config: cfg, Logger: d.Logger, Metrics: d.Metrics})
}

// notifier builds the engine's notifier (engine.md §14): the durable e-mail outbox of
// internal/notify, configured from the environment (SMTP_*, EMAIL_FROM, WEB_APP_URL,
// SYSTEM_JOBS_ALERT_*). Without SMTP_HOST or SMTP_URL it writes e-mails to the log.
func notifier(d handlerDeps, cfg notify.Config) notify.Notifier {
	return notify.New(notify.Options{Config: cfg, Pool: d.Pool, Logger: d.Logger, Metrics: d.Metrics})
}
