package localjobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

type report struct {
	run    *apitype.JobRun
	outage error
}

func TestRunSourceFollowsARun(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	id := insertRun(t, b, jobtype.IssueScan, "pending", "")
	src := b.store.RunSource(20 * time.Millisecond)

	first, err := src.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusPending, first.Status)
	back, err := localjobs.RunOf(first)
	require.NoError(t, err)
	require.Equal(t, "queue", back.Executor, "the snapshot carries the engine columns")

	reports := make(chan report, 64)
	done := make(chan error, 1)
	go func() {
		done <- src.Watch(ctx, id, func(r *apitype.JobRun, _ *apitype.ProgressEvent, outage error) {
			reports <- report{r, outage}
		})
	}()
	next := func() report {
		select {
		case r := <-reports:
			return r
		case <-time.After(20 * time.Second):
			t.Fatal("no report")
			return report{}
		}
	}
	require.Equal(t, apitype.StatusPending, next().run.Status)

	_, err = b.tdb.Pool.Exec(ctx, `UPDATE job_runs SET status = 'running', started_at = now(), heartbeat_at = now(),
		owner_node = 'n1', owner_instance = gen_random_uuid(), progress = '{"processed": 2, "total": 4}' WHERE id = $1`, id)
	require.NoError(t, err)
	r := next()
	require.Equal(t, apitype.StatusRunning, r.run.Status)
	require.EqualValues(t, 2, r.run.Progress.Processed)

	_, err = b.tdb.Pool.Exec(ctx, `UPDATE job_runs SET status = 'completed', completed_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusCompleted, next().run.Status)
	select {
	case err := <-done:
		require.NoError(t, err, "a terminal run ends the watch")
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not end")
	}
	require.Empty(t, reports, "an unchanged run is not reported twice")
}

func TestRunSourceGoneAndCancelled(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	src := b.store.RunSource(20 * time.Millisecond)

	_, err := src.Get(ctx, "00000000-0000-4000-8000-000000000000")
	var nf *localjobs.RunNotFoundError
	require.ErrorAs(t, err, &nf)

	id := insertRun(t, b, jobtype.IssueScan, "pending", "")
	done := make(chan error, 1)
	seen := make(chan struct{}, 1)
	go func() {
		done <- src.Watch(ctx, id, func(*apitype.JobRun, *apitype.ProgressEvent, error) {
			select {
			case seen <- struct{}{}:
			default:
			}
		})
	}()
	<-seen
	_, err = b.tdb.Pool.Exec(ctx, `DELETE FROM job_runs WHERE id = $1`, id)
	require.NoError(t, err)
	select {
	case err := <-done:
		require.ErrorAs(t, err, &nf, "a run that disappears ends the wait")
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not end")
	}

	// Cancel through the source is the engine's cancel; an ended run needs nothing.
	id = insertRun(t, b, jobtype.IssueNotify, "pending", "")
	require.NoError(t, src.Cancel(ctx, id))
	require.NoError(t, src.Cancel(ctx, id), "already cancelled")
	var status string
	require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT status::text FROM job_runs WHERE id = $1`, id).Scan(&status))
	require.Equal(t, "cancelled", status)

	// A context that ends stops the watch with its error.
	id = insertRun(t, b, jobtype.SoftDeleteCleanup, "pending", "")
	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- src.Watch(cctx, id, func(*apitype.JobRun, *apitype.ProgressEvent, error) { cancel() }) }()
	select {
	case err := <-done:
		require.True(t, errors.Is(err, context.Canceled), err)
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not end")
	}
}
