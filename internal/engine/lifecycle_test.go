package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

// A graceful stop gives running handlers the shutdown timeout, then cancels them; a
// handler that stops in time is recorded failed with the restart message and keeps its
// partial result, one that ignores its context is swept, and pending runs stay queued.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	polite := newBlocker()
	stubborn := newBlocker()
	stubborn.ignore = true
	defer close(stubborn.release)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: polite, jobtype.AttachmentCleanup: stubborn},
		func(c *engine.Config) { c.ShutdownTimeout = 2 * time.Second })
	inserter := newEngine(t, tdb, map[string]engine.Handler{jobtype.IssueScan: noop()}, func(c *engine.Config) { c.Workers = 0 })

	a := enqueueSystem(t, e, jobtype.PartitionCreation)
	b := enqueueSystem(t, e, jobtype.AttachmentCleanup)
	polite.waitStarted(t)
	stubborn.waitStarted(t)
	require.True(t, e.Ready())

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		require.NoError(t, e.Stop(ctx))
	}()
	require.Eventually(t, func() bool { return !e.Ready() }, 5*time.Second, 10*time.Millisecond, "not ready once stopping")
	pending := enqueueSystem(t, inserter, jobtype.IssueScan)
	<-stopped

	ra, err := inserter.Get(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusFailed, ra.Status)
	require.Equal(t, engine.ErrTextRestarted, *ra.Error)
	require.Equal(t, map[string]any{"processed": float64(1)}, ra.Result)
	require.Equal(t, int32(engine.StopShutdown), polite.sawStop.Load())

	rb, err := inserter.Get(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusFailed, rb.Status, "swept although its handler never returned")
	require.Equal(t, engine.ErrTextRestarted, *rb.Error)

	rp, err := inserter.Get(ctx, pending.ID)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusPending, rp.Status)

	var instances int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM owlmetry_instances WHERE instance_id = $1`, e.InstanceID()).Scan(&instances))
	require.Zero(t, instances, "the instance row is removed")
}

func TestRunLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	handlers := map[string]engine.Handler{
		jobtype.PartitionCreation: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			run.Progress.Report(2, 2, "done")
			return engine.Result{"created": 2}, nil
		}),
	}
	e := newEngine(t, tdb, handlers, func(c *engine.Config) { c.Local = true })
	var started engine.RunRecord
	rec, err := e.RunLocal(ctx, engine.EnqueueRequest{JobType: jobtype.PartitionCreation, Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:me@box"},
		engine.LocalOptions{Started: func(r engine.RunRecord) { started = r }})
	require.NoError(t, err)
	require.Equal(t, apitype.StatusRunning, started.Status, "inserted directly as running")
	require.Equal(t, "local", started.Executor)
	require.Nil(t, started.RiverJobID)
	require.Contains(t, *started.OwnerNode, "cli-")
	require.Equal(t, apitype.StatusCompleted, rec.Status)
	require.Equal(t, map[string]any{"created": float64(2)}, rec.Result)
}

func TestRunLocalCancelAndInterrupt(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	b := newBlocker()
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b, jobtype.AttachmentCleanup: b}, func(c *engine.Config) { c.Local = true })

	// First signal: a cooperative cancel, recorded with the CLI's actor.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { b.waitStarted(t); cancel() }()
	rec, err := e.RunLocal(ctx, engine.EnqueueRequest{JobType: jobtype.PartitionCreation, Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:me@box"},
		engine.LocalOptions{CancelActor: "manual:cli:me@box"})
	require.NoError(t, err)
	require.Equal(t, apitype.StatusCancelled, rec.Status)
	require.Equal(t, "manual:cli:me@box", *rec.CancelRequestedBy)

	// Second signal: failed at once.
	b2 := newBlocker()
	b2.ignore = true
	defer close(b2.release)
	e2 := newEngine(t, tdb, map[string]engine.Handler{jobtype.AttachmentCleanup: b2}, func(c *engine.Config) { c.Local = true })
	interrupt := make(chan struct{})
	go func() { b2.waitStarted(t); close(interrupt) }()
	rec, err = e2.RunLocal(context.Background(), engine.EnqueueRequest{JobType: jobtype.AttachmentCleanup, Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:me@box"},
		engine.LocalOptions{Interrupt: interrupt})
	require.NoError(t, err)
	require.Equal(t, apitype.StatusFailed, rec.Status)
	require.Equal(t, engine.ErrTextInterrupted, *rec.Error)
}

// A local run respects the overlap rule, and a local run reaps stale runs before it starts.
func TestRunLocalConflictAndReap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: noop()}, func(c *engine.Config) { c.Local = true })
	// A run left running by a process that died long ago…
	var stale string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO job_runs (job_type, status, triggered_by, started_at, heartbeat_at, owner_node, owner_instance)
		VALUES ('partition_creation', 'running', 'schedule', now() - interval '1 hour', now() - interval '1 hour', 'gone', gen_random_uuid())
		RETURNING id`).Scan(&stale))
	// …is reaped first, so the new run is not a conflict.
	rec, err := e.RunLocal(ctx, engine.EnqueueRequest{JobType: jobtype.PartitionCreation, Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:me@box"}, engine.LocalOptions{})
	require.NoError(t, err)
	require.Equal(t, apitype.StatusCompleted, rec.Status)
	reaped, err := e.Get(ctx, stale)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusFailed, reaped.Status)
	require.Equal(t, engine.ErrTextRestarted, *reaped.Error)

	// A live pending run of the key is a conflict.
	q := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: noop()}, func(c *engine.Config) { c.Workers = 0 })
	pending := enqueueSystem(t, q, jobtype.PartitionCreation)
	_, err = e.RunLocal(ctx, engine.EnqueueRequest{JobType: jobtype.PartitionCreation, Entry: jobtype.EntryCLI, TriggeredBy: "x"}, engine.LocalOptions{})
	var c *apitype.ConflictError
	require.ErrorAs(t, err, &c)
	require.Equal(t, pending.ID, c.ExistingRunID)
}

func TestRecoverDryRunAndPendingUntouched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: noop()}, func(c *engine.Config) {
		c.Local = true
	})
	var stale, pending string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO job_runs (job_type, status, triggered_by, started_at, heartbeat_at, owner_node, owner_instance)
		VALUES ('issue_scan', 'running', 'schedule', now() - interval '1 hour', now() - interval '10 minutes', 'gone', gen_random_uuid())
		RETURNING id`).Scan(&stale))
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO job_runs (job_type, triggered_by, created_at) VALUES ('issue_notify', 'schedule', now() - interval '1 day') RETURNING id`).Scan(&pending))

	would, err := e.Recover(ctx, true)
	require.NoError(t, err)
	require.Len(t, would, 1)
	require.Equal(t, stale, would[0].ID)
	still, err := e.Get(ctx, stale)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusRunning, still.Status, "a dry run changes nothing")

	did, err := e.Recover(ctx, false)
	require.NoError(t, err)
	require.Len(t, did, 1)
	require.Equal(t, apitype.StatusFailed, did[0].Status)
	p, err := e.Get(ctx, pending)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusPending, p.Status, "recovery never touches pending runs")
}

func TestMaintenanceLostQueueAndRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: noop()}, func(c *engine.Config) {
		c.Workers = 0
		c.JobRunsRetentionDays = 30
	})
	lost := enqueueSystem(t, e, jobtype.PartitionCreation)
	// The River row vanishes (removed by hand) while the run is still pending.
	_, err := tdb.Pool.Exec(ctx, `DELETE FROM river_job WHERE id = $1`, *lost.RiverJobID)
	require.NoError(t, err)
	_, err = tdb.Pool.Exec(ctx, `UPDATE job_runs SET created_at = now() - interval '10 minutes' WHERE id = $1`, lost.ID)
	require.NoError(t, err)

	// Old terminal runs: three of issue_scan (the newest is kept at any age), one active.
	for _, age := range []int{100, 90, 80} {
		_, err := tdb.Pool.Exec(ctx, `INSERT INTO job_runs (job_type, status, triggered_by, created_at, completed_at)
			VALUES ('issue_scan', 'completed', 'schedule', now() - make_interval(days => $1), now() - make_interval(days => $1))`, age)
		require.NoError(t, err)
	}
	_, err = tdb.Pool.Exec(ctx, `INSERT INTO job_runs (job_type, status, triggered_by, created_at, started_at, heartbeat_at, owner_instance)
		VALUES ('issue_notify', 'running', 'schedule', now() - interval '200 days', now(), now(), gen_random_uuid())`)
	require.NoError(t, err)

	require.NoError(t, e.Maintain(ctx))
	got, err := e.Get(ctx, lost.ID)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusFailed, got.Status)
	require.Equal(t, engine.ErrTextLostFromQueue, *got.Error)

	var scans, active int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_runs WHERE job_type = 'issue_scan'`).Scan(&scans))
	require.Equal(t, 1, scans, "the newest terminal run of the pair survives")
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_runs WHERE status = 'running'`).Scan(&active))
	require.Equal(t, 1, active, "active runs are never deleted")
}

func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	e := newEngine(t, tdb, nil, func(c *engine.Config) { c.Workers = 0 })
	for i := range 5 {
		_, err := tdb.Pool.Exec(ctx, `INSERT INTO job_runs (job_type, status, triggered_by, completed_at)
			VALUES ('retention_cleanup', 'failed', 'schedule', now() - make_interval(days => 100 + $1))`, i)
		require.NoError(t, err)
	}
	_, err := tdb.Pool.Exec(ctx, `INSERT INTO job_runs (job_type, status, triggered_by, completed_at)
		VALUES ('issue_scan', 'completed', 'schedule', now() - interval '1 day')`)
	require.NoError(t, err)

	counts, err := e.Prune(ctx, engine.PruneOptions{OlderThan: 90 * 24 * time.Hour, KeepLast: 2, DryRun: true})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"retention_cleanup": 3}, counts)
	counts, err = e.Prune(ctx, engine.PruneOptions{OlderThan: 90 * 24 * time.Hour, KeepLast: 2, BatchSize: 2})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"retention_cleanup": 3}, counts)
	var left int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_runs`).Scan(&left))
	require.Equal(t, 3, left)
}
