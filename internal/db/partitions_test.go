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
