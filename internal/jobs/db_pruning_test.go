package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// fillMonth inserts n padded events rows of app in the month starting at month, one
// second apart, and vacuums the child so its size no longer moves by itself.
func fillMonth(t *testing.T, pool *pgxpool.Pool, app string, month time.Time, n int) string {
	t.Helper()
	_, err := pool.Exec(bg, `INSERT INTO events (app_id, session_id, level, message, "timestamp")
		SELECT $1, gen_random_uuid(), 'info', repeat('x', 150), $2::timestamptz + make_interval(secs => g)
		  FROM generate_series(0, $3 - 1) g`, app, month, n)
	require.NoError(t, err)
	name := db.PartitionName("events", month)
	_, err = pool.Exec(bg, `VACUUM (ANALYZE) `+name)
	require.NoError(t, err)
	return name
}

// vacuumCount is how many times a table was vacuumed by hand.
func vacuumCount(t *testing.T, pool *pgxpool.Pool, name string) int64 {
	t.Helper()
	return count(t, pool, `SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = $1`, name)
}

func relSize(t *testing.T, pool *pgxpool.Pool, name string) int64 {
	t.Helper()
	return count(t, pool, `SELECT pg_total_relation_size(to_regclass($1))`, name)
}

func dbSize(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	return count(t, pool, `SELECT pg_database_size(current_database())`)
}

func TestDBPruningWithoutALimit(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	res, err, _ := runHandler(bg, t, tdb.Pool, testDeps(newFakeClock(time.Now())), jobtype.DBPruning, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"skipped": true, "reason": "database size limit is not configured", "_silent": false}, map[string]any(res))

	// A run without the param falls back on this process's MAX_DATABASE_SIZE_GB.
	deps := testDeps(newFakeClock(time.Now()))
	deps.Config = jobs.DefaultConfig()
	deps.Config.MaxDatabaseSizeGB = 1000
	res, err, _ = runHandler(bg, t, tdb.Pool, deps, jobtype.DBPruning, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1000<<30), res["max_size_bytes"])
	require.Equal(t, true, res["_silent"])
}

func TestDBPruningUnderTheLimit(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	res, err, _ := runHandler(bg, t, tdb.Pool, testDeps(newFakeClock(time.Now())), jobtype.DBPruning, map[string]any{"max_size_bytes": int64(1 << 40)})
	require.NoError(t, err)
	require.Equal(t, []string{}, res["dropped_partitions"])
	require.Equal(t, int64(0), res["deleted_rows"])
	require.Equal(t, res["size_bytes_before"], res["size_bytes_after"])
	require.Equal(t, false, res["still_over_limit"])
	require.Equal(t, true, res["_silent"])
	size := asInt(t, res["size_bytes_after"])
	require.InDelta(t, float64(size)/(1<<30), res["current_size_gb"], 0.005)
	require.NotContains(t, res, "vacuumed")
}

// Oldest months go first, all three tables of a month before the next month, and the
// run stops as soon as the database is under the limit.
func TestDBPruningStopsOnceUnderTheLimit(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	m0 := db.MonthStart(t0(t, pool))
	ensureMonths(t, pool, m0.AddDate(0, -3, 0), 3)
	project := seedProject(t, pool, seedTeam(t, pool))
	app := seedApp(t, pool, project)
	oldest := fillMonth(t, pool, app, m0.AddDate(0, -3, 0), 20000)
	second := fillMonth(t, pool, app, m0.AddDate(0, -2, 0), 20000)
	fillMonth(t, pool, app, m0.AddDate(0, -1, 0), 100)
	current := fillMonth(t, pool, app, m0, 100)

	size := dbSize(t, pool)
	limit := size - relSize(t, pool, oldest) - relSize(t, pool, second)/2
	res, err, prog := runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.DBPruning, map[string]any{"max_size_bytes": limit})
	require.NoError(t, err)
	mm3 := m0.AddDate(0, -3, 0)
	require.Equal(t, []string{oldest, db.PartitionName("metric_events", mm3), db.PartitionName("funnel_events", mm3), second}, res["dropped_partitions"])
	require.Equal(t, false, res["still_over_limit"])
	require.LessOrEqual(t, asInt(t, res["size_bytes_after"]), limit)
	require.Greater(t, asInt(t, res["size_bytes_before"]), limit)
	require.Equal(t, limit, res["max_size_bytes"])
	require.Equal(t, int64(0), res["deleted_rows"])
	require.Equal(t, false, res["_silent"])
	for _, name := range []string{db.PartitionName("metric_events", m0.AddDate(0, -2, 0)), db.PartitionName("events", m0.AddDate(0, -1, 0)), current} {
		require.True(t, exists(t, pool, name), name)
	}

	var cutoff time.Time
	var n int64
	require.NoError(t, pool.QueryRow(bg, `SELECT cutoff_date, deleted_count FROM event_deletions
		WHERE reason = 'db_pruning' AND project_id = $1 ORDER BY cutoff_date LIMIT 1`, project).Scan(&cutoff, &n))
	require.Equal(t, m0.AddDate(0, -2, 0), cutoff.UTC(), "cutoff_date is the dropped month's end")
	require.Equal(t, int64(20000), n)
	require.Equal(t, int64(40000), count(t, pool, `SELECT sum(deleted_count) FROM event_deletions WHERE reason = 'db_pruning'`))

	last := prog.last()
	require.Equal(t, int64(4), last.processed)
	require.Equal(t, int64(0), last.total)
	require.True(t, strings.HasSuffix(last.message, "dropped "+second), last.message)
	require.Contains(t, last.message, " GB over limit ")
}

// With only the current month left, the run falls back on deleting its oldest rows in
// batches of at most 1,000, vacuums the partition, and reports that it is still over.
// The current and future months are never dropped.
func TestDBPruningNeverDropsTheCurrentMonthAndFallsBackOnRows(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	m0 := db.MonthStart(t0(t, pool))
	ensureMonths(t, pool, m0.AddDate(0, -1, 0), 1)
	app := seedApp(t, pool, seedProject(t, pool, seedTeam(t, pool)))
	fillMonth(t, pool, app, m0.AddDate(0, -1, 0), 100)
	current := fillMonth(t, pool, app, m0, 2500)
	insertEvents(t, pool, "metric_events", app, m0.Add(time.Minute), 10, time.Second, "m")
	vacuums := vacuumCount(t, pool, current)

	rec := &statRecorder{}
	deps := testDeps(newFakeClock(time.Now()))
	deps.StatementFunc = rec.record
	res, err, _ := runHandler(bg, t, pool, deps, jobtype.DBPruning, map[string]any{"max_size_bytes": int64(1)})
	require.NoError(t, err)
	mm1 := m0.AddDate(0, -1, 0)
	require.Equal(t, []string{db.PartitionName("events", mm1), db.PartitionName("metric_events", mm1), db.PartitionName("funnel_events", mm1)}, res["dropped_partitions"])
	require.Equal(t, int64(2500), res["deleted_rows"])
	require.Equal(t, current, res["vacuumed"])
	require.Equal(t, true, res["still_over_limit"])
	require.Equal(t, false, res["_silent"])
	for i := 0; i <= 2; i++ {
		for _, p := range db.EventParents {
			require.True(t, exists(t, pool, db.PartitionName(p, m0.AddDate(0, i, 0))))
		}
	}
	require.Equal(t, int64(0), count(t, pool, `SELECT count(*) FROM `+current))
	require.Equal(t, int64(10), count(t, pool, `SELECT count(*) FROM metric_events`))
	var limits []string
	for _, s := range rec.batches(current) {
		limits = append(limits, fmt.Sprintf("%d:%d", s.Limit, s.Rows))
	}
	require.Equal(t, []string{"1000:1000", "1000:1000", "1000:500"}, limits)
	require.Equal(t, vacuums+1, vacuumCount(t, pool, current))
	var cutoff time.Time
	require.NoError(t, pool.QueryRow(bg, `SELECT cutoff_date FROM event_deletions WHERE project_id IS NULL AND reason = 'db_pruning' AND deleted_count = 2500`).Scan(&cutoff))
	require.Equal(t, m0.Add(2499*time.Second), cutoff.UTC(), "the boundary timestamp")
}

// The fallback deletes at most what is left of the day's million rows (by UTC day,
// according to event_deletions), the oldest first.
func TestDBPruningDailyCap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		earlier   int64
		yesterday bool
		deleted   int64
	}{
		{"budget left today", 999_000, false, 1000},
		{"cap reached", 1_000_000, false, 0},
		{"yesterday does not count", 1_000_000, true, 2500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tdb := newDB(t)
			pool := tdb.Pool
			m0 := db.MonthStart(t0(t, pool))
			app := seedApp(t, pool, seedProject(t, pool, seedTeam(t, pool)))
			current := fillMonth(t, pool, app, m0, 2500)
			at := `now()`
			if tc.yesterday {
				at = `date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 hour'`
			}
			_, err := pool.Exec(bg, `INSERT INTO event_deletions (table_name, reason, cutoff_date, deleted_count, executed_at)
				VALUES ('events', 'db_pruning', now(), $1, `+at+`)`, tc.earlier)
			require.NoError(t, err)

			// The day is the UTC day whatever the session's zone.
			zoned := zonedPool(t, tdb.URL, "Pacific/Kiritimati")
			res, err, _ := runHandler(bg, t, zoned, testDeps(newFakeClock(time.Now())), jobtype.DBPruning, map[string]any{"max_size_bytes": int64(1)})
			require.NoError(t, err)
			require.Equal(t, tc.deleted, res["deleted_rows"])
			require.Equal(t, true, res["still_over_limit"])
			require.Equal(t, 2500-tc.deleted, count(t, pool, `SELECT count(*) FROM `+current))
			if tc.deleted == 0 {
				require.NotContains(t, res, "vacuumed")
				return
			}
			require.Equal(t, current, res["vacuumed"])
			// The survivors are the newest rows.
			var oldest time.Time
			if tc.deleted < 2500 {
				require.NoError(t, pool.QueryRow(bg, `SELECT min("timestamp") FROM `+current).Scan(&oldest))
				require.Equal(t, m0.Add(time.Duration(tc.deleted)*time.Second), oldest.UTC())
			}
		})
	}
}

func TestDBPruningStops(t *testing.T) {
	t.Parallel()
	t.Run("between removals", func(t *testing.T) {
		t.Parallel()
		tdb := newDB(t)
		pool := tdb.Pool
		m0 := db.MonthStart(t0(t, pool))
		ensureMonths(t, pool, m0.AddDate(0, -3, 0), 3)
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		deps := testDeps(newFakeClock(time.Now()))
		deps.CheckpointFunc = cancelAt(jobs.CheckpointPruningPartition, 2, cancel)
		_, err, _ := runHandler(ctx, t, pool, deps, jobtype.DBPruning, map[string]any{"max_size_bytes": int64(1)})
		partial := stoppedResult(t, err)
		require.Equal(t, []string{db.PartitionName("events", m0.AddDate(0, -3, 0))}, partial["dropped_partitions"])
		require.Equal(t, true, partial["still_over_limit"])
		require.True(t, exists(t, pool, db.PartitionName("metric_events", m0.AddDate(0, -3, 0))))
	})
	t.Run("between fallback batches, before vacuum", func(t *testing.T) {
		t.Parallel()
		tdb := newDB(t)
		pool := tdb.Pool
		m0 := db.MonthStart(t0(t, pool))
		app := seedApp(t, pool, seedProject(t, pool, seedTeam(t, pool)))
		current := fillMonth(t, pool, app, m0, 2500)
		vacuums := vacuumCount(t, pool, current)
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		deps := testDeps(newFakeClock(time.Now()))
		deps.CheckpointFunc = cancelAt(jobs.CheckpointPruningBatch, 2, cancel)
		_, err, _ := runHandler(ctx, t, pool, deps, jobtype.DBPruning, map[string]any{"max_size_bytes": int64(1)})
		partial := stoppedResult(t, err)
		require.Equal(t, int64(1000), partial["deleted_rows"])
		require.NotContains(t, partial, "vacuumed")
		require.Equal(t, int64(1500), count(t, pool, `SELECT count(*) FROM `+current))
		require.Equal(t, int64(1000), count(t, pool, `SELECT sum(deleted_count) FROM event_deletions WHERE reason = 'db_pruning'`))
		require.Equal(t, vacuums, vacuumCount(t, pool, current), "VACUUM is not started after a cancellation")
	})
}
