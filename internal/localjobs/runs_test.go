package localjobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

func TestListRunsFiltersAndPages(t *testing.T) {
	t.Parallel()
	b := setup(t, localjobs.Handlers{jobtype.AppleAdsSync: ok(), jobtype.PartitionCreation: ok()})
	ctx := context.Background()
	teamID, projectID := seedProject(t, b, "acme")

	// Five system runs created a minute apart, oldest first, and one team run.
	var system []string
	for i := range 5 {
		id := insertRun(t, b, jobtype.IssueScan, "completed", "created_at = now() - make_interval(mins => $2)", 10-i)
		system = append(system, id)
	}
	teamRun, err := b.store.Enqueue(ctx, localjobs.StartRequest{JobType: jobtype.AppleAdsSync, ProjectID: projectID})
	require.NoError(t, err)
	require.Equal(t, teamID, *teamRun.TeamID, "a run for a project belongs to the project's team")

	t.Run("default scope is system runs, newest first", func(t *testing.T) {
		t.Parallel()
		page, err := b.store.ListRuns(ctx, localjobs.ListFilter{})
		require.NoError(t, err)
		require.Len(t, page.Runs, 5)
		require.False(t, page.HasMore)
		require.Nil(t, page.Cursor)
		for i, r := range page.Runs {
			require.Equal(t, system[4-i], r.ID)
			require.Nil(t, r.TeamID)
		}
	})

	t.Run("team and all scopes", func(t *testing.T) {
		t.Parallel()
		page, err := b.store.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeTeam})
		require.NoError(t, err)
		require.Len(t, page.Runs, 1)
		require.Equal(t, teamRun.ID, page.Runs[0].ID)
		page, err = b.store.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeAll})
		require.NoError(t, err)
		require.Len(t, page.Runs, 6)
		require.Equal(t, teamRun.ID, page.Runs[0].ID, "the team run is the newest")
		page, err = b.store.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeAll, ProjectID: projectID})
		require.NoError(t, err)
		require.Len(t, page.Runs, 1)
		page, err = b.store.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeAll, TeamID: "00000000-0000-4000-8000-000000000000"})
		require.NoError(t, err)
		require.Empty(t, page.Runs)
	})

	t.Run("type, status and time filters", func(t *testing.T) {
		t.Parallel()
		page, err := b.store.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeAll, Types: []string{jobtype.AppleAdsSync}})
		require.NoError(t, err)
		require.Len(t, page.Runs, 1)
		page, err = b.store.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeAll, Statuses: []apitype.Status{apitype.StatusPending, apitype.StatusFailed}})
		require.NoError(t, err)
		require.Len(t, page.Runs, 1)
		require.Equal(t, apitype.StatusPending, page.Runs[0].Status)

		var dbNow time.Time
		require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT now()`).Scan(&dbNow))
		since, until := dbNow.Add(-8*time.Minute-30*time.Second), dbNow.Add(-6*time.Minute-30*time.Second)
		page, err = b.store.ListRuns(ctx, localjobs.ListFilter{Since: &since, Until: &until})
		require.NoError(t, err)
		require.Len(t, page.Runs, 2, "created 8 and 7 minutes ago")
		require.Equal(t, []string{system[3], system[2]}, []string{page.Runs[0].ID, page.Runs[1].ID})
	})

	t.Run("cursor pages through every run exactly once", func(t *testing.T) {
		t.Parallel()
		var got []string
		cursor := ""
		for range 10 {
			page, err := b.store.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeAll, Limit: 4, Cursor: cursor})
			require.NoError(t, err)
			for _, r := range page.Runs {
				got = append(got, r.ID)
			}
			if !page.HasMore {
				require.Nil(t, page.Cursor)
				break
			}
			require.NotNil(t, page.Cursor)
			require.NoError(t, localjobs.CheckCursor(*page.Cursor))
			cursor = *page.Cursor
		}
		require.Equal(t, []string{teamRun.ID, system[4], system[3], system[2], system[1], system[0]}, got)
	})

	t.Run("bad cursors are refused", func(t *testing.T) {
		t.Parallel()
		for _, c := range []string{"%%%", "bm90LWEtY3Vyc29y", "MjAyNi0xMS0yOVQwMDowMDowMFp8bm9wZQ"} {
			require.ErrorIs(t, localjobs.CheckCursor(c), localjobs.ErrInvalidCursor, c)
			_, err := b.store.ListRuns(ctx, localjobs.ListFilter{Cursor: c})
			require.ErrorIs(t, err, localjobs.ErrInvalidCursor)
		}
	})
}

func TestListStaleUsesTheEngineRule(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	stale := insertRun(t, b, jobtype.IssueScan, "running", "heartbeat_at = now() - interval '1 minute'")
	insertRun(t, b, jobtype.IssueNotify, "running", "") // fresh heartbeat
	insertRun(t, b, jobtype.SoftDeleteCleanup, "pending", "")

	page, err := b.store.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeAll, Stale: true})
	require.NoError(t, err)
	require.Len(t, page.Runs, 1)
	require.Equal(t, stale, page.Runs[0].ID)

	d, err := b.store.GetRun(ctx, stale)
	require.NoError(t, err)
	require.True(t, d.LeaseExpired)
}

func TestSystemRunObject(t *testing.T) {
	t.Parallel()
	b := setup(t, localjobs.Handlers{jobtype.PartitionCreation: ok()})
	ctx := context.Background()
	run, err := b.store.Enqueue(ctx, localjobs.StartRequest{JobType: jobtype.PartitionCreation})
	require.NoError(t, err)
	require.Equal(t, apitype.StatusPending, run.Status)
	require.Nil(t, run.TeamID, "a run without a project is a system run")
	require.Equal(t, actor, run.TriggeredBy)
	require.NotNil(t, run.RiverJobID)

	d, err := b.store.GetRun(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, "available", d.RiverState)
	require.False(t, d.LeaseExpired)

	// The JSON has the API's keys and the engine's columns, and survives the trip
	// through apitype.JobRun that waiting takes.
	var doc map[string]json.RawMessage
	b1, err := json.Marshal(d.Run)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b1, &doc))
	for _, k := range []string{"id", "job_type", "status", "team_id", "project_id", "triggered_by", "params", "progress",
		"result", "error", "notify", "started_at", "completed_at", "created_at", "cancel_requested_at",
		"executor", "river_job_id", "scheduled_for", "owner_node", "owner_instance", "heartbeat_at", "cancel_requested_by"} {
		require.Contains(t, doc, k)
	}
	require.Len(t, doc, 22)
	jr := d.Run.JobRun()
	back, err := localjobs.RunOf(jr)
	require.NoError(t, err)
	require.Equal(t, d.Run.RiverJobID, back.RiverJobID)
	require.Equal(t, "queue", back.Executor)
	b2, err := json.Marshal(jr)
	require.NoError(t, err)
	require.JSONEq(t, string(b1), string(b2))

	_, err = b.store.GetRun(ctx, "00000000-0000-4000-8000-000000000000")
	var nf *localjobs.RunNotFoundError
	require.ErrorAs(t, err, &nf)
	require.True(t, localjobs.IsNotFound(err))
}

func TestEnqueueRules(t *testing.T) {
	t.Parallel()
	b := setup(t, localjobs.Handlers{jobtype.AppleAdsSync: ok(), jobtype.AppVersionSync: ok()})
	ctx := context.Background()
	_, projectID := seedProject(t, b, "rules")

	first, err := b.store.Enqueue(ctx, localjobs.StartRequest{JobType: jobtype.AppleAdsSync, ProjectID: projectID})
	require.NoError(t, err)
	require.Equal(t, projectID, *first.ProjectID)

	t.Run("second run on the same key conflicts and names the first", func(t *testing.T) {
		t.Parallel()
		_, err := b.store.Enqueue(ctx, localjobs.StartRequest{JobType: jobtype.AppleAdsSync, ProjectID: projectID})
		var conflict *apitype.ConflictError
		require.ErrorAs(t, err, &conflict)
		require.Equal(t, first.ID, conflict.ExistingRunID)
		var dbConflict *localjobs.RunConflictError
		require.ErrorAs(t, err, &dbConflict, "marked as met by a server-owner command")
	})
	t.Run("an unkeyed fan-out does not conflict with a keyed run", func(t *testing.T) {
		t.Parallel()
		run, err := b.store.Enqueue(ctx, localjobs.StartRequest{JobType: jobtype.AppleAdsSync})
		require.NoError(t, err)
		require.Nil(t, run.ProjectID)
		require.Nil(t, run.TeamID)
	})
	t.Run("a type without a handler", func(t *testing.T) {
		t.Parallel()
		_, err := b.store.Enqueue(ctx, localjobs.StartRequest{JobType: jobtype.IssueScan})
		var nh *engine.NoHandlerError
		require.ErrorAs(t, err, &nh)
		require.EqualError(t, err, "issue_scan has no handler in this build")
		has, err := b.store.HasHandler(jobtype.IssueScan)
		require.NoError(t, err)
		require.False(t, has)
	})
	t.Run("params are checked against the declared ones", func(t *testing.T) {
		t.Parallel()
		err := localjobs.CheckParams(localjobs.StartRequest{JobType: jobtype.AppVersionSync, Params: map[string]string{"bogus": "1"}})
		var up *jobtype.UnknownParamError
		require.ErrorAs(t, err, &up)
		require.Equal(t, "bogus", up.Key)
		err = localjobs.CheckParams(localjobs.StartRequest{JobType: jobtype.AppVersionSync, Params: map[string]string{"app_id": "nope"}})
		var ip *jobtype.InvalidParamError
		require.ErrorAs(t, err, &ip)
		require.Equal(t, "app_id", ip.Key)
		err = localjobs.CheckParams(localjobs.StartRequest{JobType: jobtype.RevenueCatUserBackfill})
		require.ErrorAs(t, err, &ip)
		require.Equal(t, "project_id", ip.Key)
		err = localjobs.CheckParams(localjobs.StartRequest{JobType: jobtype.IssueScan, ProjectID: projectID})
		require.ErrorAs(t, err, &up, "issue_scan takes no project")
		require.NoError(t, localjobs.CheckParams(localjobs.StartRequest{JobType: jobtype.DBPruning, Params: map[string]string{"max_size_bytes": "1024"}}))

		// A project that does not exist is found only by the engine, at enqueue time.
		_, err = b.store.Enqueue(ctx, localjobs.StartRequest{JobType: jobtype.AppleAdsSync, ProjectID: "00000000-0000-4000-8000-000000000009"})
		require.ErrorAs(t, err, &ip)
		require.Equal(t, "project_id", ip.Key)
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, localjobs.Handlers{jobtype.PartitionCreation: ok()})
	ctx := context.Background()
	run, err := b.store.Enqueue(ctx, localjobs.StartRequest{JobType: jobtype.PartitionCreation})
	require.NoError(t, err)

	got, out, err := b.store.Cancel(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, localjobs.CancelDone, out)
	require.Equal(t, apitype.StatusCancelled, got.Status)
	require.Equal(t, actor, *got.CancelRequestedBy)

	_, _, err = b.store.Cancel(ctx, run.ID)
	var ended *localjobs.AlreadyEndedError
	require.ErrorAs(t, err, &ended)
	require.EqualError(t, err, "run "+run.ID+" already ended (cancelled)")

	_, _, err = b.store.Cancel(ctx, "00000000-0000-4000-8000-000000000000")
	require.True(t, localjobs.IsNotFound(err))

	running := insertRun(t, b, jobtype.IssueScan, "running", "")
	got, out, err = b.store.Cancel(ctx, running)
	require.NoError(t, err)
	require.Equal(t, localjobs.CancelRequested, out)
	require.Equal(t, apitype.StatusRunning, got.Status, "a running run stops at its next checkpoint")
	require.NotNil(t, got.CancelRequestedAt)
}

func TestRecover(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	stale := insertRun(t, b, jobtype.IssueScan, "running", "heartbeat_at = now() - interval '1 hour'")
	fresh := insertRun(t, b, jobtype.IssueNotify, "running", "")
	pending := insertRun(t, b, jobtype.SoftDeleteCleanup, "pending", "created_at = now() - interval '1 day'")

	statuses := func() map[string]string {
		rows, err := b.tdb.Pool.Query(ctx, `SELECT id, status::text FROM job_runs`)
		require.NoError(t, err)
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var id, st string
			require.NoError(t, rows.Scan(&id, &st))
			out[id] = st
		}
		return out
	}
	before := statuses()

	dry, err := b.store.Recover(ctx, true)
	require.NoError(t, err)
	require.Len(t, dry, 1)
	require.Equal(t, stale, dry[0].ID)
	require.Equal(t, before, statuses(), "a dry run changes nothing")

	got, err := b.store.Recover(ctx, false)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, apitype.StatusFailed, got[0].Status)
	require.Equal(t, "Server restarted during execution", *got[0].Error)
	after := statuses()
	require.Equal(t, "failed", after[stale])
	require.Equal(t, "running", after[fresh], "a live owner's run is never touched")
	require.Equal(t, "pending", after[pending], "pending runs stay queued")

	again, err := b.store.Recover(ctx, false)
	require.NoError(t, err)
	require.Empty(t, again)
}

func TestPruneKeepsActiveAndNewest(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	old := "completed_at = now() - interval '100 days', created_at = now() - interval '100 days'"
	var oldScans []string
	for range 3 {
		oldScans = append(oldScans, insertRun(t, b, jobtype.IssueScan, "completed", old))
	}
	newest := insertRun(t, b, jobtype.IssueScan, "failed", "completed_at = now() - interval '95 days', created_at = now() - interval '95 days'")
	onlyNotify := insertRun(t, b, jobtype.IssueNotify, "cancelled", old)
	active := insertRun(t, b, jobtype.SoftDeleteCleanup, "running", "created_at = now() - interval '200 days', started_at = now() - interval '200 days'")
	recent := insertRun(t, b, jobtype.IssueScan, "completed", "")
	_ = recent

	counts, err := b.store.Prune(ctx, localjobs.PruneOptions{OlderThan: 90 * 24 * time.Hour, DryRun: true, KeepLast: 1})
	require.NoError(t, err)
	// recent is the newest issue_scan run, so every old one goes; issue_notify keeps its only run.
	require.Equal(t, map[string]int64{jobtype.IssueScan: 4}, counts)

	counts, err = b.store.Prune(ctx, localjobs.PruneOptions{OlderThan: 90 * 24 * time.Hour, KeepLast: 2, BatchSize: 1})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{jobtype.IssueScan: 3}, counts, "keep-last 2 keeps recent and the newest old one")

	exists := func(id string) bool {
		var n int
		require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_runs WHERE id = $1`, id).Scan(&n))
		return n == 1
	}
	for _, id := range oldScans {
		require.False(t, exists(id))
	}
	require.True(t, exists(newest))
	require.True(t, exists(onlyNotify))
	require.True(t, exists(active), "active runs are never deleted")
}

// blockUntil is a handler that reports progress, then waits for release or its stop.
type blockUntil struct {
	started chan string
	release chan struct{}
}

func (h *blockUntil) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	run.Progress.Report(1, 4, "first quarter")
	h.started <- run.ID
	select {
	case <-h.release:
		return engine.Result{"done": true}, nil
	case <-ctx.Done():
		return nil, engine.Stopped(engine.Result{"processed": 1})
	}
}

func TestRunLocal(t *testing.T) {
	t.Parallel()

	t.Run("completes with the engine's lifecycle", func(t *testing.T) {
		t.Parallel()
		b := setup(t, localjobs.Handlers{jobtype.PartitionCreation: ok()})
		var started localjobs.Run
		run, err := b.store.RunLocal(context.Background(), localjobs.StartRequest{JobType: jobtype.PartitionCreation},
			localjobs.LocalOptions{Started: func(r localjobs.Run) { started = r }})
		require.NoError(t, err)
		require.Equal(t, apitype.StatusRunning, started.Status, "a local run is inserted as running")
		require.Equal(t, run.ID, started.ID)
		require.Equal(t, apitype.StatusCompleted, run.Status)
		require.Equal(t, "local", run.Executor)
		require.True(t, strings.HasPrefix(*run.OwnerNode, "cli-"), *run.OwnerNode)
		require.NotNil(t, run.StartedAt)
		require.NotNil(t, run.CompletedAt)
		require.Nil(t, run.RiverJobID)
		require.JSONEq(t, `{"created":0}`, string(run.Result))
	})

	t.Run("a failing handler fails the run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, localjobs.Handlers{jobtype.PartitionCreation: engine.HandlerFunc(func(context.Context, *engine.Run) (engine.Result, error) {
			return nil, errors.New("disk full")
		})})
		run, err := b.store.RunLocal(context.Background(), localjobs.StartRequest{JobType: jobtype.PartitionCreation}, localjobs.LocalOptions{})
		require.NoError(t, err)
		require.Equal(t, apitype.StatusFailed, run.Status)
		require.Equal(t, "disk full", *run.Error)
	})

	t.Run("cancelling the context stops the run cooperatively", func(t *testing.T) {
		t.Parallel()
		h := &blockUntil{started: make(chan string, 1), release: make(chan struct{})}
		b := setup(t, localjobs.Handlers{jobtype.PartitionCreation: h})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-h.started; cancel() }()
		run, err := b.store.RunLocal(ctx, localjobs.StartRequest{JobType: jobtype.PartitionCreation}, localjobs.LocalOptions{})
		require.NoError(t, err)
		require.Equal(t, apitype.StatusCancelled, run.Status)
		require.Equal(t, actor, *run.CancelRequestedBy)
		require.JSONEq(t, `{"processed":1}`, string(run.Result))
	})

	t.Run("an interrupt fails the run at once", func(t *testing.T) {
		t.Parallel()
		h := &blockUntil{started: make(chan string, 1), release: make(chan struct{})}
		defer close(h.release)
		b := setup(t, localjobs.Handlers{jobtype.PartitionCreation: h})
		interrupt := make(chan struct{})
		go func() { <-h.started; close(interrupt) }()
		run, err := b.store.RunLocal(context.Background(), localjobs.StartRequest{JobType: jobtype.PartitionCreation},
			localjobs.LocalOptions{Interrupt: interrupt})
		require.NoError(t, err)
		require.Equal(t, apitype.StatusFailed, run.Status)
		require.Equal(t, "interrupted by operator", *run.Error)
	})

	t.Run("a second run of the key conflicts", func(t *testing.T) {
		t.Parallel()
		h := &blockUntil{started: make(chan string, 1), release: make(chan struct{})}
		b := setup(t, localjobs.Handlers{jobtype.PartitionCreation: h})
		done := make(chan localjobs.Run, 1)
		go func() {
			run, err := b.store.RunLocal(context.Background(), localjobs.StartRequest{JobType: jobtype.PartitionCreation}, localjobs.LocalOptions{})
			if err == nil {
				done <- run
			}
			close(done)
		}()
		first := <-h.started
		_, err := b.store.Enqueue(context.Background(), localjobs.StartRequest{JobType: jobtype.PartitionCreation})
		var conflict *apitype.ConflictError
		require.ErrorAs(t, err, &conflict)
		require.Equal(t, first, conflict.ExistingRunID)
		close(h.release)
		run, okRun := <-done
		require.True(t, okRun)
		require.Equal(t, apitype.StatusCompleted, run.Status)
	})

	t.Run("integration jobs need the secret key", func(t *testing.T) {
		t.Parallel()
		b := setup(t, localjobs.Handlers{jobtype.AppleAdsSync: ok()})
		_, err := b.store.RunLocal(context.Background(), localjobs.StartRequest{JobType: jobtype.AppleAdsSync}, localjobs.LocalOptions{})
		var sk *localjobs.SecretKeyMissingError
		require.ErrorAs(t, err, &sk)
		require.EqualError(t, err, "OWLMETRY_SECRET_KEY is required to run apple_ads_sync locally")
	})

	t.Run("a type without a handler", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		_, err := b.store.RunLocal(context.Background(), localjobs.StartRequest{JobType: jobtype.PartitionCreation}, localjobs.LocalOptions{})
		var nh *engine.NoHandlerError
		require.ErrorAs(t, err, &nh)
	})
}

// Terminal transitions made by the CLI queue their e-mails in the outbox, for a server
// to send: here the system alert of a local run that failed.
func TestLocalRunQueuesTheSystemAlert(t *testing.T) {
	t.Parallel()
	failing := engine.HandlerFunc(func(context.Context, *engine.Run) (engine.Result, error) { return nil, errors.New("disk full") })
	b := setupEnv(t, localjobs.Handlers{jobtype.PartitionCreation: failing}, map[string]string{"SYSTEM_JOBS_ALERT_EMAIL": "ops@example.com"})
	run, err := b.store.RunLocal(context.Background(), localjobs.StartRequest{JobType: jobtype.PartitionCreation}, localjobs.LocalOptions{})
	require.NoError(t, err)
	require.Equal(t, apitype.StatusFailed, run.Status)
	var queued int
	require.NoError(t, b.tdb.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM river_job WHERE kind = 'email_delivery' AND state = 'available'`).Scan(&queued))
	require.Equal(t, 1, queued)

	// Mail settings are read when an engine is needed, and a bad one is named. (The
	// store shares the pool and is not closed: the bundle's store owns it.)
	bad, err := localjobs.New(b.store.Pool(), localjobs.Config{LookupEnv: func(k string) (string, bool) {
		if k == "SYSTEM_JOBS_ALERT_EMAIL" {
			return "not an address", true
		}
		return "", false
	}})
	require.NoError(t, err)
	_, err = bad.Recover(context.Background(), true)
	require.ErrorContains(t, err, "SYSTEM_JOBS_ALERT_EMAIL")
}

// The handlers of this build run through the CLI's engine: the real partition job, with
// the job settings read from the environment like a server reads them.
func TestBuildHandlers(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	env := func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok }
	st, err := localjobs.New(b.store.Pool(), localjobs.Config{LookupEnv: env, Handlers: localjobs.BuildHandlers, Actor: actor})
	require.NoError(t, err)
	t.Cleanup(st.Close) // before the bundle's store, which closes the shared pool again
	for _, name := range []string{jobtype.PartitionCreation, jobtype.RetentionCleanup, jobtype.DBPruning} {
		has, err := st.HasHandler(name)
		require.NoError(t, err)
		require.True(t, has, name)
	}
	// The test database already has this and the next two months' partitions; drop
	// next month's so the run has something to create.
	var next string
	require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT 'events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY_MM')`).Scan(&next))
	_, err = b.tdb.Pool.Exec(ctx, `DROP TABLE `+next)
	require.NoError(t, err)

	run, err := st.RunLocal(ctx, localjobs.StartRequest{JobType: jobtype.PartitionCreation}, localjobs.LocalOptions{})
	require.NoError(t, err)
	require.Equal(t, apitype.StatusCompleted, run.Status, "error: %v", run.Error)
	require.Contains(t, string(run.Result), next)
	var exists bool
	require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, next).Scan(&exists))
	require.True(t, exists)

	_, err = localjobs.BuildHandlers(localjobs.HandlerDeps{LookupEnv: func(k string) (string, bool) {
		if k == "MAX_DATABASE_SIZE_GB" {
			return "lots", true
		}
		return "", false
	}})
	require.ErrorContains(t, err, "MAX_DATABASE_SIZE_GB")
}
