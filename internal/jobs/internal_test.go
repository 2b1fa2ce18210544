package jobs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestBatchSizeAdapts(t *testing.T) {
	t.Parallel()
	b := newBatchSize()
	require.Equal(t, 5000, b.n)
	for range 10 {
		b.succeeded(10 * time.Millisecond)
	}
	require.Equal(t, 50000, b.n, "doubles up to the maximum")
	b.succeeded(200 * time.Millisecond)
	require.Equal(t, 50000, b.n, "between 50 and 500 ms it stays")
	b.succeeded(600 * time.Millisecond)
	require.Equal(t, 25000, b.n)
	for range 10 {
		b.succeeded(time.Second)
	}
	require.Equal(t, 500, b.n, "halves down to the minimum")

	b = newBatchSize()
	var sizes []int
	for b.timedOut() {
		sizes = append(sizes, b.n)
	}
	require.Equal(t, []int{2500, 1250, 625, 500, 500, 500}, sizes, "the third timeout at 500 gives up")

	b = newBatchSize()
	b.n = 500
	require.True(t, b.timedOut())
	require.True(t, b.timedOut())
	b.succeeded(100 * time.Millisecond)
	require.True(t, b.timedOut(), "a success resets the count")
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1204311: "1,204,311", -52004: "-52,004", 100000: "100,000"} {
		require.Equal(t, want, formatCount(n))
	}
	require.Equal(t, 12.41, gigabytes(13325829243))
	require.Equal(t, "10.00 GB", formatGB(10<<30))
}

func TestPartitionAge(t *testing.T) {
	t.Parallel()
	_, from, to, ok := db.PartitionSpan("events_2025_03")
	require.True(t, ok)
	p := eventPartition{From: from, To: to}
	april := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	require.False(t, p.olderThan(april), "a child made in another zone may reach 14 h into April")
	require.False(t, p.olderThan(april.Add(23*time.Hour)))
	require.True(t, p.olderThan(april.Add(24*time.Hour)))
}

func TestMonthsAhead(t *testing.T) {
	t.Parallel()
	m0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	child := func(from, to time.Time) db.Child { return db.Child{From: from, To: to} }
	require.Equal(t, 2, monthsAhead([]db.Child{
		child(m0.AddDate(0, 2, 0), m0.AddDate(0, 3, 0)), child(m0, m0.AddDate(0, 1, 0)), child(m0.AddDate(0, 1, 0), m0.AddDate(0, 2, 0)),
	}, m0))
	require.Equal(t, 0, monthsAhead([]db.Child{child(m0, m0.AddDate(0, 1, 0)), child(m0.AddDate(0, 2, 0), m0.AddDate(0, 3, 0))}, m0))
	require.Equal(t, 0, monthsAhead(nil, m0))
	// Foreign-zone bounds that abut still count; a partial month does not.
	require.Equal(t, 1, monthsAhead([]db.Child{
		child(m0.Add(-5*time.Hour), m0.AddDate(0, 1, 0).Add(-5*time.Hour)),
		child(m0.AddDate(0, 1, 0).Add(-5*time.Hour), m0.AddDate(0, 2, 0).Add(-5*time.Hour)),
		child(m0.AddDate(0, 2, 0).Add(-5*time.Hour), m0.AddDate(0, 3, 0).Add(-5*time.Hour)),
	}, m0))
}

func TestAttachmentRootPaths(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "att")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	r, err := openAttachmentRoot(root)
	require.NoError(t, err)
	defer r.Close()
	for in, want := range map[string]string{
		"a/b.bin": "a/b.bin", "./a//b.bin": "a/b.bin", filepath.Join(root, "a/b.bin"): "a/b.bin", "a/../c.bin": "c.bin",
	} {
		got, ok := r.rel(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"../x", "a/../../x", filepath.Join(base, "x"), "/etc/passwd", ".", ""} {
		_, ok := r.rel(in)
		require.False(t, ok, in)
	}

	// A symlinked directory on the way is never followed.
	require.NoError(t, os.WriteFile(filepath.Join(base, "secret"), []byte("x"), 0o644))
	require.NoError(t, os.Symlink(base, filepath.Join(root, "up")))
	_, err = r.regularFile("up/secret")
	require.ErrorIs(t, err, errNotRegular)
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "f"), []byte("x"), 0o644))
	info, err := r.regularFile("a/f")
	require.NoError(t, err)
	require.Equal(t, int64(1), info.Size())
	_, err = r.regularFile("a")
	require.ErrorIs(t, err, errNotRegular)
	_, err = openAttachmentRoot(filepath.Join(base, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// Every batch finds its rows through the table's (app_id, …, timestamp) index, in index
// order: never a sequential or bitmap scan of a live partition (jobs.md §3.4.2, §4.11).
func TestBatchesWalkTheIndex(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	ctx := context.Background()
	var now time.Time
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT now()`).Scan(&now))
	indexes := map[string]string{"events": "app_ts_idx", "metric_events": "app_slug_ts_idx", "funnel_events": "app_step_ts_idx"}
	for _, tbl := range eventTables {
		child := db.PartitionName(tbl.name, db.MonthStart(now))
		for _, after := range []bool{false, true} {
			args := []any{"00000000-0000-4000-8000-000000000001", now, 5000}
			if after {
				if len(tbl.keys) == 2 {
					args = append(args, "slug")
				}
				args = append(args, now.Add(-time.Hour))
			}
			var plan []string
			err := pgx.BeginFunc(ctx, tdb.Pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off`); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, `EXPLAIN `+tbl.batchSQL(child, after), args...)
				if err != nil {
					return err
				}
				plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			require.NoError(t, err)
			text := strings.Join(plan, "\n")
			victims := text[strings.Index(text, "CTE victims"):strings.Index(text, "CTE gone")]
			require.Contains(t, victims, "Index Scan using "+child+"_"+indexes[tbl.name], text)
			require.NotContains(t, victims, "Sort", "victims come in index order")
			require.Contains(t, text, "Tid Scan", text)
			require.NotContains(t, text, "Seq Scan", text)
		}
	}
}
