package engine_test

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

// BenchmarkNoopThroughput pushes no-op runs through the whole path — enqueue (job_runs +
// River in one transaction), fetch, claim, handler, finalisation — with the default
// worker settings (10 workers, 5 ms fetch cooldown), and reports completed runs/s.
func BenchmarkNoopThroughput(b *testing.B) {
	ctx := context.Background()
	tdb := pgtest.New(b)
	target := int64(b.N)
	handler := engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) { return nil, nil })
	// Every run gets its own overlap key, so producers never wait on each other: the
	// project-keyed types × enough projects for the whole run.
	keyed := []string{jobtype.AppStoreRatingsSync, jobtype.AppleAdsSync, jobtype.AppStoreConnectReviewsSync,
		jobtype.RevenueCatSync, jobtype.RevenueCatUserBackfill}
	projects := seedProjectsB(b, tdb, b.N/len(keyed)+1)
	handlers := map[string]engine.Handler{}
	for _, name := range jobtype.Names() {
		handlers[name] = handler
	}
	settings := engine.DefaultSettings()
	settings.NodeID = "bench"
	settings.CronProfile = "off"
	settings.Scheduler = false
	// A pool sized like a server's (OWLMETRY_DB_MAX_CONNS, default 40).
	pool, err := db.OpenPool(ctx, tdb.URL, db.PoolOptions{MaxConns: int32(settings.DBMaxConns)})
	require.NoError(b, err)
	defer pool.Close()
	e, err := engine.New(pool, engine.Config{Settings: settings, Handlers: handlers})
	require.NoError(b, err)
	require.NoError(b, e.Start(ctx))
	defer e.Close() //nolint:errcheck

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= target {
					return
				}
				_, err := e.Enqueue(ctx, engine.EnqueueRequest{JobType: keyed[i%int64(len(keyed))], Entry: jobtype.EntryCLI,
					Params: map[string]any{"project_id": projects[i/int64(len(keyed))]}, TriggeredBy: "bench"})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var n int64
		require.NoError(b, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_runs WHERE status = 'completed'`).Scan(&n))
		if n >= target {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d runs completed", n, target)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "runs/s")
}

// BenchmarkEnqueueToStart measures the delay from Enqueue returning to the handler
// starting, one run at a time, and reports p50 and p99.
func BenchmarkEnqueueToStart(b *testing.B) {
	ctx := context.Background()
	tdb := pgtest.New(b)
	started := make(chan time.Time, 1)
	settings := engine.DefaultSettings()
	settings.NodeID = "bench-latency"
	settings.CronProfile = "off"
	settings.Scheduler = false
	e, err := engine.New(tdb.Pool, engine.Config{Settings: settings, Handlers: map[string]engine.Handler{
		jobtype.PartitionCreation: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			started <- time.Now()
			return nil, nil
		}),
	}})
	require.NoError(b, err)
	require.NoError(b, e.Start(ctx))
	defer e.Close() //nolint:errcheck

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		rec, err := e.Enqueue(ctx, engine.EnqueueRequest{JobType: jobtype.PartitionCreation, Entry: jobtype.EntryCLI, TriggeredBy: "bench"})
		enqueued := time.Now()
		require.NoError(b, err)
		t := <-started
		lat = append(lat, t.Sub(enqueued))
		// The next run needs the key free again.
		for {
			r, err := e.Get(ctx, rec.ID)
			require.NoError(b, err)
			if r.Status.Terminal() {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// seedProjectsB inserts one team with n projects and returns their ids.
func seedProjectsB(b *testing.B, tdb *pgtest.DB, n int) []string {
	ctx := context.Background()
	var teamID string
	require.NoError(b, tdb.Pool.QueryRow(ctx, `INSERT INTO teams (name, slug) VALUES ('bench', 'bench') RETURNING id`).Scan(&teamID))
	rows, err := tdb.Pool.Query(ctx, `INSERT INTO projects (team_id, name, slug, color)
		SELECT $1, 'P' || g, 'p' || g, '#6366f1' FROM generate_series(1, $2) g RETURNING id`, teamID, n)
	require.NoError(b, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(b, err)
	return ids
}
