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

// A cancel requested through a second engine instance reaches the running handler on the
// first, and the run ends cancelled with the handler's partial result.
func TestCancelFromAnotherInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	b := newBlocker()
	worker := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b}, nil)
	other := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b}, func(c *engine.Config) { c.Workers = 0 })

	rec := enqueueSystem(t, other, jobtype.PartitionCreation)
	b.waitStarted(t)
	waitRun(t, worker, rec.ID, statusIs("running"))

	got, outcome, err := other.Cancel(ctx, rec.ID, "manual:user:someone")
	require.NoError(t, err)
	require.Equal(t, engine.CancelRequested, outcome)
	require.Equal(t, apitype.StatusRunning, got.Status)
	require.NotNil(t, got.CancelRequestedAt)

	done := waitRun(t, worker, rec.ID, terminal)
	require.Equal(t, apitype.StatusCancelled, done.Status)
	require.Equal(t, int32(engine.StopCancelRequested), b.sawStop.Load())
	require.Equal(t, map[string]any{"processed": float64(1)}, done.Result)
	require.Equal(t, "manual:user:someone", *done.CancelRequestedBy)
	require.Nil(t, done.Error)

	_, _, err = other.Cancel(ctx, rec.ID, "x")
	var nc *engine.NotCancellableError
	require.ErrorAs(t, err, &nc)
	require.Equal(t, `Cannot cancel a job with status "cancelled"`, err.Error())

	_, _, err = other.Cancel(ctx, "00000000-0000-4000-8000-000000000000", "x")
	require.ErrorIs(t, err, engine.ErrRunNotFound)
}

func TestCancelPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	// No workers: the run stays pending.
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: noop()}, func(c *engine.Config) { c.Workers = 0 })
	rec := enqueueSystem(t, e, jobtype.PartitionCreation)
	got, outcome, err := e.Cancel(ctx, rec.ID, "manual:cli:me@host")
	require.NoError(t, err)
	require.Equal(t, engine.CancelDone, outcome)
	require.Equal(t, apitype.StatusCancelled, got.Status)
	require.NotNil(t, got.CompletedAt)
	require.Nil(t, got.StartedAt)

	// Its River job is cancelled too, so a worker that starts later never runs it.
	var state string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, *rec.RiverJobID).Scan(&state))
	require.Equal(t, "cancelled", state)

	b := newBlocker()
	late := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b}, nil)
	again := enqueueSystem(t, late, jobtype.PartitionCreation) // the key is free again
	require.Equal(t, again.ID, b.waitStarted(t), "only the new run is executed")
	close(b.release)
	waitRun(t, late, again.ID, terminal)
}

// A handler that finishes its work despite a late cancel ends completed and keeps the
// record of the request.
func TestLateCancelStillCompletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	b := newBlocker()
	b.ignore = true
	b.result = engine.Result{"done": true}
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b}, nil)
	rec := enqueueSystem(t, e, jobtype.PartitionCreation)
	b.waitStarted(t)
	_, _, err := e.Cancel(ctx, rec.ID, "manual:cli:me@host")
	require.NoError(t, err)
	// Idempotent while the run is still running: the first actor is kept.
	again, outcome, err := e.Cancel(ctx, rec.ID, "manual:cli:someone-else@host")
	require.NoError(t, err)
	require.Equal(t, engine.CancelRequested, outcome)
	require.Equal(t, "manual:cli:me@host", *again.CancelRequestedBy)
	close(b.release)
	done := waitRun(t, e, rec.ID, terminal)
	require.Equal(t, apitype.StatusCompleted, done.Status)
	require.NotNil(t, done.CancelRequestedAt)
	require.Equal(t, int32(engine.StopCancelRequested), b.sawStop.Load(), "the handler saw the request")
}

// The heartbeat delivers a cancel whose notification was missed.
func TestCancelDeliveredByHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	b := newBlocker()
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b}, nil)
	rec := enqueueSystem(t, e, jobtype.PartitionCreation)
	b.waitStarted(t)
	waitRun(t, e, rec.ID, statusIs("running"))
	// Written behind the engine's back with the trigger disabled: no notification, no
	// River cancel. Only the heartbeat can find it.
	_, err := tdb.Pool.Exec(ctx, `ALTER TABLE job_runs DISABLE TRIGGER job_runs_notify;
		UPDATE job_runs SET cancel_requested_at = now(), cancel_requested_by = 'manual:cli:elsewhere' WHERE id = '`+rec.ID+`';
		ALTER TABLE job_runs ENABLE TRIGGER job_runs_notify`)
	require.NoError(t, err)
	done := waitRun(t, e, rec.ID, terminal)
	require.Equal(t, apitype.StatusCancelled, done.Status)
}

func TestMaxRunTimeFailsTheRun(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	b := newBlocker()
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b}, func(c *engine.Config) {
		c.MaxRunTime = map[string]time.Duration{jobtype.PartitionCreation: 300 * time.Millisecond}
	})
	rec := enqueueSystem(t, e, jobtype.PartitionCreation)
	done := waitRun(t, e, rec.ID, terminal)
	require.Equal(t, apitype.StatusFailed, done.Status)
	require.Equal(t, "Job exceeded its maximum run time of 300ms", *done.Error)
	require.Equal(t, map[string]any{"processed": float64(1)}, done.Result, "the partial result is kept")
}
