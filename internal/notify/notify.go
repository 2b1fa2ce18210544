package notify

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Inserter is the part of River's client the outbox needs. *river.Client[pgx.Tx]
// satisfies it, including an insert-only client that was never started.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// FinishedRun describes a run that has just reached a terminal state.
type FinishedRun struct {
	ID          string
	JobType     string
	Status      string // completed, failed or cancelled
	TeamID      *string
	ProjectID   *string
	TriggeredBy string
	Notify      bool
	// Result is the stored result object, nil when none.
	Result map[string]any
	// Error is set for failed runs.
	Error       *string
	StartedAt   *time.Time
	CompletedAt time.Time
}

// Notifier is what the engine needs from this package. The engine calls RunFinished
// inside the transaction of every terminal transition (engine.md §14.1), and lets the
// notifier register its River workers (email_delivery) on the clients that work jobs.
type Notifier interface {
	RunFinished(ctx context.Context, tx pgx.Tx, ins Inserter, run FinishedRun) error
	RegisterWorkers(workers *river.Workers)
}

// Interest is an optional Notifier method. Interested reports whether RunFinished would
// write anything for a run about to end this way; the engine finishes the runs nobody is
// told about in one statement instead of a transaction. It must never answer false for a
// run RunFinished would act on.
type Interest interface {
	Interested(run FinishedRun) bool
}
