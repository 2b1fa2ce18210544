package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func setOverride(t *testing.T, tdb *pgtest.DB, jobType, expr string, lastTick time.Time) {
	t.Helper()
	_, err := tdb.Pool.Exec(context.Background(), `UPDATE job_schedules SET cron = $2, enabled = true, last_tick_at = $3 WHERE job_type = $1`,
		jobType, expr, lastTick)
	require.NoError(t, err)
}

func scheduleRow(t *testing.T, tdb *pgtest.DB, jobType string) engine.ScheduleRow {
	t.Helper()
	row, err := engine.ScanSchedule(tdb.Pool.QueryRow(context.Background(), `SELECT `+engine.ScheduleColumns+` FROM job_schedules WHERE job_type = $1`, jobType))
	require.NoError(t, err)
	return row
}

// Two engine instances on one database: a tick fires one run, not two; a tick during the
// active run is skipped and counted.
func TestTickFiresOnceAcrossInstancesAndSkipsWhileActive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	handlers := map[string]engine.Handler{jobtype.PartitionCreation: noop()}
	noWorkers := func(c *engine.Config) { c.Workers = 0 }
	a := newEngine(t, tdb, handlers, noWorkers)
	b := newEngine(t, tdb, handlers, noWorkers)

	base := time.Date(2026, 11, 29, 3, 30, 0, 0, time.UTC)
	setOverride(t, tdb, jobtype.PartitionCreation, "0 4 * * *", base)

	at := base.Add(45 * time.Minute) // 04:15, the 04:00 tick is due
	var wg sync.WaitGroup
	results := make([][]engine.TickResult, 2)
	for i, e := range []*engine.Engine{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.TickAt(ctx, at)
			require.NoError(t, err)
			results[i] = r
		}()
	}
	wg.Wait()
	fired := 0
	for _, rs := range results {
		for _, r := range rs {
			if r.JobType == jobtype.PartitionCreation && r.Outcome == engine.OutcomeFired {
				fired++
				require.Equal(t, time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC), r.Tick)
			}
		}
	}
	require.Equal(t, 1, fired)
	var runs int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_runs WHERE job_type = 'partition_creation'`).Scan(&runs))
	require.Equal(t, 1, runs)
	row := scheduleRow(t, tdb, jobtype.PartitionCreation)
	require.Equal(t, int64(1), row.FiredCount)
	require.Equal(t, engine.OutcomeFired, *row.LastOutcome)
	firstRun := *row.LastRunID
	var sched time.Time
	var triggeredBy string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT scheduled_for, triggered_by FROM job_runs WHERE id = $1`, firstRun).Scan(&sched, &triggeredBy))
	require.Equal(t, time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC), sched.UTC())
	require.Equal(t, "schedule", triggeredBy)

	// The same instant again fires nothing: the tick was consumed.
	r, err := a.TickAt(ctx, at)
	require.NoError(t, err)
	require.Empty(t, r)

	// The next day's tick finds the run still pending: skipped and counted.
	r, err = b.TickAt(ctx, at.Add(24*time.Hour))
	require.NoError(t, err)
	require.Len(t, r, 1)
	require.Equal(t, engine.OutcomeSkippedActive, r[0].Outcome)
	require.Equal(t, firstRun, r[0].RunID)
	row = scheduleRow(t, tdb, jobtype.PartitionCreation)
	require.Equal(t, int64(1), row.SkippedCount)
	require.Equal(t, engine.OutcomeSkippedActive, *row.LastOutcome)
	require.Equal(t, firstRun, *row.LastRunID, "last_run_id names the run the last fired tick created")
}

// A keyed run of a type also blocks its cron tick (the skip rule covers every entry point).
func TestTickSkipsWhileAKeyedRunIsActive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	projectID := seedProject(t, tdb)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.AppStoreRatingsSync: noop()}, func(c *engine.Config) { c.Workers = 0 })
	team := teamOf(t, tdb, projectID)
	keyed, err := e.Enqueue(ctx, engine.EnqueueRequest{JobType: jobtype.AppStoreRatingsSync, Entry: jobtype.EntryRouteRatings,
		ProjectID: &projectID, TeamID: &team, TriggeredBy: "manual:user:u"})
	require.NoError(t, err)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	setOverride(t, tdb, jobtype.AppStoreRatingsSync, "@hourly", base)
	r, err := e.TickAt(ctx, base.Add(90*time.Minute))
	require.NoError(t, err)
	require.Len(t, r, 1)
	require.Equal(t, engine.OutcomeSkippedActive, r[0].Outcome)
	require.Equal(t, keyed.ID, r[0].RunID)
}

func TestTickCoalescesMissedTicksAndHonoursDisable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.IssueScan: noop(), jobtype.IssueNotify: noop()},
		func(c *engine.Config) { c.Workers = 0 })
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	setOverride(t, tdb, jobtype.IssueScan, "*/5 * * * *", base)
	setOverride(t, tdb, jobtype.IssueNotify, "*/5 * * * *", base)
	_, err := tdb.Pool.Exec(ctx, `UPDATE job_schedules SET enabled = false WHERE job_type = 'issue_notify'`)
	require.NoError(t, err)

	r, err := e.TickAt(ctx, base.Add(62*time.Minute)) // 12 ticks due: 00:05 … 01:00
	require.NoError(t, err)
	require.Len(t, r, 1, "a disabled schedule fires nothing")
	require.Equal(t, jobtype.IssueScan, r[0].JobType)
	require.Equal(t, 11, r[0].Coalesced)
	require.Equal(t, time.Date(2026, 6, 1, 1, 0, 0, 0, time.UTC), r[0].Tick, "only the latest missed tick fires")
}

func TestTickWithABadExpressionFiresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.IssueScan: noop()}, func(c *engine.Config) { c.Workers = 0 })
	setOverride(t, tdb, jobtype.IssueScan, "not a cron", time.Now().Add(-time.Hour))
	r, err := e.Tick(ctx)
	require.NoError(t, err)
	require.Empty(t, r)
	require.Equal(t, engine.OutcomeError, *scheduleRow(t, tdb, jobtype.IssueScan).LastOutcome)
}

func TestDBPruningTickNeedsASizeLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	off := newEngine(t, tdb, map[string]engine.Handler{jobtype.DBPruning: noop()}, func(c *engine.Config) { c.Workers = 0 })
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	setOverride(t, tdb, jobtype.DBPruning, "@hourly", base)
	r, err := off.TickAt(ctx, base.Add(61*time.Minute))
	require.NoError(t, err)
	require.Equal(t, engine.OutcomeSkippedDisabled, r[0].Outcome)
	require.Zero(t, scheduleRow(t, tdb, jobtype.DBPruning).SkippedCount, "not counted as skipped")

	// With a limit, a server start enqueues one db_pruning run at once (engine.md §10.6)…
	on := newEngine(t, tdb, map[string]engine.Handler{jobtype.DBPruning: noop()}, func(c *engine.Config) {
		c.Workers = 0
		c.MaxDatabaseSizeGB = 1.5
	})
	var startup engine.RunRecord
	startup, err = engine.ScanRun(tdb.Pool.QueryRow(ctx, `SELECT `+engine.RunColumns+` FROM job_runs WHERE job_type = 'db_pruning'`))
	require.NoError(t, err)
	require.Nil(t, startup.ScheduledFor)
	require.Equal(t, "schedule", startup.TriggeredBy)
	require.Equal(t, map[string]any{"max_size_bytes": float64(1610612736)}, startup.Params)
	// …which the next tick respects; once it is gone, the tick fires.
	r, err = on.TickAt(ctx, base.Add(121*time.Minute))
	require.NoError(t, err)
	require.Equal(t, engine.OutcomeSkippedActive, r[0].Outcome)
	_, _, err = on.Cancel(ctx, startup.ID, "manual:cli:test@host")
	require.NoError(t, err)
	r, err = on.TickAt(ctx, base.Add(181*time.Minute))
	require.NoError(t, err)
	require.Equal(t, engine.OutcomeFired, r[0].Outcome)
	rec, err := on.Get(ctx, r[0].RunID)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"max_size_bytes": float64(1610612736)}, rec.Params)
}

func TestUpsertSchedulesFollowsTheProfile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	newEngine(t, tdb, nil, func(c *engine.Config) { c.Workers = 0; c.CronProfile = "prod" })
	row := scheduleRow(t, tdb, jobtype.RetentionCleanup)
	require.Equal(t, "0 2 * * *", *row.DefaultCron)
	require.Equal(t, "default", row.Source())
	require.Nil(t, scheduleRow(t, tdb, jobtype.RevenueCatSync).DefaultCron, "manual types have no default")

	// An owner override survives a profile change; a plain default follows it and restarts
	// its tick count.
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := tdb.Pool.Exec(ctx, `UPDATE job_schedules SET last_tick_at = $1`, old)
	require.NoError(t, err)
	setOverride(t, tdb, jobtype.IssueScan, "*/7 * * * *", old)
	newEngine(t, tdb, nil, func(c *engine.Config) { c.Workers = 0; c.CronProfile = "dev" })
	row = scheduleRow(t, tdb, jobtype.RetentionCleanup)
	require.Equal(t, "*/5 * * * *", *row.DefaultCron)
	require.True(t, row.LastTickAt.After(old))
	row = scheduleRow(t, tdb, jobtype.IssueScan)
	require.Equal(t, "*/7 * * * *", row.Effective())
	require.Equal(t, old, row.LastTickAt, "an override's tick count is untouched")
}

// The River periodic tick (RunOnStart) really fires a due schedule on a started server.
func TestPeriodicTickThroughRiver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	b := newBlocker()
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b}, func(c *engine.Config) {
		c.Scheduler = true
	})
	setOverride(t, tdb, jobtype.PartitionCreation, "* * * * *", time.Now().Add(-3*time.Minute))
	// Ticks run every minute; nudge one now instead of waiting for the next minute.
	_, err := e.River().Insert(ctx, engine.TickJobArgs(), nil)
	require.NoError(t, err)
	id := b.waitStarted(t)
	close(b.release)
	rec := waitRun(t, e, id, terminal)
	require.Equal(t, "schedule", rec.TriggeredBy)
	require.NotNil(t, rec.ScheduledFor)
}

func TestParseCron(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"0 3 * * *", "*/5 * * * *", "@hourly", "@daily", "@every 1h30m"} {
		_, err := engine.ParseCron(ok)
		require.NoError(t, err, ok)
	}
	for expr, reason := range map[string]string{
		"CRON_TZ=Europe/Paris 0 3 * * *": "always UTC",
		"TZ=UTC 0 3 * * *":               "always UTC",
		"0 0 3 * * *":                    "expected 5 fields",
		"61 * * * *":                     "",
		"@fortnightly":                   "unknown descriptor",
		"":                               "empty",
	} {
		_, err := engine.ParseCron(expr)
		require.Error(t, err, expr)
		require.Contains(t, err.Error(), reason)
	}
}

// Next fire times are UTC whatever the process's local zone is.
func TestNextTickIsUTC(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	next, ok := engine.NextTick("0 3 * * *", now.In(ny).Add(-time.Hour), now.In(ny))
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC), next)
}

// A type this build cannot run consumes its ticks as errors instead of piling them up.
func TestTickOfATypeWithoutHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.IssueScan: noop()}, func(c *engine.Config) { c.Workers = 0 })
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	setOverride(t, tdb, jobtype.IssueNotify, "@hourly", base)
	r, err := e.TickAt(ctx, base.Add(61*time.Minute))
	require.NoError(t, err)
	require.Len(t, r, 1)
	require.Equal(t, engine.OutcomeError, r[0].Outcome)
	row := scheduleRow(t, tdb, jobtype.IssueNotify)
	require.Equal(t, engine.OutcomeError, *row.LastOutcome)
	require.Equal(t, base.Add(time.Hour), row.LastTickAt, "the tick is consumed")
	var runs int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_runs`).Scan(&runs))
	require.Zero(t, runs)
}
