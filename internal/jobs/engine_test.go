package jobs_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

var nodeSeq atomic.Int64

// newEngine builds an engine with the real handlers and fast timers: a local (CLI)
// engine, or a started server engine.
func newEngine(t *testing.T, tdb *pgtest.DB, deps jobs.Deps, local bool) *engine.Engine {
	t.Helper()
	settings := engine.Settings{
		NodeID: fmt.Sprintf("jobs-test-%d", nodeSeq.Add(1)), Workers: 4, InternalWorkers: 1,
		FetchCooldown: 2 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		ProgressInterval: 50 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond,
		StaleAfter: 2 * time.Second, ReapInterval: 500 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		CronProfile: "off",
	}
	e, err := engine.New(tdb.Pool, engine.Config{Settings: settings, Handlers: jobs.All(deps), Local: local, TestOnly: true})
	require.NoError(t, err)
	if !local {
		require.NoError(t, e.Start(bg))
	}
	t.Cleanup(func() { e.Close() }) //nolint:errcheck
	return e
}

// blockAt returns a checkpoint hook that, the n-th time a run reaches point, signals
// reached and then waits for the run's context — the engine cancels it when the test
// cancels the run. It never sleeps: the wait ends with the cancellation.
func blockAt(point jobs.Checkpoint, n int64, reached chan<- struct{}) func(context.Context, jobs.Checkpoint) {
	var seen atomic.Int64
	return func(ctx context.Context, p jobs.Checkpoint) {
		if p != point || seen.Add(1) != n {
			return
		}
		close(reached)
		select {
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
			panic("the run was never cancelled")
		}
	}
}

// waitTerminal follows a run until it ends.
func waitTerminal(t *testing.T, e *engine.Engine, id string) engine.RunRecord {
	t.Helper()
	sub := e.Subscribe(id)
	defer sub.Close()
	deadline := time.After(30 * time.Second)
	for {
		rec, err := e.Get(bg, id)
		require.NoError(t, err)
		if rec.Status.Terminal() {
			return rec
		}
		select {
		case <-sub.C:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("run %s never ended; status %s", id, rec.Status)
		}
	}
}

// lifecycleCase seeds a database so that a run of jobType reaches point at least n
// times, and checks the partial result the cancelled run stored.
type lifecycleCase struct {
	jobType string
	point   jobs.Checkpoint
	n       int64
	setup   func(t *testing.T, pool *pgxpool.Pool, deps *jobs.Deps) map[string]any
	check   func(t *testing.T, pool *pgxpool.Pool, partial map[string]any)
}

var lifecycleCases = []lifecycleCase{
	{
		jobType: jobtype.RetentionCleanup, point: jobs.CheckpointRetentionProject, n: 2,
		setup: func(t *testing.T, pool *pgxpool.Pool, _ *jobs.Deps) map[string]any {
			now := t0(t, pool)
			ensureHistory(t, pool, now, 60*day)
			team := seedTeam(t, pool)
			for range 2 {
				insertEvents(t, pool, "events", seedApp(t, pool, seedProject(t, pool, team, 30)), now.Add(-45*day), 10, time.Second, "old")
			}
			seedProject(t, pool, team, 365)
			return nil
		},
		check: func(t *testing.T, pool *pgxpool.Pool, partial map[string]any) {
			require.Equal(t, float64(1), partial["projects_processed"])
			require.Equal(t, float64(10), partial["events_deleted"])
			require.Equal(t, int64(10), count(t, pool, `SELECT count(*) FROM events`))
		},
	},
	{
		jobType: jobtype.DBPruning, point: jobs.CheckpointPruningPartition, n: 2,
		setup: func(t *testing.T, pool *pgxpool.Pool, _ *jobs.Deps) map[string]any {
			ensureMonths(t, pool, db.MonthStart(t0(t, pool)).AddDate(0, -3, 0), 3)
			return map[string]any{"max_size_bytes": 1}
		},
		check: func(t *testing.T, pool *pgxpool.Pool, partial map[string]any) {
			m := db.MonthStart(t0(t, pool)).AddDate(0, -3, 0)
			require.Equal(t, []any{db.PartitionName("events", m)}, partial["dropped_partitions"])
			require.Equal(t, true, partial["still_over_limit"])
		},
	},
	{
		jobType: jobtype.SoftDeleteCleanup, point: jobs.CheckpointSoftDeleteEntity, n: 2,
		setup: func(t *testing.T, pool *pgxpool.Pool, _ *jobs.Deps) map[string]any {
			project := seedProject(t, pool, seedTeam(t, pool))
			for range 2 {
				softDelete(t, pool, "apps", seedApp(t, pool, project), 8*day)
			}
			return nil
		},
		check: func(t *testing.T, pool *pgxpool.Pool, partial map[string]any) {
			require.Equal(t, float64(1), partial["apps"])
			require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM apps`))
		},
	},
	{
		jobType: jobtype.PartitionCreation, point: jobs.CheckpointPartitionCreate, n: 4,
		setup: func(t *testing.T, pool *pgxpool.Pool, _ *jobs.Deps) map[string]any {
			dropMonths(t, pool, db.MonthStart(t0(t, pool)), 1, 2)
			return nil
		},
		check: func(t *testing.T, pool *pgxpool.Pool, partial map[string]any) {
			m0 := db.MonthStart(t0(t, pool))
			require.Equal(t, []any{db.PartitionName("events", m0.AddDate(0, 1, 0)), db.PartitionName("events", m0.AddDate(0, 2, 0))}, partial["created"])
		},
	},
	{
		jobType: jobtype.AttachmentCleanup, point: jobs.CheckpointAttachmentBatch, n: 2,
		setup: func(t *testing.T, pool *pgxpool.Pool, deps *jobs.Deps) map[string]any {
			project := seedProject(t, pool, seedTeam(t, pool))
			exec(t, pool, `INSERT INTO event_attachments (project_id, app_id, original_filename, content_type, size_bytes, sha256, storage_path, deleted_at)
				SELECT $1, $2, 'f', 't', 1, 'x', '', now() - interval '8 days' FROM generate_series(1, 1500)`, project, seedApp(t, pool, project))
			deps.Config = jobs.DefaultConfig()
			deps.Config.AttachmentsPath = t.TempDir()
			return nil
		},
		check: func(t *testing.T, pool *pgxpool.Pool, partial map[string]any) {
			require.Equal(t, float64(1000), partial["soft_deleted_removed"])
			require.Equal(t, int64(500), count(t, pool, `SELECT count(*) FROM event_attachments`))
		},
	},
}

// Each handler, run locally by the real engine and cancelled with engine.Cancel from
// another goroutine at a checkpoint in the middle of its work, ends cancelled with its
// partial counters.
func TestHandlersEndCancelledWithPartialCounters(t *testing.T) {
	t.Parallel()
	for _, tc := range lifecycleCases {
		t.Run(tc.jobType, func(t *testing.T) {
			t.Parallel()
			tdb := newDB(t)
			deps := testDeps(newFakeClock(time.Now()))
			params := tc.setup(t, tdb.Pool, &deps)
			reached := make(chan struct{})
			deps.CheckpointFunc = blockAt(tc.point, tc.n, reached)
			e := newEngine(t, tdb, deps, true)

			ids := make(chan string, 1)
			cancelled := make(chan error, 1)
			go func() {
				<-reached
				_, out, err := e.Cancel(bg, <-ids, "manual:cli:test@host")
				if err == nil && out != engine.CancelRequested {
					err = fmt.Errorf("cancel outcome %s", out)
				}
				cancelled <- err
			}()
			rec, err := e.RunLocal(bg, engine.EnqueueRequest{JobType: tc.jobType, Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:test@host", Params: params},
				engine.LocalOptions{Started: func(r engine.RunRecord) { ids <- r.ID }})
			require.NoError(t, err)
			require.NoError(t, <-cancelled)
			require.Equal(t, apitype.StatusCancelled, rec.Status, "error: %v", rec.Error)
			require.NotNil(t, rec.CancelRequestedAt)
			require.NotNil(t, rec.Result)
			tc.check(t, tdb.Pool, rec.Result)
		})
	}
}

// Through a started engine: a queued run completes with its result and full progress,
// and a queued run cancelled mid-way ends cancelled.
func TestHandlersThroughTheQueue(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	m0 := db.MonthStart(t0(t, tdb.Pool))
	dropped := dropMonths(t, tdb.Pool, m0, 2, 2)
	project := seedProject(t, tdb.Pool, seedTeam(t, tdb.Pool))
	for range 2 {
		softDelete(t, tdb.Pool, "apps", seedApp(t, tdb.Pool, project), 8*day)
	}
	reached := make(chan struct{})
	deps := testDeps(newFakeClock(time.Now()))
	deps.CheckpointFunc = blockAt(jobs.CheckpointSoftDeleteEntity, 2, reached)
	e := newEngine(t, tdb, deps, false)

	rec, err := e.Enqueue(bg, engine.EnqueueRequest{JobType: jobtype.PartitionCreation, Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:test@host"})
	require.NoError(t, err)
	done := waitTerminal(t, e, rec.ID)
	require.Equal(t, apitype.StatusCompleted, done.Status, "error: %v", done.Error)
	require.ElementsMatch(t, dropped, done.Result["created"])
	require.Equal(t, false, done.Result["_silent"])
	require.NotNil(t, done.Progress)
	require.Equal(t, int64(9), int64(done.Progress.Processed))
	require.Equal(t, int64(9), int64(done.Progress.Total))

	rec, err = e.Enqueue(bg, engine.EnqueueRequest{JobType: jobtype.SoftDeleteCleanup, Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:test@host"})
	require.NoError(t, err)
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the run never reached its second entity")
	}
	_, out, err := e.Cancel(bg, rec.ID, "manual:cli:test@host")
	require.NoError(t, err)
	require.Equal(t, engine.CancelRequested, out)
	done = waitTerminal(t, e, rec.ID)
	require.Equal(t, apitype.StatusCancelled, done.Status, "error: %v", done.Error)
	require.Equal(t, float64(1), done.Result["apps"])
}
