package jobs_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

const day = 24 * time.Hour

// ensureHistory creates the children of every month from the one `back` before now up to
// the current one.
func ensureHistory(t *testing.T, pool *pgxpool.Pool, now time.Time, back time.Duration) {
	t.Helper()
	first := db.MonthStart(now.Add(-back))
	months := 0
	for m := first; m.Before(db.MonthStart(now)); m = m.AddDate(0, 1, 0) {
		months++
	}
	ensureMonths(t, pool, first, months+1)
}

// partitionNames lists the partitions of parent that a retention with cutoff drops:
// those whose name span ends at least a day before it.
func expiredPartitions(t *testing.T, pool *pgxpool.Pool, parent string, cutoff time.Time) []string {
	t.Helper()
	children, err := db.Children(bg, pool, parent)
	require.NoError(t, err)
	var out []string
	for _, c := range children {
		if _, _, to, ok := db.PartitionSpan(c.Name); ok && !to.Add(day).After(cutoff) {
			out = append(out, c.Name)
		}
	}
	return out
}

type auditKey struct {
	project string // "" for NULL
	table   string
}

// audits sums event_deletions by project and table for one reason, and returns the
// number of rows behind each sum.
func audits(t *testing.T, pool *pgxpool.Pool, reason string) (map[auditKey]int64, map[auditKey]int) {
	t.Helper()
	rows, err := pool.Query(bg, `SELECT COALESCE(project_id::text, ''), table_name, deleted_count FROM event_deletions WHERE reason = $1`, reason)
	require.NoError(t, err)
	sums, n := map[auditKey]int64{}, map[auditKey]int{}
	for rows.Next() {
		var k auditKey
		var c int64
		require.NoError(t, rows.Scan(&k.project, &k.table, &c))
		sums[k] += c
		n[k]++
	}
	require.NoError(t, rows.Err())
	return sums, n
}

func TestRetentionCleanupAppliesEachProjectsPolicy(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	now := t0(t, pool)
	ensureHistory(t, pool, now, 420*day)

	team := seedTeam(t, pool)
	p1 := seedProject(t, pool, team, 30, 30, 30)
	p2 := seedProject(t, pool, team, 0, 0, 60) // events 120, metrics 365, funnels 60
	p3 := seedProject(t, pool, team, 200)      // soft-deleted: no deletes, but it holds phase A back to 200 days
	softDelete(t, pool, "projects", p3, day)
	gone := seedTeam(t, pool)
	p4 := seedProject(t, pool, gone, 10) // a live project of a soft-deleted team is not live
	softDelete(t, pool, "teams", gone, day)
	seedProject(t, pool, team, 5) // live, without apps: processed, nothing to do

	a1, a1d := seedApp(t, pool, p1), seedApp(t, pool, p1)
	softDelete(t, pool, "apps", a1d, day)
	a2, a3, a4 := seedApp(t, pool, p2), seedApp(t, pool, p3), seedApp(t, pool, p4)
	unknown := uuid.NewString()

	ages := []int{10, 45, 150, 400}
	for _, app := range []string{a1, a1d, a2, a3, a4} {
		for _, age := range ages {
			insertEvents(t, pool, "events", app, now.Add(-time.Duration(age)*day), 1, 0, fmt.Sprintf("d%d", age))
		}
	}
	for _, app := range []string{a1, a2} {
		for _, table := range []string{"metric_events", "funnel_events"} {
			for _, age := range ages {
				insertEvents(t, pool, table, app, now.Add(-time.Duration(age)*day), 1, 0, fmt.Sprintf("d%d", age))
			}
		}
	}
	insertEvents(t, pool, "events", unknown, now.Add(-400*day), 1, 0, "d400")
	insertEvents(t, pool, "events", unknown, now.Add(-150*day), 1, 0, "d150")
	// Around p1's 30-day cutoff, and in the future.
	insertEvents(t, pool, "events", a1, now.Add(-30*day+time.Minute), 1, 0, "edge_keep")
	insertEvents(t, pool, "events", a1, now.Add(-30*day-time.Minute), 1, 0, "edge_drop")
	insertEvents(t, pool, "events", a1, now.Add(time.Hour), 1, 0, "future")

	wantDropped := append(append(expiredPartitions(t, pool, "events", now.Add(-200*day)),
		expiredPartitions(t, pool, "metric_events", now.Add(-365*day))...),
		expiredPartitions(t, pool, "funnel_events", now.Add(-365*day))...)
	require.NotEmpty(t, wantDropped)
	before := map[string]int64{}
	for _, table := range db.EventParents {
		before[table] = count(t, pool, `SELECT count(*) FROM `+table)
	}

	// Cutoffs and partition months are UTC whatever the session's zone.
	zoned := zonedPool(t, tdb.URL, "Pacific/Kiritimati")
	res, err, prog := runHandler(bg, t, zoned, testDeps(newFakeClock(time.Now())), jobtype.RetentionCleanup, nil)
	require.NoError(t, err)

	require.Equal(t, int64(3), res["projects_processed"])
	require.Equal(t, wantDropped, res["partitions_dropped"])
	for _, table := range wantDropped {
		require.False(t, exists(t, pool, table), table)
	}
	// Phase A: one 400-day row per app, unknown included; phase B: p1's 45- and 150-day
	// rows and the one just past its cutoff, p2's 150-day row.
	require.Equal(t, int64(6+4), res["events_deleted"])
	require.Equal(t, int64(2+2), res["metric_events_deleted"])
	require.Equal(t, int64(2+3), res["funnel_events_deleted"])
	require.Equal(t, false, res["_silent"])
	for _, table := range db.EventParents {
		require.Equal(t, before[table]-asInt(t, res[table+"_deleted"]), count(t, pool, `SELECT count(*) FROM `+table), table)
	}

	require.Equal(t, []string{"d10", "edge_keep", "future"}, labels(t, pool, "events", a1))
	require.Equal(t, []string{"d10", "d150", "d45"}, labels(t, pool, "events", a1d), "rows of soft-deleted apps are left to soft_delete_cleanup")
	require.Equal(t, []string{"d10", "d45"}, labels(t, pool, "events", a2))
	require.Equal(t, []string{"d10", "d150", "d45"}, labels(t, pool, "events", a3))
	require.Equal(t, []string{"d10", "d150", "d45"}, labels(t, pool, "events", a4))
	require.Equal(t, []string{"d150"}, labels(t, pool, "events", unknown))
	require.Equal(t, []string{"d10"}, labels(t, pool, "metric_events", a1))
	require.Equal(t, []string{"d10", "d150", "d45"}, labels(t, pool, "metric_events", a2))
	require.Equal(t, []string{"d10"}, labels(t, pool, "funnel_events", a1))
	require.Equal(t, []string{"d10", "d45"}, labels(t, pool, "funnel_events", a2))

	sums, rows := audits(t, pool, "retention")
	require.Equal(t, map[auditKey]int64{
		{p1, "events"}: 2 + 3, {p2, "events"}: 1 + 1, {p3, "events"}: 1, {p4, "events"}: 1, {"", "events"}: 1,
		{p1, "metric_events"}: 1 + 2, {p2, "metric_events"}: 1,
		{p1, "funnel_events"}: 1 + 2, {p2, "funnel_events"}: 1 + 1,
	}, sums)
	// Phase B keeps one exact row per project and table.
	var cutoff time.Time
	require.NoError(t, pool.QueryRow(bg, `SELECT cutoff_date FROM event_deletions WHERE project_id = $1 AND table_name = 'funnel_events'
		AND cutoff_date > now() - interval '100 days'`, p2).Scan(&cutoff))
	require.WithinDuration(t, now.Add(-60*day), cutoff, time.Minute)
	require.NoError(t, pool.QueryRow(bg, `SELECT cutoff_date FROM event_deletions WHERE project_id IS NULL`).Scan(&cutoff))
	require.WithinDuration(t, now.Add(-200*day), cutoff, time.Minute, "phase A audits carry the global cutoff")
	require.Equal(t, 2, rows[auditKey{p1, "events"}], "one row from the dropped partition, one from the batches")

	last := prog.last()
	require.Equal(t, last.total, last.processed)
	require.Equal(t, int64(len(wantDropped)+3), last.total)
	require.Equal(t, "3 of 3 projects · 19 rows deleted", last.message)
	var sawDrop bool
	for _, r := range prog.all() {
		if r.message == fmt.Sprintf("dropping %s (1 of %d expired partitions)", wantDropped[0], len(wantDropped)) {
			sawDrop = true
		}
	}
	require.True(t, sawDrop)

	// Nothing left to do: silent.
	res, err, _ = runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.RetentionCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, true, res["_silent"])
	require.Equal(t, []string{}, res["partitions_dropped"])
}

// A project keeping ten years of events holds every events partition back; the
// batched deletes of the other projects still apply.
func TestRetentionCleanupLongRetentionPreventsDrops(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	now := t0(t, pool)
	ensureHistory(t, pool, now, 400*day)
	team := seedTeam(t, pool)
	keeper := seedApp(t, pool, seedProject(t, pool, team, 3650))
	short := seedApp(t, pool, seedProject(t, pool, team, 30))
	for _, app := range []string{keeper, short} {
		insertEvents(t, pool, "events", app, now.Add(-390*day), 2, time.Hour, "old")
		insertEvents(t, pool, "events", app, now.Add(-5*day), 1, 0, "new")
	}
	res, err, _ := runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.RetentionCleanup, nil)
	require.NoError(t, err)
	for _, name := range res["partitions_dropped"].([]string) {
		parent, _, _, _ := db.PartitionSpan(name)
		require.NotEqual(t, "events", parent, name)
	}
	require.Equal(t, int64(2), res["events_deleted"])
	require.Equal(t, []string{"new", "old"}, labels(t, pool, "events", keeper))
	require.Equal(t, []string{"new"}, labels(t, pool, "events", short))
}

// Interrupted removals are finished: a leftover table that is no longer attached and a
// partition stuck in detach-pending state are counted, audited and dropped. A partition
// whose lock cannot be had is retried after 1, 2 and 4 s and then skipped for the run,
// its rows still deleted by phase B.
func TestRetentionCleanupFinishesInterruptedRemovalsAndSkipsLockedOnes(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	now := t0(t, pool)
	ensureHistory(t, pool, now, 400*day)
	team := seedTeam(t, pool)
	p1 := seedProject(t, pool, team, 30, 30, 30)
	app := seedApp(t, pool, p1)
	old := now.Add(-390 * day)
	month := db.MonthStart(old)
	for _, table := range db.EventParents {
		insertEvents(t, pool, table, app, old, 3, time.Minute, "old")
		insertEvents(t, pool, table, app, now.Add(-day), 1, 0, "new")
	}
	leftover := db.PartitionName("events", month)
	pending := db.PartitionName("metric_events", month)
	locked := db.PartitionName("funnel_events", month)

	_, err := pool.Exec(bg, `ALTER TABLE events DETACH PARTITION `+leftover)
	require.NoError(t, err)
	makeDetachPending(t, pool, "metric_events", pending)

	holder, err := pool.Begin(bg)
	require.NoError(t, err)
	defer holder.Rollback(bg) //nolint:errcheck
	_, err = holder.Exec(bg, `LOCK TABLE `+locked+` IN SHARE UPDATE EXCLUSIVE MODE`)
	require.NoError(t, err)

	clock := newFakeClock(time.Now())
	res, err, _ := runHandler(bg, t, pool, testDeps(clock), jobtype.RetentionCleanup, nil)
	require.NoError(t, err)
	dropped := res["partitions_dropped"].([]string)
	require.Contains(t, dropped, leftover)
	require.Contains(t, dropped, pending)
	require.NotContains(t, dropped, locked)
	require.False(t, exists(t, pool, leftover))
	require.False(t, exists(t, pool, pending))
	require.True(t, exists(t, pool, locked))
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, clock.Sleeps())

	require.Equal(t, int64(3), res["events_deleted"])
	require.Equal(t, int64(3), res["metric_events_deleted"])
	require.Equal(t, int64(3), res["funnel_events_deleted"], "phase B deleted the skipped partition's rows")
	require.NoError(t, holder.Rollback(bg))
	for _, table := range db.EventParents {
		require.Equal(t, []string{"new"}, labels(t, pool, table, app), table)
	}
	sums, _ := audits(t, pool, "retention")
	require.Equal(t, map[auditKey]int64{{p1, "events"}: 3, {p1, "metric_events"}: 3, {p1, "funnel_events"}: 3}, sums)
}

// makeDetachPending leaves child in the state an interrupted DETACH … CONCURRENTLY
// leaves: its first transaction committed, the wait for older transactions timed out.
func makeDetachPending(t *testing.T, pool *pgxpool.Pool, parent, child string) {
	t.Helper()
	holder, err := pool.Begin(bg)
	require.NoError(t, err)
	defer holder.Rollback(bg) //nolint:errcheck
	_, err = holder.Exec(bg, `SELECT 1 FROM `+parent+` LIMIT 1`)
	require.NoError(t, err)
	conn, err := pool.Acquire(bg)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(bg, `SET lock_timeout = '200ms'`)
	require.NoError(t, err)
	_, err = conn.Exec(bg, `ALTER TABLE `+parent+` DETACH PARTITION `+child+` CONCURRENTLY`)
	require.Error(t, err)
	_, err = conn.Exec(bg, `RESET lock_timeout`)
	require.NoError(t, err)
	var pendingState bool
	require.NoError(t, pool.QueryRow(bg, `SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1)`, child).Scan(&pendingState))
	require.True(t, pendingState)
}

// oneBigApp seeds a project with a 30-day retention and n expired rows of one app in
// one partition.
func oneBigApp(t *testing.T, pool *pgxpool.Pool, n int) (project, app, partition string) {
	t.Helper()
	now := t0(t, pool)
	old := now.Add(-60 * day)
	ensureHistory(t, pool, now, 60*day)
	team := seedTeam(t, pool)
	project = seedProject(t, pool, team, 30, 30, 30)
	app = seedApp(t, pool, project)
	seedProject(t, pool, team, 365) // holds phase A back: the rows go by batches
	insertEvents(t, pool, "events", app, db.MonthStart(old).Add(time.Hour), n, time.Second, "old")
	return project, app, db.PartitionName("events", db.MonthStart(old))
}

// statRecorder collects statement timings safely.
type statRecorder struct {
	mu    sync.Mutex
	stats []jobs.StatementStat
	hook  func(n int, s jobs.StatementStat)
}

func (r *statRecorder) record(s jobs.StatementStat) {
	r.mu.Lock()
	r.stats = append(r.stats, s)
	n, hook := len(r.stats), r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(n, s)
	}
}

func (r *statRecorder) batches(table string) []jobs.StatementStat {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []jobs.StatementStat
	for _, s := range r.stats {
		if s.Kind == "delete_batch" && s.Table == table {
			out = append(out, s)
		}
	}
	return out
}

// Batches grow while they are fast, each deletes at most its limit, and the project's
// audit row is one row holding the exact total.
func TestRetentionCleanupBatchesAdaptAndAuditExactly(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	project, _, partition := oneBigApp(t, pool, 12000)
	rec := &statRecorder{}
	deps := testDeps(newFakeClock(time.Now()))
	deps.StatementFunc = rec.record
	res, err, _ := runHandler(bg, t, pool, deps, jobtype.RetentionCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(12000), res["events_deleted"])

	var limits []int
	var rows []int64
	for _, s := range rec.batches(partition) {
		limits = append(limits, s.Limit)
		rows = append(rows, s.Rows)
	}
	require.Equal(t, []int{5000, 10000}, limits)
	require.Equal(t, []int64{5000, 7000}, rows)
	sums, n := audits(t, pool, "retention")
	require.Equal(t, int64(12000), sums[auditKey{project, "events"}])
	require.Equal(t, 1, n[auditKey{project, "events"}])
}

// A batch that hits the statement timeout is retried with half the rows; three in a row
// at the smallest size fail the run, keeping what earlier batches committed.
func TestRetentionCleanupStatementTimeouts(t *testing.T) {
	t.Parallel()
	for _, release := range []bool{true, false} {
		t.Run(fmt.Sprintf("released=%v", release), func(t *testing.T) {
			t.Parallel()
			tdb := newDB(t)
			pool := tdb.Pool
			project, app, partition := oneBigApp(t, pool, 3000)
			holder, err := pool.Begin(bg)
			require.NoError(t, err)
			defer holder.Rollback(bg) //nolint:errcheck
			_, err = holder.Exec(bg, `SELECT 1 FROM `+partition+` WHERE app_id = $1 FOR UPDATE`, app)
			require.NoError(t, err)

			rec := &statRecorder{}
			rec.hook = func(n int, s jobs.StatementStat) {
				if release && s.TimedOut && n == 2 {
					require.NoError(t, holder.Rollback(bg))
				}
			}
			deps := testDeps(newFakeClock(time.Now()))
			deps.Limits.BatchStatementTimeout = 100 * time.Millisecond
			deps.StatementFunc = rec.record
			res, err, _ := runHandler(bg, t, pool, deps, jobtype.RetentionCleanup, nil)

			var seq []string
			for _, s := range rec.batches(partition) {
				seq = append(seq, fmt.Sprintf("%d:%v", s.Limit, s.TimedOut))
			}
			if release {
				require.NoError(t, err)
				require.Equal(t, []string{"5000:true", "2500:true", "1250:false", "2500:false"}, seq)
				require.Equal(t, int64(3000), res["events_deleted"])
				sums, _ := audits(t, pool, "retention")
				require.Equal(t, int64(3000), sums[auditKey{project, "events"}])
				return
			}
			require.ErrorContains(t, err, "3 consecutive statement timeouts with batches of 500 rows")
			require.Equal(t, []string{"5000:true", "2500:true", "1250:true", "625:true", "500:true", "500:true", "500:true"}, seq)
			require.NoError(t, holder.Rollback(bg))
			require.Equal(t, int64(3000), count(t, pool, `SELECT count(*) FROM events WHERE app_id = $1`, app))
		})
	}
}

// Cancelled between batches, the run returns what committed batches deleted, with their
// audit; the next run finishes the job.
func TestRetentionCleanupStopsBetweenBatches(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	project, app, _ := oneBigApp(t, pool, 12000)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	deps := testDeps(newFakeClock(time.Now()))
	deps.CheckpointFunc = cancelAt(jobs.CheckpointRetentionBatch, 2, cancel)
	_, err, _ := runHandler(ctx, t, pool, deps, jobtype.RetentionCleanup, nil)
	partial := stoppedResult(t, err)
	require.Equal(t, int64(5000), partial["events_deleted"])
	require.Equal(t, int64(0), partial["projects_processed"])
	require.Equal(t, int64(7000), count(t, pool, `SELECT count(*) FROM events WHERE app_id = $1`, app))
	sums, _ := audits(t, pool, "retention")
	require.Equal(t, int64(5000), sums[auditKey{project, "events"}])

	res, err, _ := runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.RetentionCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(7000), res["events_deleted"])
	require.Equal(t, int64(0), count(t, pool, `SELECT count(*) FROM events WHERE app_id = $1`, app))
}

// Cancelled before a partition removal, the run reports the partitions it dropped.
func TestRetentionCleanupStopsBetweenPartitions(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	now := t0(t, pool)
	ensureHistory(t, pool, now, 420*day)
	seedProject(t, pool, seedTeam(t, pool), 30, 30, 30)
	want := expiredPartitions(t, pool, "events", now.Add(-120*day))
	require.Greater(t, len(want), 2)
	sort.Strings(want)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	deps := testDeps(newFakeClock(time.Now()))
	deps.CheckpointFunc = cancelAt(jobs.CheckpointRetentionPartition, 3, cancel)
	_, err, _ := runHandler(ctx, t, pool, deps, jobtype.RetentionCleanup, nil)
	partial := stoppedResult(t, err)
	require.Equal(t, want[:2], partial["partitions_dropped"])
	require.Equal(t, true, partial["_silent"], "empty partitions delete no rows")
	require.True(t, exists(t, pool, want[2]))
}

// A partition that another run removes while this one deletes from it is skipped: its
// rows are gone either way.
func TestRetentionCleanupSurvivesAPartitionRemovedMeanwhile(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	_, _, partition := oneBigApp(t, pool, 12000)
	deps := testDeps(newFakeClock(time.Now()))
	var seen int
	deps.CheckpointFunc = func(_ context.Context, p jobs.Checkpoint) {
		if p == jobs.CheckpointRetentionBatch {
			if seen++; seen == 2 {
				exec(t, pool, `DROP TABLE `+partition)
			}
		}
	}
	res, err, _ := runHandler(bg, t, pool, deps, jobtype.RetentionCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(5000), res["events_deleted"])
	require.Equal(t, int64(2), res["projects_processed"])
}
