package jobs_test

import (
	"flag"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

var retentionBenchRows = flag.Int("retention-bench-rows", 10_000_000, "events rows BenchmarkRetentionCleanup generates")

// BenchmarkRetentionCleanup measures retention_cleanup on a large events table (jobs.md
// §4.11): -retention-bench-rows events (10 M by default) spread evenly over 13 monthly
// partitions up to now, three projects keeping 30, 120 and 365 days, two apps each. It
// reports the run's wall time, deleted rows per second and the longest single batch
// transaction on a live partition (target ≤ 1 s), besides ns/op. Generating the data
// takes minutes: run it on its own,
//
//	go test -run '^$' -bench RetentionCleanup -benchtime 1x ./internal/jobs
func BenchmarkRetentionCleanup(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tdb := pgtest.New(b)
		pool := tdb.Pool
		now := t0Bench(b, tdb)
		m0 := db.MonthStart(now)
		first := m0.AddDate(0, -12, 0)
		_, err := db.EnsurePartitions(bg, pool, first, db.PartitionOptions{})
		require.NoError(b, err)
		for m := first.AddDate(0, 3, 0); !m.After(m0); m = m.AddDate(0, 3, 0) {
			_, err := db.EnsurePartitions(bg, pool, m, db.PartitionOptions{})
			require.NoError(b, err)
		}
		var apps []string
		var team string
		require.NoError(b, pool.QueryRow(bg, `INSERT INTO teams (name, slug) VALUES ('bench', 'bench') RETURNING id::text`).Scan(&team))
		for _, days := range []int{30, 120, 365} {
			var project string
			require.NoError(b, pool.QueryRow(bg, `INSERT INTO projects (team_id, name, slug, color, retention_days_events, retention_days_metrics, retention_days_funnels)
				VALUES ($1, 'P', $2, '#000000', $3, $3, $3) RETURNING id::text`, team, fmt.Sprintf("p%d", days), days).Scan(&project))
			for range 2 {
				var app string
				require.NoError(b, pool.QueryRow(bg, `INSERT INTO apps (team_id, project_id, name, platform) VALUES ($1, $2, 'A', 'apple') RETURNING id::text`,
					team, project).Scan(&app))
				apps = append(apps, app)
			}
		}

		// Load each month straight into its child, then build its indexes in bulk: the
		// same end state as rows arriving over a year, in a fraction of the time.
		load := time.Now()
		span := now.Sub(first)
		total := *retentionBenchRows
		loaded := 0
		for m := first; !m.After(m0); m = m.AddDate(0, 1, 0) {
			end := m.AddDate(0, 1, 0)
			if end.After(now) {
				end = now
			}
			n := int(float64(total) * float64(end.Sub(m)) / float64(span))
			if m.Equal(m0) {
				n = total - loaded
			}
			loaded += n
			child := db.PartitionName("events", m)
			indexes := db.ChildIndexes("events", child)
			for _, ix := range indexes {
				_, err := pool.Exec(bg, `DROP INDEX `+ix.Name)
				require.NoError(b, err)
			}
			_, err := pool.Exec(bg, `INSERT INTO `+child+` (app_id, session_id, level, message, "timestamp")
				SELECT ($1::uuid[])[1 + g % 6], gen_random_uuid(),
				       CASE WHEN g % 50 = 0 THEN 'error'::log_level ELSE 'info'::log_level END, 'bench event',
				       $2::timestamptz + random() * ($3::timestamptz - $2::timestamptz)
				  FROM generate_series(1, $4) AS g`, apps, m, end, n)
			require.NoError(b, err)
			conn, err := pool.Acquire(bg)
			require.NoError(b, err)
			_, err = conn.Exec(bg, `SET maintenance_work_mem = '512MB'`)
			require.NoError(b, err)
			for _, ix := range indexes {
				_, err := conn.Exec(bg, ix.CreateSQL(false))
				require.NoError(b, err)
			}
			_, err = conn.Exec(bg, `VACUUM (ANALYZE) `+child)
			require.NoError(b, err)
			conn.Release()
		}
		b.Logf("loaded %d events rows over 13 partitions in %s", loaded, time.Since(load).Round(time.Second))

		var (
			mu       sync.Mutex
			batches  []jobs.StatementStat
			longDDL  jobs.StatementStat
			timeouts int
		)
		deps := jobs.Deps{StatementFunc: func(s jobs.StatementStat) {
			mu.Lock()
			defer mu.Unlock()
			if s.TimedOut {
				timeouts++
			}
			switch s.Kind {
			case "delete_batch":
				batches = append(batches, s)
			case "ddl":
				if s.Duration > longDDL.Duration {
					longDDL = s
				}
			}
		}}
		b.StartTimer()
		start := time.Now()
		res, err, _ := runHandler(bg, b, pool, deps, jobtype.RetentionCleanup, nil)
		elapsed := time.Since(start)
		b.StopTimer()
		require.NoError(b, err)

		deleted := res["events_deleted"].(int64)
		sort.Slice(batches, func(i, j int) bool { return batches[i].Duration > batches[j].Duration })
		var longest jobs.StatementStat
		if len(batches) > 0 {
			longest = batches[0]
		}
		sizes := map[int]int{}
		for _, s := range batches {
			sizes[s.Limit]++
		}
		remaining := count(b, pool, `SELECT count(*) FROM events`)
		b.ReportMetric(elapsed.Seconds(), "wall_s")
		b.ReportMetric(float64(deleted)/elapsed.Seconds(), "rows/s")
		b.ReportMetric(float64(longest.Duration.Microseconds())/1000, "longest_stmt_ms")
		b.ReportMetric(float64(deleted), "rows_deleted")
		b.Logf("retention_cleanup: %d rows deleted (%d kept) in %s = %.0f rows/s; partitions dropped %v",
			deleted, remaining, elapsed.Round(time.Millisecond), float64(deleted)/elapsed.Seconds(), res["partitions_dropped"])
		b.Logf("%d batch transactions, %d statement timeouts; longest %s (%d of at most %d rows on %s); batch sizes used %v",
			len(batches), timeouts, longest.Duration.Round(time.Millisecond), longest.Rows, longest.Limit, longest.Table, sizes)
		if longDDL.Table != "" {
			b.Logf("longest DDL statement %s on %s", longDDL.Duration.Round(time.Millisecond), longDDL.Table)
		}
	}
}

func t0Bench(b *testing.B, tdb *pgtest.DB) time.Time {
	b.Helper()
	var now time.Time
	require.NoError(b, tdb.Pool.QueryRow(bg, `SELECT now()`).Scan(&now))
	return now.UTC()
}
