package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func enqueueSystem(t *testing.T, e *engine.Engine, jobType string) engine.RunRecord {
	t.Helper()
	rec, err := e.Enqueue(context.Background(), engine.EnqueueRequest{
		JobType: jobType, Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:test@host",
	})
	require.NoError(t, err)
	return rec
}

func TestLifecycleCompleted(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	b := newBlocker()
	b.result = engine.Result{"created": []string{"x"}, "_silent": false}
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b}, nil)

	rec := enqueueSystem(t, e, jobtype.PartitionCreation)
	require.Equal(t, apitype.StatusPending, rec.Status)
	require.Nil(t, rec.TeamID)
	require.NotNil(t, rec.RiverJobID)
	require.Equal(t, "queue", rec.Executor)

	b.waitStarted(t)
	running := waitRun(t, e, rec.ID, statusIs("running"))
	require.NotNil(t, running.StartedAt)
	require.Equal(t, e.InstanceID(), *running.OwnerInstance)
	require.Equal(t, e.NodeID(), *running.OwnerNode)
	require.NotNil(t, running.HeartbeatAt)

	close(b.release)
	done := waitRun(t, e, rec.ID, terminal)
	require.Equal(t, apitype.StatusCompleted, done.Status)
	require.NotNil(t, done.CompletedAt)
	require.False(t, done.CompletedAt.Before(*done.StartedAt))
	require.False(t, done.StartedAt.Before(done.CreatedAt))
	require.Equal(t, []any{"x"}, done.Result["created"])
	require.Nil(t, done.Error)
	// The last report was 1/10: a completed run ends at processed = total.
	require.Equal(t, &apitype.Progress{Processed: 10, Total: 10, Message: "working"}, done.Progress)
}

func TestLifecycleFailedAndPanic(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	long := strings.Repeat("x", 1500)
	e := newEngine(t, tdb, map[string]engine.Handler{
		jobtype.PartitionCreation: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			run.Progress.Report(3, 0, "indeterminate")
			return engine.Result{"partial": 1}, errors.New("upstream said no")
		}),
		jobtype.AttachmentCleanup: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			panic("boom")
		}),
		jobtype.SoftDeleteCleanup: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			return nil, errors.New(long)
		}),
		jobtype.IssueScan: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			return engine.Result{"blob": strings.Repeat("y", 1<<20)}, nil
		}),
	}, nil)

	failed := waitRun(t, e, enqueueSystem(t, e, jobtype.PartitionCreation).ID, terminal)
	require.Equal(t, apitype.StatusFailed, failed.Status)
	require.Equal(t, "upstream said no", *failed.Error)
	require.Nil(t, failed.Result, "an ordinary error stores no result")
	require.Equal(t, &apitype.Progress{Processed: 3, Total: 0, Message: "indeterminate"}, failed.Progress)

	panicked := waitRun(t, e, enqueueSystem(t, e, jobtype.AttachmentCleanup).ID, terminal)
	require.Equal(t, apitype.StatusFailed, panicked.Status)
	require.Equal(t, "panic: boom", *panicked.Error)

	cut := waitRun(t, e, enqueueSystem(t, e, jobtype.SoftDeleteCleanup).ID, terminal)
	require.Equal(t, 1000, len([]rune(*cut.Error)))
	require.True(t, strings.HasSuffix(*cut.Error, "…"))

	big := waitRun(t, e, enqueueSystem(t, e, jobtype.IssueScan).ID, terminal)
	require.Equal(t, apitype.StatusFailed, big.Status)
	require.Contains(t, *big.Error, "result too large")
}

func TestNoHandlerIsRefused(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: noop()}, nil)
	_, err := e.Enqueue(context.Background(), engine.EnqueueRequest{JobType: jobtype.IssueScan, Entry: jobtype.EntryCLI, TriggeredBy: "x"})
	var nh *engine.NoHandlerError
	require.ErrorAs(t, err, &nh)
	require.Equal(t, "issue_scan has no handler in this build", err.Error())

	_, err = e.Enqueue(context.Background(), engine.EnqueueRequest{JobType: "nope", Entry: jobtype.EntryCLI, TriggeredBy: "x"})
	var ut *engine.UnknownTypeError
	require.ErrorAs(t, err, &ut)

	_, err = e.Enqueue(context.Background(), engine.EnqueueRequest{JobType: jobtype.PartitionCreation, Entry: jobtype.EntryTrigger, TriggeredBy: "x"})
	require.EqualError(t, err, `"partition_creation" is a system job and cannot be triggered through the API`)
}

func TestProgressThrottledAndTrailingEdge(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	firstSeen := make(chan struct{})
	finish := make(chan struct{})
	e := newEngine(t, tdb, map[string]engine.Handler{
		jobtype.PartitionCreation: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			run.Progress.Report(1, 200, "first")
			<-firstSeen
			for i := int64(2); i <= 100; i++ {
				run.Progress.Report(i, 200, "step")
			}
			<-finish
			return nil, engine.Stopped(nil)
		}),
	}, func(c *engine.Config) { c.ProgressInterval = 300 * time.Millisecond })

	rec := enqueueSystem(t, e, jobtype.PartitionCreation)
	sub := e.Subscribe(rec.ID)
	defer sub.Close()
	// The first report is written at once.
	waitRun(t, e, rec.ID, func(r engine.RunRecord) bool { return r.Progress != nil && r.Progress.Processed == 1 })
	close(firstSeen)
	// 99 reports inside one window end in one trailing-edge write of the newest value.
	got := waitRun(t, e, rec.ID, func(r engine.RunRecord) bool { return r.Progress != nil && r.Progress.Processed == 100 })
	require.Equal(t, int64(200), got.Progress.Total)
	require.Equal(t, "step", got.Progress.Message)
	close(finish)
	final := waitRun(t, e, rec.ID, terminal)

	writes := 0
	for drained := false; !drained; {
		select {
		case ev := <-sub.C:
			if ev.Kind == "progress" {
				writes++
			}
		default:
			drained = true
		}
	}
	require.Equal(t, 2, writes, "one write at once, one at the window's end")
	// Stopped without a stop request: failed, and the progress is kept as reported.
	require.Equal(t, apitype.StatusFailed, final.Status)
	require.Equal(t, engine.ErrTextNoStopRequest, *final.Error)
	require.Equal(t, int64(100), final.Progress.Processed)
}

// 100 concurrent triggers of the same (type, project) create exactly one run; the
// other 99 get the same existing id.
func TestOverlapHundredConcurrentEnqueues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	projectID := seedProject(t, tdb)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.AppleAdsSync: newBlocker()}, func(c *engine.Config) { c.Workers = 0 })

	var wg sync.WaitGroup
	ids := make([]string, 100)
	errs := make([]error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := e.Enqueue(ctx, engine.EnqueueRequest{JobType: jobtype.AppleAdsSync, Entry: jobtype.EntryTrigger,
				ProjectID: &projectID, TeamID: ptr(teamOf(t, tdb, projectID)), TriggeredBy: "manual:user:x"})
			ids[i], errs[i] = rec.ID, err
		}()
	}
	wg.Wait()
	var created string
	conflicts := 0
	for i := range 100 {
		if errs[i] == nil {
			require.Empty(t, created, "two runs created")
			created = ids[i]
		}
	}
	require.NotEmpty(t, created)
	for i := range 100 {
		if errs[i] != nil {
			var c *apitype.ConflictError
			require.ErrorAs(t, errs[i], &c)
			require.Equal(t, created, c.ExistingRunID)
			require.Equal(t, "apple_ads_sync is already running or pending for this project", c.Error())
			conflicts++
		}
	}
	require.Equal(t, 99, conflicts)
	var n int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_runs`).Scan(&n))
	require.Equal(t, 1, n)
}

func TestParamsRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	projectID := seedProject(t, tdb)
	other := seedProject(t, tdb)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.AppleAdsSync: noop(), jobtype.RevenueCatUserBackfill: noop(),
		jobtype.AppStoreRatingsSync: noop()}, func(c *engine.Config) { c.Workers = 0 })
	team := teamOf(t, tdb, projectID)

	// params.project_id cannot redirect a run.
	_, err := e.Enqueue(ctx, engine.EnqueueRequest{JobType: jobtype.AppleAdsSync, Entry: jobtype.EntryTrigger, ProjectID: &projectID,
		TeamID: &team, Params: map[string]any{"project_id": other}, TriggeredBy: "x"})
	require.ErrorIs(t, err, engine.ErrProjectMismatch)

	// The stored params carry the verified project.
	rec, err := e.Enqueue(ctx, engine.EnqueueRequest{JobType: jobtype.RevenueCatUserBackfill, Entry: jobtype.EntryTrigger, ProjectID: &projectID,
		TeamID: &team, Params: map[string]any{"starting_after": "cust_9"}, TriggeredBy: "x"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"project_id": projectID, "starting_after": "cust_9"}, rec.Params)

	// CLI entry: the project comes from params and gives the run its team.
	rec, err = e.Enqueue(ctx, engine.EnqueueRequest{JobType: jobtype.AppStoreRatingsSync, Entry: jobtype.EntryCLI,
		Params: map[string]any{"project_id": strings.ToUpper(other)}, TriggeredBy: "manual:cli:me@host"})
	require.NoError(t, err)
	require.Equal(t, other, *rec.ProjectID)
	require.Equal(t, teamOf(t, tdb, other), *rec.TeamID)

	// A deleted project is refused, naming the key.
	_, err = tdb.Pool.Exec(ctx, `UPDATE projects SET deleted_at = now() WHERE id = $1`, other)
	require.NoError(t, err)
	_, err = e.Enqueue(ctx, engine.EnqueueRequest{JobType: jobtype.AppleAdsSync, Entry: jobtype.EntryCLI,
		Params: map[string]any{"project_id": other}, TriggeredBy: "x"})
	var inv *jobtype.InvalidParamError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "project_id", inv.Key)
}

func ptr[T any](v T) *T { return &v }
