package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestPartitionBoundsAreUTCWhateverTheSessionZone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	conn, err := tdb.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	// The pool is private to this test database, so the changed session dies with it.
	_, err = conn.Exec(ctx, `SET TIME ZONE 'America/New_York'`)
	require.NoError(t, err)

	// A month the template does not have yet.
	t0 := time.Date(2031, 3, 15, 12, 0, 0, 0, time.UTC)
	rep, err := db.EnsurePartitions(ctx, conn.Conn(), t0, db.PartitionOptions{})
	require.NoError(t, err)
	require.Contains(t, rep.Created, "events_2031_03")
	require.Empty(t, rep.Mismatched)

	children, err := db.Children(ctx, conn.Conn(), "events")
	require.NoError(t, err)
	var found bool
	for _, c := range children {
		if c.Name == "events_2031_04" {
			found = true
			require.Equal(t, time.Date(2031, 4, 1, 0, 0, 0, 0, time.UTC), c.From)
			require.Equal(t, time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC), c.To)
		}
	}
	require.True(t, found)

	// A row at 23:30 New York time on March 31 is April 1 in UTC: it lands in April.
	_, err = conn.Exec(ctx, `INSERT INTO events (app_id, session_id, level, message, "timestamp")
		VALUES (gen_random_uuid(), gen_random_uuid(), 'info', 'x', '2031-03-31 23:30:00-04')`)
	require.NoError(t, err)
	var part string
	require.NoError(t, conn.QueryRow(ctx, `SELECT tableoid::regclass::text FROM events WHERE message = 'x'`).Scan(&part))
	require.Equal(t, "events_2031_04", part)

	// Every index of schema.md §10.3 exists on the new child.
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'events_2031_03'`).Scan(&n))
	require.Equal(t, 8, n)
}

func TestPartitionAbutsAForeignZoneNeighbour(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	// Another tool made April and May 2032 in New York time: May ends 04:00 UTC on June 1.
	_, err := tdb.Pool.Exec(ctx, `CREATE TABLE events_2032_04 PARTITION OF events
		FOR VALUES FROM ('2032-04-01 00:00:00-04') TO ('2032-05-01 00:00:00-04');
		CREATE TABLE events_2032_05 PARTITION OF events
		FOR VALUES FROM ('2032-05-01 00:00:00-04') TO ('2032-06-01 00:00:00-04')`)
	require.NoError(t, err)

	rep, err := db.EnsurePartitions(ctx, tdb.Pool, time.Date(2032, 5, 10, 0, 0, 0, 0, time.UTC), db.PartitionOptions{})
	require.NoError(t, err)
	require.Contains(t, rep.Mismatched, "events_2032_05")
	require.Contains(t, rep.Mismatched, "events_2032_06")
	children, err := db.Children(ctx, tdb.Pool, "events")
	require.NoError(t, err)
	for _, c := range children {
		if c.Name == "events_2032_06" {
			require.Equal(t, time.Date(2032, 6, 1, 4, 0, 0, 0, time.UTC), c.From, "abuts the neighbour")
			require.Equal(t, time.Date(2032, 7, 1, 0, 0, 0, 0, time.UTC), c.To)
		}
	}
}

func TestPartitionRoutineStopsAndReportsProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	var seen []string
	rep, err := db.EnsurePartitions(ctx, tdb.Pool, time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC), db.PartitionOptions{
		Progress: func(done, total int, msg string) {
			require.Equal(t, 9, total)
			seen = append(seen, msg)
		},
		Stop: func() bool { return len(seen) == 2 },
	})
	require.NoError(t, err)
	require.True(t, rep.Stopped)
	require.Equal(t, []string{"ensured events_2033_01", "ensured events_2033_02"}, seen)
	require.Equal(t, []string{"events_2033_01", "events_2033_02"}, rep.Created)
}

func TestPartitionSpan(t *testing.T) {
	t.Parallel()
	parent, from, to, ok := db.PartitionSpan("metric_events_2026_12")
	require.True(t, ok)
	require.Equal(t, "metric_events", parent)
	require.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), from)
	require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), to)
	for _, bad := range []string{"events_2026_13", "events_26_01", "other_2026_01", "events_2026_01_x"} {
		_, _, _, ok := db.PartitionSpan(bad)
		require.False(t, ok, bad)
	}
}

// A second run is a no-op, and two routines racing for the same months report each new
// child exactly once: the parent lock makes the existence check exact.
func TestPartitionRoutineReportsEachCreationOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	t0 := time.Date(2035, 6, 3, 0, 0, 0, 0, time.UTC)

	reports := make(chan db.PartitionReport, 2)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			rep, err := db.EnsurePartitions(ctx, tdb.Pool, t0, db.PartitionOptions{})
			reports <- rep
			errs <- err
		}()
	}
	counts := map[string]int{}
	indexes := 0
	for range 2 {
		require.NoError(t, <-errs)
		rep := <-reports
		for _, name := range rep.Created {
			counts[name]++
		}
		indexes += rep.IndexesCreated
	}
	require.Len(t, counts, 9)
	for name, n := range counts {
		require.Equal(t, 1, n, name)
	}
	require.Equal(t, 3*(8+4+4), indexes)

	again, err := db.EnsurePartitions(ctx, tdb.Pool, t0, db.PartitionOptions{})
	require.NoError(t, err)
	require.Empty(t, again.Created)
	require.Zero(t, again.IndexesCreated)
	require.Empty(t, again.PendingIndexes)
	require.Empty(t, again.Mismatched)
}

// Missing indexes of an empty child are built at once; those of a child holding rows are
// left for the concurrent pass, because a plain build would block its writers.
func TestPartitionRoutineLeavesLiveChildIndexesPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	t0 := time.Date(2036, 1, 10, 0, 0, 0, 0, time.UTC)
	_, err := db.EnsurePartitions(ctx, tdb.Pool, t0, db.PartitionOptions{})
	require.NoError(t, err)
	_, err = tdb.Pool.Exec(ctx, `
		INSERT INTO events (app_id, session_id, level, message, "timestamp")
		VALUES (gen_random_uuid(), gen_random_uuid(), 'error', 'x', '2036-01-05T00:00:00Z');
		DROP INDEX events_2036_01_err_recv_idx;
		DROP INDEX events_2036_02_err_recv_idx;
		DROP INDEX metric_events_2036_03_app_slug_ts_idx`)
	require.NoError(t, err)

	rep, err := db.EnsurePartitions(ctx, tdb.Pool, t0, db.PartitionOptions{})
	require.NoError(t, err)
	require.Empty(t, rep.Created)
	require.Equal(t, 2, rep.IndexesCreated, "the two empty children get theirs back")
	require.Len(t, rep.PendingIndexes, 1)
	require.Equal(t, "events_2036_01_err_recv_idx", rep.PendingIndexes[0].Name)
	require.Equal(t, "events_2036_01", rep.PendingIndexes[0].Table)
	require.Equal(t, `CREATE INDEX CONCURRENTLY IF NOT EXISTS "events_2036_01_err_recv_idx" ON "events_2036_01" (received_at, id) WHERE level = 'error'`,
		rep.PendingIndexes[0].CreateSQL(true))

	var present []string
	rows, err := tdb.Pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE indexname IN
		('events_2036_01_err_recv_idx', 'events_2036_02_err_recv_idx', 'metric_events_2036_03_app_slug_ts_idx') ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		present = append(present, n)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"events_2036_02_err_recv_idx", "metric_events_2036_03_app_slug_ts_idx"}, present)
}

// A table that carries a child's name but is not attached is never touched: it is
// reported, nothing is created in its place, and the coverage check names the month.
func TestPartitionRoutineLeavesATakenNameAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	_, err := tdb.Pool.Exec(ctx, `CREATE TABLE events_2037_02 (LIKE events)`)
	require.NoError(t, err)

	rep, err := db.EnsurePartitions(ctx, tdb.Pool, time.Date(2037, 1, 20, 0, 0, 0, 0, time.UTC), db.PartitionOptions{})
	require.EqualError(t, err, "missing partition events_2037_02")
	require.Contains(t, rep.Mismatched, "events_2037_02")
	require.NotContains(t, rep.Created, "events_2037_02")
	var attached bool
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = 'events_2037_02'::regclass)`).Scan(&attached))
	require.False(t, attached)
	var indexes int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'events_2037_02'`).Scan(&indexes))
	require.Zero(t, indexes)
}

func TestChildIndexes(t *testing.T) {
	t.Parallel()
	require.Len(t, db.ChildIndexes("events", "events_2030_01"), 8)
	require.Len(t, db.ChildIndexes("metric_events", "metric_events_2030_01"), 4)
	require.Len(t, db.ChildIndexes("funnel_events", "funnel_events_2030_01"), 4)
	require.Empty(t, db.ChildIndexes("other", "other_2030_01"))
	ix := db.ChildIndexes("funnel_events", "funnel_events_2030_01")[0]
	require.Equal(t, "funnel_events_2030_01_app_step_ts_idx", ix.Name)
	require.Equal(t, `CREATE INDEX IF NOT EXISTS "funnel_events_2030_01_app_step_ts_idx" ON "funnel_events_2030_01" (app_id, step_name, "timestamp")`, ix.CreateSQL(false))
}
