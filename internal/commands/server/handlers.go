package server

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/engine"
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

// jobHandlers is the one place where this build's job handlers are chosen. The handlers
// live in internal/jobs, one file per type; until that package exists the map is empty,
// so every run-creating route answers 501 "<type> has no handler in this build" rather
// than accepting runs no replica can execute. Once it exists this returns
// jobs.All(deps).
func jobHandlers(handlerDeps) map[string]engine.Handler {
	return map[string]engine.Handler{}
}

// notifier is the one place where the engine's notifier is built (engine.md §14). The
// e-mail outbox (internal/notify's Service, configured by notify.LoadConfig) is not part
// of this build yet, so terminal runs notify nobody: the engine skips notifications when
// Config.Notifier is nil.
func notifier(handlerDeps) (notify.Notifier, error) {
	return nil, nil
}
