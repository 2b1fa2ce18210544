package jobs_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

var bg = context.Background()

// fakeClock returns a fixed process time and records sleeps instead of waiting.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  []time.Duration
	onSleep func(n int, d time.Duration)
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	n, hook := len(c.sleeps), c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(n, d)
	}
	return ctx.Err()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration{}, c.sleeps...)
}

// progressLog records every progress report.
type progressLog struct {
	mu      sync.Mutex
	reports []progressReport
}

type progressReport struct {
	processed, total int64
	message          string
}

func (p *progressLog) Report(processed, total int64, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reports = append(p.reports, progressReport{processed, total, message})
}

func (p *progressLog) Inner(string) engine.InnerReporter { return nil }

func (p *progressLog) all() []progressReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]progressReport{}, p.reports...)
}

func (p *progressLog) last() progressReport {
	all := p.all()
	if len(all) == 0 {
		return progressReport{}
	}
	return all[len(all)-1]
}

// testDeps are handler dependencies for tests: a fake clock and tight limits.
func testDeps(clock *fakeClock) jobs.Deps {
	return jobs.Deps{
		Clock: clock,
		Limits: jobs.Limits{
			BatchStatementTimeout: 5 * time.Second,
			DDLLockTimeout:        100 * time.Millisecond,
		},
	}
}

// runHandler calls one handler directly with a run built for it.
func runHandler(ctx context.Context, t testing.TB, pool *pgxpool.Pool, deps jobs.Deps, jobType string, params map[string]any) (engine.Result, error, *progressLog) {
	t.Helper()
	h, ok := jobs.All(deps)[jobType]
	require.True(t, ok, jobType)
	prog := &progressLog{}
	run := &engine.Run{
		ID: uuid.NewString(), JobType: jobType, TriggeredBy: "manual:cli:test@host", Params: params,
		Progress: prog, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), DB: pool, Now: time.Now,
	}
	res, err := h.Run(ctx, run)
	return res, err, prog
}

// stoppedResult asserts err is the stopped-early signal and returns its partial result.
func stoppedResult(t *testing.T, err error) engine.Result {
	t.Helper()
	require.Error(t, err)
	partial, ok := engine.IsStopped(err)
	require.True(t, ok, "want the stopped-early signal, got %v", err)
	require.NotNil(t, partial)
	return partial
}

// cancelAt returns a checkpoint hook that cancels the run's context at the n-th time it
// reaches point, and waits until the handler has seen it.
func cancelAt(point jobs.Checkpoint, n int64, cancel context.CancelFunc) func(context.Context, jobs.Checkpoint) {
	var seen atomic.Int64
	return func(ctx context.Context, p jobs.Checkpoint) {
		if p == point && seen.Add(1) == n {
			cancel()
			<-ctx.Done()
		}
	}
}

// t0 reads the database clock, as the handlers do.
func t0(t *testing.T, pool *pgxpool.Pool) time.Time {
	t.Helper()
	var now time.Time
	require.NoError(t, pool.QueryRow(bg, `SELECT now()`).Scan(&now))
	return now.UTC()
}

// ensureMonths makes sure every event parent has children for the n UTC months from
// the one holding from.
func ensureMonths(t *testing.T, pool *pgxpool.Pool, from time.Time, n int) {
	t.Helper()
	m := db.MonthStart(from)
	for i := 0; i < n; i += 3 {
		_, err := db.EnsurePartitions(bg, pool, m.AddDate(0, i, 0), db.PartitionOptions{})
		require.NoError(t, err)
	}
}

func seedTeam(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var id string
	slug := "t-" + uuid.NewString()[:12]
	require.NoError(t, pool.QueryRow(bg, `INSERT INTO teams (name, slug) VALUES ($1, $1) RETURNING id::text`, slug).Scan(&id))
	return id
}

// seedProject inserts a project; retentions are events, metrics, funnels days (0 = NULL).
func seedProject(t *testing.T, pool *pgxpool.Pool, teamID string, retention ...int) string {
	t.Helper()
	r := make([]*int, 3)
	for i := range retention {
		if retention[i] > 0 {
			v := retention[i]
			r[i] = &v
		}
	}
	var id string
	require.NoError(t, pool.QueryRow(bg, `INSERT INTO projects (team_id, name, slug, color, retention_days_events, retention_days_metrics, retention_days_funnels)
		VALUES ($1, 'P', $2, '#6366f1', $3, $4, $5) RETURNING id::text`, teamID, "p-"+uuid.NewString()[:12], r[0], r[1], r[2]).Scan(&id))
	return id
}

func seedApp(t *testing.T, pool *pgxpool.Pool, projectID string) string {
	t.Helper()
	var id string
	require.NoError(t, pool.QueryRow(bg, `INSERT INTO apps (team_id, project_id, name, platform)
		SELECT team_id, id, 'App', 'apple' FROM projects WHERE id = $1 RETURNING id::text`, projectID).Scan(&id))
	return id
}

func seedUser(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var id string
	require.NoError(t, pool.QueryRow(bg, `INSERT INTO users (email, name) VALUES ($1, 'U') RETURNING id::text`,
		uuid.NewString()+"@example.com").Scan(&id))
	return id
}

// softDelete marks a row of table deleted ago before the database clock.
func softDelete(t *testing.T, pool *pgxpool.Pool, table, id string, ago time.Duration) {
	t.Helper()
	_, err := pool.Exec(bg, fmt.Sprintf(`UPDATE %s SET deleted_at = now() - make_interval(secs => $2) WHERE id = $1`, pgx.Identifier{table}.Sanitize()),
		id, ago.Seconds())
	require.NoError(t, err)
}

// insertEvents inserts n rows for app into table, the first at ts and each next one
// step later, labelled with label (message, metric_slug or step_name).
func insertEvents(t *testing.T, pool *pgxpool.Pool, table, appID string, ts time.Time, n int, step time.Duration, label string) {
	t.Helper()
	var sql string
	switch table {
	case "events":
		sql = `INSERT INTO events (app_id, session_id, level, message, "timestamp", client_event_id)
			SELECT $1, gen_random_uuid(), 'info', $4, $2::timestamptz + make_interval(secs => $3 * g), gen_random_uuid() FROM generate_series(0, $5 - 1) g`
	case "metric_events":
		sql = `INSERT INTO metric_events (app_id, session_id, metric_slug, phase, "timestamp")
			SELECT $1, gen_random_uuid(), $4, 'record', $2::timestamptz + make_interval(secs => $3 * g) FROM generate_series(0, $5 - 1) g`
	case "funnel_events":
		sql = `INSERT INTO funnel_events (app_id, session_id, step_name, message, "timestamp")
			SELECT $1, gen_random_uuid(), $4, 'm', $2::timestamptz + make_interval(secs => $3 * g) FROM generate_series(0, $5 - 1) g`
	default:
		t.Fatalf("unknown table %s", table)
	}
	_, err := pool.Exec(bg, sql, appID, ts, step.Seconds(), label, n)
	require.NoError(t, err)
}

// count runs a count query.
func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pool.QueryRow(bg, sql, args...).Scan(&n))
	return n
}

// exists reports whether a relation exists.
func exists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(bg, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{name}.Sanitize()).Scan(&ok))
	return ok
}

// labels returns the labels of an app's rows in table, sorted.
func labels(t *testing.T, pool *pgxpool.Pool, table, appID string) []string {
	t.Helper()
	col := map[string]string{"events": "message", "metric_events": "metric_slug", "funnel_events": "step_name"}[table]
	rows, err := pool.Query(bg, fmt.Sprintf(`SELECT DISTINCT %s FROM %s WHERE app_id = $1 ORDER BY 1`, col, table), appID)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	if out == nil {
		out = []string{}
	}
	return out
}

func newDB(t *testing.T) *pgtest.DB {
	t.Helper()
	return pgtest.New(t)
}

// asInt reads a numeric result counter whatever its Go type.
func asInt(t *testing.T, v any) int64 {
	t.Helper()
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case float64:
		return int64(x)
	}
	t.Fatalf("not a number: %#v", v)
	return 0
}

// testutilGauge reads one label of the partitions-ahead gauge.
func testutilGauge(t *testing.T, reg *metrics.Set, table string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, reg.PartitionsAhead.WithLabelValues(table).Write(&m))
	return m.GetGauge().GetValue()
}
