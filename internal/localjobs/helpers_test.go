package localjobs_test

import (
	"context"
	"testing"
	"time"
	_ "time/tzdata" // the zone above, even on machines without a zone database

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/localjobs"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

// TestMain runs the package in New York time: schedules and stored instants are UTC
// whatever the process's zone, and a time.Local that leaked in would show.
func TestMain(m *testing.M) {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	time.Local = loc
	pgtest.Main(m)
}

const actor = "manual:cli:tester@testhost"

// testEnv is the server environment the store reads: short leases, so stale runs can be
// made without waiting a minute.
var testEnv = map[string]string{
	"OWLMETRY_HEARTBEAT_INTERVAL": "200ms",
	"OWLMETRY_STALE_AFTER":        "2s",
	"OWLMETRY_PROGRESS_INTERVAL":  "50ms",
}

type bundle struct {
	tdb   *pgtest.DB
	store *localjobs.Store
}

// setup gives a test its own migrated database and a store on a pool of its own (the
// store closes it), with the given handlers.
func setup(t *testing.T, handlers localjobs.Handlers) bundle {
	t.Helper()
	return setupEnv(t, handlers, nil)
}

// setupEnv is setup with extra environment variables.
func setupEnv(t *testing.T, handlers localjobs.Handlers, extra map[string]string) bundle {
	t.Helper()
	tdb := pgtest.New(t)
	pool, err := db.OpenPool(context.Background(), tdb.URL, db.PoolOptions{ApplicationName: "owlmetry-cli", MaxConns: 4})
	require.NoError(t, err)
	env := map[string]string{}
	for k, v := range testEnv {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	st, err := localjobs.New(pool, localjobs.Config{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Handlers: func(localjobs.HandlerDeps) (localjobs.Handlers, error) {
			if handlers == nil {
				return localjobs.Handlers{}, nil
			}
			return handlers, nil
		},
		Actor: actor,
	})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return bundle{tdb: tdb, store: st}
}

func ok() engine.Handler {
	return engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
		run.Progress.Report(1, 1, "done")
		return engine.Result{"created": 0}, nil
	})
}

// seedProject inserts a team and a project and returns their ids.
func seedProject(t *testing.T, b bundle, slug string) (teamID, projectID string) {
	t.Helper()
	ctx := context.Background()
	team, err := b.store.CreateTeam(ctx, "Team "+slug, slug)
	require.NoError(t, err)
	p, err := b.store.CreateProject(ctx, localjobs.NewProject{Team: team.ID, Name: "Project " + slug, Slug: "p-" + slug})
	require.NoError(t, err)
	return team.ID, p.ID
}

// insertRun writes a fixture row straight into job_runs, for states the engine only
// reaches over time (an expired lease, a run finished long ago).
func insertRun(t *testing.T, b bundle, jobType, status string, mod string, args ...any) string {
	t.Helper()
	var id string
	q := `INSERT INTO job_runs (job_type, status, triggered_by, started_at, completed_at, heartbeat_at, owner_node, owner_instance)
		VALUES ($1, $2::text::job_status, 'schedule',
		        CASE WHEN $2::text <> 'pending' THEN now() END,
		        CASE WHEN $2::text IN ('completed', 'failed', 'cancelled') THEN now() END,
		        CASE WHEN $2::text = 'running' THEN now() END,
		        CASE WHEN $2::text = 'running' THEN 'gone-node' END,
		        CASE WHEN $2::text = 'running' THEN gen_random_uuid() END)
		RETURNING id`
	require.NoError(t, b.tdb.Pool.QueryRow(context.Background(), q, jobType, status).Scan(&id))
	if mod != "" {
		_, err := b.tdb.Pool.Exec(context.Background(), `UPDATE job_runs SET `+mod+` WHERE id = $1`, append([]any{id}, args...)...)
		require.NoError(t, err)
	}
	return id
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
