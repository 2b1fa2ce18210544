package owltest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Shutdown()
	if code == 0 {
		// Every stack stops its server, engine and background writers with its test.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func request(t *testing.T, s *owltest.Stack, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, s.URL+path, rd)
	require.NoError(t, err)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	return resp.StatusCode, doc
}

// waitEnd waits until a run is terminal and returns it.
func waitEnd(t *testing.T, s *owltest.Stack, id string) engine.RunRecord {
	t.Helper()
	sub := s.Engine.Subscribe(id)
	defer sub.Close()
	deadline := time.After(30 * time.Second)
	for {
		rec, err := s.Engine.Get(context.Background(), id)
		require.NoError(t, err)
		if rec.Status.Terminal() {
			return rec
		}
		select {
		case <-sub.C:
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatalf("run %s never ended", id)
		}
	}
}

func TestStack(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync, jobtype.RevenueCatUserBackfill))

	t.Run("default team and key", func(t *testing.T) {
		t.Parallel()
		code, doc := request(t, stack, "GET", "/v1/auth/whoami", stack.Key.Token, "")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, stack.Team.ID, doc["team"].(map[string]any)["id"])
		require.Equal(t, stack.Team.ID, stack.Key.TeamID)
	})

	t.Run("users carry working tokens", func(t *testing.T) {
		t.Parallel()
		u := stack.SeedUser(t, stack.Team, owltest.RoleAdmin)
		code, doc := request(t, stack, "GET", "/v1/auth/whoami", u.Token, "")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, u.Email, doc["email"])
		expired := stack.SignJWT(t, jwt.MapClaims{"sub": u.ID, "exp": time.Now().Add(-time.Hour).Unix()})
		code, _ = request(t, stack, "GET", "/v1/auth/whoami", expired, "")
		require.Equal(t, http.StatusUnauthorized, code)
	})

	t.Run("project options", func(t *testing.T) {
		t.Parallel()
		p := stack.SeedProject(t, owltest.WithAppleApps(3), owltest.WithIntegration("revenuecat"), owltest.WithAppUsers(2))
		require.Equal(t, stack.Team.ID, p.TeamID)
		code, doc := request(t, stack, "POST", "/v1/projects/"+p.ID+"/ratings/sync", stack.Key.Token, "")
		require.Equal(t, http.StatusNotImplemented, code, "no handler registered for ratings: %v", doc)
		var apps, users, integrations int
		require.NoError(t, stack.DB.Pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM apps WHERE project_id = $1 AND bundle_id <> '' AND apple_app_store_id IS NOT NULL),
			(SELECT count(*) FROM app_users WHERE project_id = $1 AND NOT is_anonymous),
			(SELECT count(*) FROM project_integrations WHERE project_id = $1 AND enabled)`, p.ID).Scan(&apps, &users, &integrations))
		require.Equal(t, []int{3, 2, 1}, []int{apps, users, integrations})
		other := stack.SeedTeam(t)
		require.Equal(t, other.ID, stack.SeedProject(t, owltest.InTeam(other)).TeamID)
	})

	t.Run("blocker", func(t *testing.T) {
		t.Parallel()
		trigger := func(jobType string) string {
			p := stack.SeedProject(t)
			code, doc := request(t, stack, "POST", "/v1/teams/"+stack.Team.ID+"/jobs/trigger", stack.Key.Token,
				fmt.Sprintf(`{"job_type":%q,"project_id":%q}`, jobType, p.ID))
			require.Equal(t, http.StatusCreated, code, "%v", doc)
			return doc["job_run"].(map[string]any)["id"].(string)
		}

		released := trigger(jobtype.AppleAdsSync)
		run := stack.Blocker.Started(t, released)
		require.Equal(t, released, run.ID)
		run.Progress.Report(3, 4, "three")
		stack.Blocker.Release(released)
		rec := waitEnd(t, stack, released)
		require.Equal(t, apitype.StatusCompleted, rec.Status)
		require.Equal(t, map[string]any{"released": true}, rec.Result)
		require.Equal(t, &apitype.Progress{Processed: 4, Total: 4, Message: "three"}, rec.Progress)

		failed := trigger(jobtype.RevenueCatUserBackfill)
		stack.Blocker.Finish(failed, nil, errors.New("upstream said no")) // before it starts
		rec = waitEnd(t, stack, failed)
		require.Equal(t, apitype.StatusFailed, rec.Status)
		require.Equal(t, "upstream said no", *rec.Error)

		cancelled := trigger(jobtype.AppleAdsSync)
		stack.Blocker.Started(t, cancelled)
		code, _ := request(t, stack, "POST", "/v1/jobs/"+cancelled+"/cancel", stack.Key.Token, "")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, apitype.StatusCancelled, waitEnd(t, stack, cancelled).Status)
	})

	t.Run("CLI runs use the stack's environment", func(t *testing.T) {
		t.Parallel()
		env := stack.Env()
		for _, k := range []string{"OWLMETRY_ENDPOINT", "OWLMETRY_API_KEY", "OWLMETRY_TEAM_ID", "OWLMETRY_DATABASE_URL",
			"OWLMETRY_CONFIG", "HOME", "JWT_SECRET", "OWLMETRY_SECRET_KEY"} {
			require.NotEmpty(t, env[k], k)
		}
		res := owltest.Run(t, env, "migrate", "--status", "--format", "json")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		var doc map[string]any
		require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &doc))
		require.Equal(t, doc["latest_version"], doc["current_version"])

		res = owltest.Run(t, env.With("OWLMETRY_DATABASE_URL", "not a url"), "migrate", "--status")
		require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
		require.Equal(t, "", env.With()["nothing"], "With copies")

		res = owltest.RunTTY(t, env, "version")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	})
}

func TestStackWithJobs(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithJobs())
	for _, jt := range []string{jobtype.PartitionCreation, jobtype.RetentionCleanup} {
		require.True(t, stack.Engine.HasHandler(jt), jt)
	}
	rec, err := stack.Engine.Enqueue(context.Background(), engine.EnqueueRequest{JobType: jobtype.PartitionCreation,
		Entry: jobtype.EntryCLI, TriggeredBy: "manual:cli:test@host"})
	require.NoError(t, err)
	require.Equal(t, apitype.StatusCompleted, waitEnd(t, stack, rec.ID).Status)
}

func TestStackOptions(t *testing.T) {
	t.Parallel()
	called := make(chan string, 1)
	stack := owltest.StartStack(t,
		owltest.WithHandler(jobtype.RevenueCatSync, engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			called <- run.ID
			return engine.Result{"synced": 1}, nil
		})),
		owltest.WithoutEventStream(),
		owltest.WithEngineSettings(func(s *engine.Settings) { s.Workers = 3 }))
	require.Equal(t, 3, stack.Engine.Settings().Workers)
	p := stack.SeedProject(t, owltest.WithIntegration("revenuecat"), owltest.WithAppUsers(1))
	code, doc := request(t, stack, "POST", "/v1/projects/"+p.ID+"/integrations/revenuecat/sync", stack.Key.Token, "")
	require.Equal(t, http.StatusOK, code, "%v", doc)
	id := doc["job_run_id"].(string)
	require.Equal(t, id, <-called)
	require.Equal(t, apitype.StatusCompleted, waitEnd(t, stack, id).Status)
	code, _ = request(t, stack, "GET", "/v1/jobs/"+id+"/events", stack.Key.Token, "")
	require.Equal(t, http.StatusNotFound, code)
}
