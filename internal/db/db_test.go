package db_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The tables of schema.md §3–§9 plus the engine's own.
var schemaTables = []string{
	"users", "teams", "team_members", "api_keys", "projects", "apps", "app_users", "app_user_apps",
	"job_runs", "job_schedules", "owlmetry_instances", "job_cursors", "rate_buckets", "audit_logs",
	"owlmetry_schema_migrations", "events", "metric_events", "funnel_events", "event_deletions",
	"event_attachments", "issues", "issue_fingerprints", "issue_occurrences", "issue_comments",
	"project_integrations", "app_store_ratings", "app_store_reviews", "ad_campaign_lifetime",
	"ad_adgroup_lifetime", "notifications", "notification_deliveries", "metric_definitions",
	"funnel_definitions", "team_invitations", "feedback", "feedback_comments", "questionnaires",
	"questionnaire_responses", "questionnaire_response_comments",
	"river_job", "river_leader", "river_queue", "river_migration",
}

func TestMigrateEmptyDatabaseThenNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.NewEmpty(t)

	sv, err := db.CheckSchema(ctx, tdb.Pool)
	require.NoError(t, err)
	require.Equal(t, db.SchemaNotMigrated, sv.State)

	now := time.Date(2026, 11, 29, 23, 30, 0, 0, time.UTC)
	first, err := db.Migrate(ctx, tdb.Pool, db.MigrateOptions{Now: now})
	require.NoError(t, err)
	require.NotEmpty(t, first.Applied)
	var sets = map[string]int{}
	for _, a := range first.Applied {
		sets[a.Set]++
	}
	require.Equal(t, len(db.Migrations()), sets["owlmetry"])
	require.Positive(t, sets["river"])
	require.ElementsMatch(t, []string{
		"events_2026_11", "events_2026_12", "events_2027_01",
		"metric_events_2026_11", "metric_events_2026_12", "metric_events_2027_01",
		"funnel_events_2026_11", "funnel_events_2026_12", "funnel_events_2027_01",
	}, first.Partitions.Created)

	for _, table := range schemaTables {
		var ok bool
		require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok))
		require.True(t, ok, "table %s missing", table)
	}

	second, err := db.Migrate(ctx, tdb.Pool, db.MigrateOptions{Now: now})
	require.NoError(t, err)
	require.Empty(t, second.Applied)
	require.Empty(t, second.Partitions.Created)
	require.Zero(t, second.Partitions.IndexesCreated)

	sv, err = db.CheckSchema(ctx, tdb.Pool)
	require.NoError(t, err)
	require.Equal(t, db.SchemaCurrent, sv.State)
	require.Equal(t, db.LatestVersion(), sv.Current)
}

func TestMigrateConcurrentCallsSerialise(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.NewEmpty(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	applied := make([]int, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := db.Migrate(ctx, tdb.Pool, db.MigrateOptions{})
			errs[i], applied[i] = err, len(r.Applied)
		}()
	}
	wg.Wait()
	nonZero := 0
	for i := range 4 {
		require.NoError(t, errs[i])
		if applied[i] > 0 {
			nonZero++
		}
	}
	require.Equal(t, 1, nonZero, "exactly one caller applies the migrations")
}

func TestMigrateLockWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	holder, err := tdb.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer holder.Release()
	_, err = holder.Exec(ctx, `SELECT pg_advisory_lock(hashtext('owlmetry-migrate'))`)
	require.NoError(t, err)

	_, err = db.Migrate(ctx, tdb.Pool, db.MigrateOptions{LockWait: 200 * time.Millisecond})
	require.ErrorIs(t, err, db.ErrMigrationLocked)
}

func TestSchemaAheadIsReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	_, err := tdb.Pool.Exec(ctx, `INSERT INTO owlmetry_schema_migrations (version, name, duration_ms) VALUES (9999, 'from_the_future', 1)`)
	require.NoError(t, err)
	sv, err := db.CheckSchema(ctx, tdb.Pool)
	require.NoError(t, err)
	require.Equal(t, db.SchemaAhead, sv.State)
	_, err = db.Migrate(ctx, tdb.Pool, db.MigrateOptions{})
	require.True(t, errors.Is(err, db.ErrSchemaAhead), "got %v", err)
}

func TestJobRunsNotifyTrigger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	conn, err := pgx.Connect(ctx, tdb.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `LISTEN owlmetry_job_run`)
	require.NoError(t, err)

	var id string
	require.NoError(t, tdb.Pool.QueryRow(ctx,
		`INSERT INTO job_runs (job_type, triggered_by) VALUES ('partition_creation', 'schedule') RETURNING id`).Scan(&id))
	steps := []struct {
		sql   string
		event string
	}{
		{``, "insert"},
		{`UPDATE job_runs SET status = 'running', started_at = now(), heartbeat_at = now(), owner_instance = gen_random_uuid() WHERE id = $1`, "status"},
		{`UPDATE job_runs SET heartbeat_at = now() WHERE id = $1`, ""},
		{`UPDATE job_runs SET progress = '{"processed":1,"total":2}' WHERE id = $1`, "progress"},
		{`UPDATE job_runs SET cancel_requested_at = now() WHERE id = $1`, "cancel"},
		{`UPDATE job_runs SET status = 'cancelled', completed_at = now() WHERE id = $1`, "status"},
	}
	for _, s := range steps {
		if s.sql != "" {
			_, err := tdb.Pool.Exec(ctx, s.sql, id)
			require.NoError(t, err)
		}
		if s.event == "" {
			continue // a heartbeat alone notifies nobody; the next step proves it
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		require.NoError(t, err)
		require.Equal(t, id+":"+s.event, n.Payload)
	}
}

func TestOverlapIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	ins := `INSERT INTO job_runs (job_type, triggered_by) VALUES ('db_pruning', 'schedule')`
	_, err := tdb.Pool.Exec(ctx, ins)
	require.NoError(t, err)
	_, err = tdb.Pool.Exec(ctx, ins)
	require.True(t, db.IsUniqueViolation(err, db.ActiveRunIndex), "got %v", err)
	require.False(t, db.IsUniqueViolation(err, "other_idx"))
}

func TestRedact(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://u:xxxxx@h/db", db.Redact("postgres://u:secret@h/db"))
	require.Equal(t, "host=h password=xxxxx", db.Redact("host=h password=secret"))
	require.Equal(t, "postgres://u@h/db", db.Redact("postgres://u@h/db"))
}
