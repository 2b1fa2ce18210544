package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/metrics"
)

// dropMonths drops the children of the three parents for the months m0+from … m0+to.
func dropMonths(t *testing.T, pool *pgxpool.Pool, m0 time.Time, from, to int) []string {
	t.Helper()
	var names []string
	for i := from; i <= to; i++ {
		for _, p := range db.EventParents {
			name := db.PartitionName(p, m0.AddDate(0, i, 0))
			_, err := pool.Exec(bg, `DROP TABLE IF EXISTS `+name)
			require.NoError(t, err)
			names = append(names, name)
		}
	}
	return names
}

// zonedPool opens a second pool on the database whose sessions use a non-UTC zone.
func zonedPool(t *testing.T, url, zone string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["timezone"] = zone
	pool, err := pgxpool.NewWithConfig(bg, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func TestPartitionCreationBoundsAreUTCInAnyZone(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"America/New_York", "Pacific/Kiritimati", "Asia/Kathmandu"} {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			tdb := newDB(t)
			pool := zonedPool(t, tdb.URL, zone)
			var tz string
			require.NoError(t, pool.QueryRow(bg, `SHOW TimeZone`).Scan(&tz))
			require.Equal(t, zone, tz)
			m0 := db.MonthStart(t0(t, pool))
			want := dropMonths(t, tdb.Pool, m0, 1, 2)

			reg := metrics.New()
			deps := testDeps(newFakeClock(time.Now()))
			deps.Metrics = reg
			res, err, prog := runHandler(bg, t, pool, deps, jobtype.PartitionCreation, nil)
			require.NoError(t, err)
			require.ElementsMatch(t, want, res["created"])
			require.Equal(t, 2*(8+4+4), res["indexes_created"])
			require.Equal(t, true, res["events"])
			require.Equal(t, true, res["metric_events"])
			require.Equal(t, true, res["funnel_events"])
			require.Equal(t, false, res["_silent"])
			require.NotContains(t, res, "partitions_mismatched")

			for _, p := range db.EventParents {
				children, err := db.Children(bg, pool, p)
				require.NoError(t, err)
				found := 0
				for _, c := range children {
					for i := 0; i < 3; i++ {
						if c.Name == db.PartitionName(p, m0.AddDate(0, i, 0)) {
							found++
							require.Equal(t, m0.AddDate(0, i, 0), c.From, c.Name)
							require.Equal(t, m0.AddDate(0, i+1, 0), c.To, c.Name)
						}
					}
				}
				require.Equal(t, 3, found, p)
			}
			// The first instant of the month after next lands in its child, and the last
			// instant before it in the previous one, whatever the session's zone.
			m2 := m0.AddDate(0, 2, 0)
			for _, ts := range []time.Time{m2, m2.Add(-time.Microsecond)} {
				var part string
				require.NoError(t, pool.QueryRow(bg, `INSERT INTO events (app_id, session_id, level, message, "timestamp")
					VALUES (gen_random_uuid(), gen_random_uuid(), 'info', 'edge', $1) RETURNING tableoid::regclass::text`, ts).Scan(&part))
				require.Equal(t, db.PartitionName("events", db.MonthStart(ts)), part)
			}
			var indexes int
			require.NoError(t, pool.QueryRow(bg, `SELECT count(*) FROM pg_indexes WHERE tablename = $1`, db.PartitionName("events", m2)).Scan(&indexes))
			require.Equal(t, 8, indexes)

			reports := prog.all()
			require.GreaterOrEqual(t, len(reports), 9)
			require.Equal(t, int64(9), reports[len(reports)-1].processed)
			require.Equal(t, int64(9), reports[len(reports)-1].total)
			require.Equal(t, 2.0, testutilGauge(t, reg, "events"))

			// Running again is a no-op.
			res, err, _ = runHandler(bg, t, pool, deps, jobtype.PartitionCreation, nil)
			require.NoError(t, err)
			require.Empty(t, res["created"])
			require.Equal(t, 0, res["indexes_created"])
			require.Equal(t, true, res["_silent"])
		})
	}
}

// The issue-scan index reaches every attached events child — old ones made before it
// existed, the live current month, an invalid leftover of an interrupted build — built
// concurrently, without touching the other indexes of old children.
func TestPartitionCreationBuildsIssueScanIndexConcurrently(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	m0 := db.MonthStart(t0(t, pool))
	old := db.PartitionName("events", m0.AddDate(-2, 0, 0))
	_, err := pool.Exec(bg, fmt.Sprintf(`CREATE TABLE %s PARTITION OF events FOR VALUES FROM ('%s') TO ('%s')`,
		old, m0.AddDate(-2, 0, 0).Format("2006-01-02 15:04:05+00"), m0.AddDate(-2, 1, 0).Format("2006-01-02 15:04:05+00")))
	require.NoError(t, err)
	cur := db.PartitionName("events", m0)
	next := db.PartitionName("events", m0.AddDate(0, 1, 0))
	insertEvents(t, pool, "events", "00000000-0000-4000-8000-000000000001", m0.Add(time.Hour), 3, time.Minute, "live")
	_, err = pool.Exec(bg, `DROP INDEX `+cur+`_err_recv_idx; DROP INDEX `+next+`_err_recv_idx`)
	require.NoError(t, err)
	// An interrupted concurrent build: a unique index that fails on duplicates stays
	// behind, invalid, under the issue-scan index's name.
	_, err = pool.Exec(bg, `CREATE UNIQUE INDEX CONCURRENTLY `+cur+`_err_recv_idx ON `+cur+` (level)`)
	require.Error(t, err)
	require.False(t, indexValid(t, pool, cur+"_err_recv_idx"))

	var ddl []jobs.StatementStat
	deps := testDeps(newFakeClock(time.Now()))
	deps.StatementFunc = func(s jobs.StatementStat) { ddl = append(ddl, s) }
	res, err, _ := runHandler(bg, t, pool, deps, jobtype.PartitionCreation, nil)
	require.NoError(t, err)
	require.Empty(t, res["created"])
	// next is empty: the routine rebuilt its index in place. cur and old hold rows or
	// were never indexed: built concurrently.
	require.Equal(t, 3, res["indexes_created"])
	require.Equal(t, false, res["_silent"])
	for _, name := range []string{old, cur, next} {
		require.True(t, indexValid(t, pool, name+"_err_recv_idx"), name)
		var def string
		require.NoError(t, pool.QueryRow(bg, `SELECT indexdef FROM pg_indexes WHERE indexname = $1`, name+"_err_recv_idx").Scan(&def))
		require.Contains(t, def, "(received_at, id) WHERE (level = 'error'::log_level)")
	}
	var oldIndexes int
	require.NoError(t, pool.QueryRow(bg, `SELECT count(*) FROM pg_indexes WHERE tablename = $1`, old).Scan(&oldIndexes))
	require.Equal(t, 1, oldIndexes, "step 4 builds only the issue-scan index on other children")
	concurrent := 0
	for _, s := range ddl {
		if s.Kind == "ddl" {
			concurrent++
		}
	}
	require.Equal(t, 3, concurrent, "drop of the invalid index and two concurrent builds")
}

func indexValid(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var valid bool
	require.NoError(t, pool.QueryRow(bg, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, name).Scan(&valid))
	return valid
}

func TestPartitionCreationReportsMismatchAndMissingParent(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	m0 := db.MonthStart(t0(t, pool))
	dropMonths(t, pool, m0, 2, 2)
	m1, m2 := m0.AddDate(0, 1, 0), m0.AddDate(0, 2, 0)
	// Another tool made next month's metric_events child ending at midnight New York time.
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	nyEnd := time.Date(m2.Year(), m2.Month(), 1, 0, 0, 0, 0, ny).UTC()
	_, err = pool.Exec(bg, `DROP TABLE `+db.PartitionName("metric_events", m1))
	require.NoError(t, err)
	_, err = pool.Exec(bg, fmt.Sprintf(`CREATE TABLE %s PARTITION OF metric_events FOR VALUES FROM ('%s+00') TO ('%s+00')`,
		db.PartitionName("metric_events", m1), m1.Format("2006-01-02 15:04:05"), nyEnd.Format("2006-01-02 15:04:05")))
	require.NoError(t, err)
	_, err = pool.Exec(bg, `ALTER TABLE funnel_events RENAME TO funnel_events_elsewhere`)
	require.NoError(t, err)

	res, err, _ := runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.PartitionCreation, nil)
	require.NoError(t, err)
	require.Equal(t, []string{db.PartitionName("events", m2), db.PartitionName("metric_events", m2)}, res["created"])
	require.Equal(t, []string{db.PartitionName("metric_events", m1), db.PartitionName("metric_events", m2)}, res["partitions_mismatched"])
	children, err := db.Children(bg, pool, "metric_events")
	require.NoError(t, err)
	for _, c := range children {
		if c.Name == db.PartitionName("metric_events", m2) {
			require.Equal(t, nyEnd, c.From, "abuts its neighbour's actual bound")
			require.Equal(t, m2.AddDate(0, 1, 0), c.To)
		}
	}
	require.Equal(t, false, res["funnel_events"])
	require.Equal(t, true, res["events"])
	require.Equal(t, false, res["_silent"])
}

func TestPartitionCreationFailsWhenAMonthCannotBeCovered(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	m0 := db.MonthStart(t0(t, pool))
	dropMonths(t, pool, m0, 1, 2)
	blocked := db.PartitionName("funnel_events", m0.AddDate(0, 1, 0))
	_, err := pool.Exec(bg, `CREATE TABLE `+blocked+` (LIKE funnel_events)`)
	require.NoError(t, err)

	_, err, _ = runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.PartitionCreation, nil)
	require.EqualError(t, err, "missing partition "+blocked)
}

// A lock held on a parent delays creation through the retries of jobs.md §3.4.3 — after
// 1, 2 and 4 s of the injected clock — and the run succeeds once the lock is gone, or
// fails when it never goes.
func TestPartitionCreationRetriesLockTimeouts(t *testing.T) {
	t.Parallel()
	for _, release := range []bool{true, false} {
		t.Run(fmt.Sprintf("released=%v", release), func(t *testing.T) {
			t.Parallel()
			tdb := newDB(t)
			pool := tdb.Pool
			m0 := db.MonthStart(t0(t, pool))
			dropMonths(t, pool, m0, 2, 2)
			holder, err := pool.Begin(bg)
			require.NoError(t, err)
			defer holder.Rollback(bg) //nolint:errcheck
			_, err = holder.Exec(bg, `LOCK TABLE events IN ACCESS SHARE MODE`)
			require.NoError(t, err)

			clock := newFakeClock(time.Now())
			clock.onSleep = func(n int, _ time.Duration) {
				if release && n == 2 {
					require.NoError(t, holder.Rollback(bg))
				}
			}
			res, err, _ := runHandler(bg, t, pool, testDeps(clock), jobtype.PartitionCreation, nil)
			if release {
				require.NoError(t, err)
				require.Contains(t, res["created"], db.PartitionName("events", m0.AddDate(0, 2, 0)))
				require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, clock.Sleeps())
				return
			}
			require.ErrorContains(t, err, "create partition "+db.PartitionName("events", m0.AddDate(0, 2, 0)))
			require.ErrorContains(t, err, "lock timeout")
			require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, clock.Sleeps())
		})
	}
}

// Cancelled between partitions, the run stops with what it created, and every child it
// created is complete with its indexes (jobs.md §7.6).
func TestPartitionCreationStopsBetweenPartitions(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	m0 := db.MonthStart(t0(t, pool))
	dropMonths(t, pool, m0, 1, 2)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	deps := testDeps(newFakeClock(time.Now()))
	// Checkpoints 1–3 are events' months 0, 1, 2; the 4th is metric_events' month 0.
	deps.CheckpointFunc = cancelAt(jobs.CheckpointPartitionCreate, 4, cancel)
	_, err, _ := runHandler(ctx, t, pool, deps, jobtype.PartitionCreation, nil)
	partial := stoppedResult(t, err)
	created := []string{db.PartitionName("events", m0.AddDate(0, 1, 0)), db.PartitionName("events", m0.AddDate(0, 2, 0))}
	require.Equal(t, created, partial["created"])
	require.Equal(t, 16, partial["indexes_created"])
	for _, name := range created {
		var n int
		require.NoError(t, pool.QueryRow(bg, `SELECT count(*) FROM pg_indexes WHERE tablename = $1`, name).Scan(&n))
		require.Equal(t, 8, n, name)
	}
	require.False(t, exists(t, pool, db.PartitionName("metric_events", m0.AddDate(0, 1, 0))))
}
