package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/notify"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

// Deps is what the handlers need, injected once when they are built (engine.md §6.2).
// The zero value works: every unset field has a default.
type Deps struct {
	// Config holds the settings of jobs.md §3.10. A zero Config means DefaultConfig;
	// otherwise empty paths and URLs and a zero concurrency take their defaults.
	Config Config
	// Clock serves durations and waits. Defaults to SystemClock.
	Clock Clock
	// Logger receives handler logs when a run carries no logger of its own. Defaults to
	// a logger that discards.
	Logger *slog.Logger
	// Metrics, when set, receives the partitions-ahead gauge after partition_creation and
	// the upstream metrics of the iTunes client All builds.
	Metrics *metrics.Set
	// Limits are the bounds of jobs.md §3.4. Zero fields take the specified values.
	Limits Limits

	// CheckpointFunc, when set, is called at every cancellation point of every handler,
	// just before the handler checks its context. Tests use it to act at an exact point
	// of a run — block until a cancel arrives, release a lock — instead of sleeping.
	CheckpointFunc func(ctx context.Context, point Checkpoint)
	// StatementFunc, when set, receives the timing of every batch transaction and DDL
	// statement on an event partition. Benchmarks use it to report the longest one.
	StatementFunc func(s StatementStat)

	// ITunes is the process's iTunes Lookup client, whose pacer app_version_sync,
	// app_store_ratings_sync and any route share (jobs.md §3.5.2). Nil makes All build
	// one from Config.ITunes.
	ITunes *itunes.Client
	// Inserter inserts the River jobs of the notifications handlers dispatch (jobs.md
	// §3.7): the engine's River client, through a LateInserter. Nil makes the handlers
	// insert through an insert-only River client of their own on the run's pool, which
	// works the same for server and local runs.
	Inserter notify.Inserter

	insertOnly *insertOnlyClients
}

// Limits are the time bounds of the database work patterns (jobs.md §3.4). Tests shrink
// them so that a timeout can be provoked without waiting seconds.
type Limits struct {
	// BatchStatementTimeout bounds each batch of a batched delete. Defaults to 5s.
	BatchStatementTimeout time.Duration
	// DDLLockTimeout bounds the lock wait of every DDL statement. Defaults to 2s.
	DDLLockTimeout time.Duration
	// DDLStatementTimeout bounds every DDL statement except concurrent index builds.
	// Defaults to 60s.
	DDLStatementTimeout time.Duration
}

// Checkpoint names one cancellation point of a handler (each job's .6 subsection).
type Checkpoint string

// The cancellation points, in the order a run meets them.
const (
	CheckpointRetentionPartition Checkpoint = "retention_cleanup.partition"  // before each partition removal
	CheckpointRetentionProject   Checkpoint = "retention_cleanup.project"    // before each project
	CheckpointRetentionBatch     Checkpoint = "retention_cleanup.batch"      // before each delete batch
	CheckpointPruningPartition   Checkpoint = "db_pruning.partition"         // before each partition removal
	CheckpointPruningBatch       Checkpoint = "db_pruning.batch"             // before each fallback batch
	CheckpointSoftDeleteEntity   Checkpoint = "soft_delete_cleanup.entity"   // before each entity and the sweeps
	CheckpointSoftDeleteBatch    Checkpoint = "soft_delete_cleanup.batch"    // before each delete batch
	CheckpointPartitionCreate    Checkpoint = "partition_creation.partition" // before each ensured partition
	CheckpointPartitionIndex     Checkpoint = "partition_creation.index"     // before each concurrent index build
	CheckpointAttachmentPhase    Checkpoint = "attachment_cleanup.phase"     // before each phase
	CheckpointAttachmentBatch    Checkpoint = "attachment_cleanup.batch"     // before each batch of rows or files
	checkpointNone               Checkpoint = ""
)

// StatementStat is the timing of one statement on an event partition.
type StatementStat struct {
	// Kind is "delete_batch" (one batch transaction of a batched delete) or "ddl".
	Kind string
	// Table is the partition or table the statement worked on.
	Table string
	// Limit is the batch size n of a delete batch.
	Limit int
	// Rows is the number of rows a delete batch removed.
	Rows int64
	// Duration is the wall time from the start of the statement (or the batch
	// transaction) to its end, commit included.
	Duration time.Duration
	// TimedOut is true when the statement hit its statement timeout.
	TimedOut bool
}

// All returns a handler for every job type this package implements, ready for
// engine.Config.Handlers. It panics when the configuration cannot build the iTunes
// client, which LoadConfig rules out.
func All(deps Deps) map[string]engine.Handler {
	d := deps.withDefaults()
	return map[string]engine.Handler{
		jobtype.RetentionCleanup:    &RetentionCleanup{deps: d},
		jobtype.DBPruning:           &DBPruning{deps: d},
		jobtype.SoftDeleteCleanup:   &SoftDeleteCleanup{deps: d},
		jobtype.PartitionCreation:   &PartitionCreation{deps: d},
		jobtype.AttachmentCleanup:   &AttachmentCleanup{deps: d},
		jobtype.AppVersionSync:      &AppVersionSync{deps: d},
		jobtype.AppStoreRatingsSync: &AppStoreRatingsSync{deps: d},
	}
}

func (d Deps) withDefaults() *Deps {
	if d.Clock == nil {
		d.Clock = SystemClock()
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.Config == (Config{}) {
		d.Config = DefaultConfig()
	}
	if d.Config.AttachmentsPath == "" {
		d.Config.AttachmentsPath = DefaultAttachmentsPath
	}
	if d.Config.WebAppURL == "" {
		d.Config.WebAppURL = DefaultWebAppURL
	}
	if d.Config.FanoutConcurrency <= 0 {
		d.Config.FanoutConcurrency = DefaultFanoutConcurrency
	}
	if d.Limits.BatchStatementTimeout <= 0 {
		d.Limits.BatchStatementTimeout = 5 * time.Second
	}
	if d.Limits.DDLLockTimeout <= 0 {
		d.Limits.DDLLockTimeout = 2 * time.Second
	}
	if d.Limits.DDLStatementTimeout <= 0 {
		d.Limits.DDLStatementTimeout = 60 * time.Second
	}
	if d.Config.ITunes.BaseURL == "" {
		d.Config.ITunes.BaseURL = itunes.DefaultBaseURL
	}
	if d.ITunes == nil {
		c, err := itunes.New(itunes.Options{
			BaseURL: d.Config.ITunes.BaseURL,
			Pacer:   itunes.NewPacerFromConfig(d.Config.ITunes, d.Metrics),
			Metrics: d.Metrics,
			Logger:  d.Logger,
		})
		if err != nil {
			panic(fmt.Sprintf("jobs: %v", err))
		}
		d.ITunes = c
	}
	d.insertOnly = &insertOnlyClients{log: d.Logger, clients: map[*pgxpool.Pool]*river.Client[pgx.Tx]{}}
	return &d
}

// errStopped is how the shared helpers tell a handler that its context was cancelled
// at a checkpoint or during a statement; the handler then returns engine.Stopped.
var errStopped = errors.New("stopped by cancellation")

// stopPoint is a cancellation point: it calls the test hook, then reports errStopped
// when ctx is done.
func (d *Deps) stopPoint(ctx context.Context, cp Checkpoint) error {
	if d.CheckpointFunc != nil && cp != checkpointNone {
		d.CheckpointFunc(ctx, cp)
	}
	if ctx.Err() != nil {
		return errStopped
	}
	return nil
}

// stopped maps an error met while ctx was cancelled to errStopped, so a statement
// aborted by the cancellation reads as a stop rather than a failure.
func stopped(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return errStopped
	}
	return err
}

func (d *Deps) observe(s StatementStat) {
	if d.StatementFunc != nil {
		d.StatementFunc(s)
	}
}

// log returns the run's logger, which carries its ids, or the injected one.
func (d *Deps) log(run *engine.Run) *slog.Logger {
	if run != nil && run.Log != nil {
		return run.Log
	}
	return d.Logger
}

// report sends progress when the run has a reporter.
func report(run *engine.Run, processed, total int64, message string) {
	if run.Progress != nil {
		run.Progress.Report(processed, total, message)
	}
}
