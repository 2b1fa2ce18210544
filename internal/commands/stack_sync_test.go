package commands_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

type syncDoc struct {
	Syncing            *bool            `json:"syncing"`
	Total              *int64           `json:"total"`
	Synced             *int64           `json:"synced"`
	Attached           bool             `json:"attached"`
	JobRunID           *string          `json:"job_run_id"`
	RevenueCatJobRunID *string          `json:"revenuecat_job_run_id"`
	AppleAdsJobRunID   *string          `json:"apple_ads_job_run_id"`
	JobRuns            []apitype.JobRun `json:"job_runs"`
}

func TestRatingsSync(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppStoreRatingsSync))
	project := stack.SeedProject(t, owltest.WithAppleApps(2))
	env := stack.Env().With("OWLMETRY_PROJECT_ID", project.ID)

	res := owltest.RunTTY(t, env, "ratings", "sync", "--no-color")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Regexp(t, `^Started app_store_ratings_sync for 2 app\(s\): run [0-9a-f-]{36}\n$`, res.Stdout.String())
	id := strings.TrimSpace(res.Stdout.String()[strings.LastIndex(res.Stdout.String(), " ")+1:])

	res = owltest.Run(t, env, "ratings", "sync")
	require.Equal(t, cmdutil.ExitConflict, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "existing run: "+id)

	r := owltest.Start(t, env, owltest.StartOptions{}, "ratings", "sync", "--attach", "--wait", "--progress", "none")
	stack.Blocker.Started(t, id).Progress.Report(1, 2, "app 1 of 2")
	// With no progress display, the attached note is the sign that the command waits.
	r.Stderr.WaitFor(t, "attached to existing run "+id[:8])
	stack.Blocker.Release(id)
	end := r.Wait(t)
	require.Equal(t, cmdutil.ExitOK, end.ExitCode)
	require.Contains(t, end.Stdout.String(), "id\t"+id+"\n")
	require.Contains(t, end.Stderr.String(), "app_store_ratings_sync "+id+" completed in")

	res = owltest.Run(t, env, "ratings", "sync", "--attach", "--format", "json")
	var doc syncDoc
	oneJSON(t, res, &doc)
	require.True(t, *doc.Syncing)
	require.Equal(t, int64(2), *doc.Total)
	second := *doc.JobRunID
	require.NotEqual(t, id, second, "the first run ended; this is a new one")
	stack.Blocker.Release(second)
	require.Equal(t, cmdutil.ExitOK, owltest.Run(t, env, "jobs", "wait", second).ExitCode)

	// --wait --format json: the server's body plus the final runs.
	r = owltest.Start(t, env, owltest.StartOptions{}, "ratings", "sync", "--wait", "--format", "json")
	third := waitRunOf(t, stack, project.ID, jobtype.AppStoreRatingsSync, id, second)
	stack.Blocker.Release(third)
	res = r.Wait(t)
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	oneJSON(t, res, &doc)
	require.Equal(t, third, doc.JobRuns[0].ID)
	require.Len(t, doc.JobRuns, 1)
	require.Equal(t, apitype.StatusCompleted, doc.JobRuns[0].Status)
	require.Empty(t, res.Stderr.String(), "no progress or notes with --format json")

	empty := stack.SeedProject(t)
	res = owltest.Run(t, env, "ratings", "sync", "--project-id", empty.ID, "--wait")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	require.Equal(t, "Nothing to sync: the project has no Apple apps with a bundle id\n", res.Stderr.String())
	res = owltest.Run(t, env, "ratings", "sync", "--project-id", empty.ID, "--wait", "--format", "json")
	oneJSON(t, res, &doc)
	require.False(t, *doc.Syncing)
	require.NotNil(t, doc.JobRuns)
	require.Empty(t, doc.JobRuns, "job_runs is [] when nothing was started")
}

func TestIntegrationsSync(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppStoreConnectReviewsSync, jobtype.RevenueCatSync))
	project := stack.SeedProject(t, owltest.WithAppleApps(1), owltest.WithIntegration("app-store-connect"), owltest.WithIntegration("revenuecat"))
	env := stack.Env().With("OWLMETRY_PROJECT_ID", project.ID)

	r := owltest.Start(t, env, owltest.StartOptions{}, "integrations", "sync", "app-store-connect", "--wait", "--format", "json")
	id := waitRunOf(t, stack, project.ID, jobtype.AppStoreConnectReviewsSync)
	stack.Blocker.Started(t, id)
	stack.Blocker.Finish(id, nil, errors.New("App Store Connect request failed"))
	res := r.Wait(t)
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	var doc syncDoc
	oneJSON(t, res, &doc)
	require.Equal(t, apitype.StatusFailed, doc.JobRuns[0].Status)
	obj := errorObject(t, res)
	require.Equal(t, "job_failed", obj["code"])
	require.Equal(t, []any{id}, obj["run_ids"])

	// RevenueCat with no identified users: owlmetry's zero answer.
	res = owltest.Run(t, env, "integrations", "sync", "revenuecat", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	oneJSON(t, res, &doc)
	require.False(t, *doc.Syncing)
	require.Equal(t, int64(0), *doc.Synced)

	res = owltest.Run(t, env, "integrations", "sync", "apple-search-ads")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Equal(t, "error: Apple Search Ads integration not found or disabled (HTTP 404)\nhint: check owlmetry integrations list\n", res.Stderr.String())
}

func TestAdsSync(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.RevenueCatSync, jobtype.AppleAdsSync))

	t.Run("two runs, the worse outcome wins", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t, owltest.WithIntegration("revenuecat"), owltest.WithIntegration("apple-search-ads"))
		r := owltest.Start(t, stack.Env(), owltest.StartOptions{}, "ads", "sync", "--project-id", project.ID, "--wait", "--format", "json")
		var rc, aa string
		rc = waitRunOf(t, stack, project.ID, jobtype.RevenueCatSync)
		aa = waitRunOf(t, stack, project.ID, jobtype.AppleAdsSync)
		stack.Blocker.Started(t, rc)
		stack.Blocker.Started(t, aa)
		stack.Blocker.Release(rc)
		stack.Blocker.Finish(aa, nil, errors.New("Apple Search Ads request failed"))
		res := r.Wait(t)
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		var doc syncDoc
		oneJSON(t, res, &doc)
		require.Equal(t, rc, *doc.RevenueCatJobRunID)
		require.Equal(t, aa, *doc.AppleAdsJobRunID)
		require.Len(t, doc.JobRuns, 2)
		require.Equal(t, rc, doc.JobRuns[0].ID, "run-set order: RevenueCat first")
		require.Equal(t, apitype.StatusCompleted, doc.JobRuns[0].Status)
		require.Equal(t, apitype.StatusFailed, doc.JobRuns[1].Status)
	})

	t.Run("attach adopts one and starts the other", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t, owltest.WithIntegration("revenuecat"), owltest.WithIntegration("apple-search-ads"), owltest.WithAppUsers(3))
		env := stack.Env().With("OWLMETRY_PROJECT_ID", project.ID)
		res := owltest.Run(t, env, "integrations", "sync", "revenuecat")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		rc, _, _ := strings.Cut(res.Stdout.String(), "\t")

		res = owltest.Run(t, env, "ads", "sync")
		require.Equal(t, cmdutil.ExitConflict, res.ExitCode, "a 409 starts nothing")
		require.Contains(t, res.Stderr.String(), "existing run: "+rc)

		res = owltest.Run(t, env, "ads", "sync", "--attach", "--format", "json")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		var doc syncDoc
		oneJSON(t, res, &doc)
		require.True(t, doc.Attached)
		require.Equal(t, rc, *doc.RevenueCatJobRunID)
		require.NotNil(t, doc.AppleAdsJobRunID, "the other sync was started through its own route")
		stack.Blocker.Release(rc)
		stack.Blocker.Release(*doc.AppleAdsJobRunID)
		require.Equal(t, cmdutil.ExitOK, owltest.Run(t, env, "jobs", "wait", rc, *doc.AppleAdsJobRunID).ExitCode)

		res = owltest.RunTTY(t, env, "ads", "sync", "--no-color")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		require.Regexp(t, `^Started ads sync for project `+project.ID[:8]+`:\n  revenuecat_sync +[0-9a-f-]{36}\n  apple_ads_sync +[0-9a-f-]{36}\n$`, res.Stdout.String())
		for _, line := range strings.Split(strings.TrimSpace(res.Stdout.String()), "\n")[1:] {
			f := strings.Fields(line)
			stack.Blocker.Release(f[1])
		}
	})

	t.Run("nothing to sync", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		res := owltest.Run(t, stack.Env(), "ads", "sync", "--project-id", project.ID, "--wait", "--format", "json")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		var doc syncDoc
		oneJSON(t, res, &doc)
		require.False(t, *doc.Syncing)
		require.Nil(t, doc.RevenueCatJobRunID)
		require.Empty(t, doc.JobRuns)
	})
}

// waitRunOf returns the id of the project's newest run of a job type, other than the
// runs in not, once it exists.
func waitRunOf(t *testing.T, stack *owltest.Stack, projectID, jobType string, not ...string) string {
	t.Helper()
	sub := stack.Engine.Subscribe("")
	defer sub.Close()
	deadline := time.After(30 * time.Second)
	if not == nil {
		not = []string{}
	}
	for {
		var id string
		err := stack.DB.Pool.QueryRow(t.Context(), `SELECT id FROM job_runs WHERE project_id = $1 AND job_type = $2 AND NOT (id::text = ANY($3))
			ORDER BY created_at DESC LIMIT 1`, projectID, jobType, not).Scan(&id)
		if err == nil {
			return id
		}
		select {
		case <-sub.C:
		case <-deadline:
			t.Fatalf("no %s run for project %s", jobType, projectID)
		}
	}
}

func TestLoginWhoamiAndProfileDefaults(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppStoreRatingsSync))
	env := stack.Env()
	cfgPath := env["OWLMETRY_CONFIG"]
	base := owltest.Env{"HOME": env["HOME"], "OWLMETRY_CONFIG": cfgPath}

	res := owltest.Run(t, base, "auth", "login", "--api-key", "owl_client_"+strings.Repeat("a", 48), "--endpoint", stack.URL)
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "only agent keys (owl_agent_…) can be used by the CLI")

	res = owltest.Run(t, base, "auth", "login", "--api-key", "owl_agent_"+strings.Repeat("0", 48), "--endpoint", stack.URL)
	require.Equal(t, cmdutil.ExitAuth, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "error: the server rejected the key\n")

	res = owltest.RunWithStdin(t, base, stack.Key.Token+"\n", "auth", "login", "--with-api-key", "--endpoint", stack.URL+"/", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var login struct {
		Team        apitype.Team `json:"team"`
		Endpoint    string       `json:"endpoint"`
		Permissions []string     `json:"permissions"`
		ConfigPath  string       `json:"config_path"`
	}
	oneJSON(t, res, &login)
	require.Equal(t, stack.Team.ID, login.Team.ID)
	require.Equal(t, stack.URL, login.Endpoint)
	require.Equal(t, cfgPath, login.ConfigPath)
	require.NotContains(t, res.Stdout.String(), stack.Key.Token, "the key is never printed")
	fi, err := os.Stat(cfgPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	l, err := config.Load(cfgPath)
	require.NoError(t, err)
	require.Equal(t, stack.Team.ID, l.ActiveTeam)
	require.Equal(t, stack.Key.Token, l.Teams[stack.Team.ID].APIKey)
	require.Equal(t, stack.URL, l.Teams[stack.Team.ID].Endpoint)

	// From now on the profile supplies key, endpoint and team; a default project saves
	// repeating the project id.
	project := stack.SeedProject(t, owltest.WithAppleApps(1))
	res = owltest.Run(t, base, "config", "set", "default_project", project.ID)
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	res = owltest.Run(t, base, "ratings", "sync")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	id, _, _ := strings.Cut(res.Stdout.String(), "\t")
	stack.Blocker.Release(id)
	res = owltest.Run(t, base, "jobs", "list", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())

	res = owltest.Run(t, base, "whoami", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var who struct {
		Type        string       `json:"type"`
		KeyType     string       `json:"key_type"`
		Team        apitype.Team `json:"team"`
		Permissions []string     `json:"permissions"`
		Endpoint    string       `json:"endpoint"`
		KeySource   string       `json:"key_source"`
		Profiles    []struct {
			TeamID string `json:"team_id"`
			Active bool   `json:"active"`
		} `json:"configured_profiles"`
	}
	oneJSON(t, res, &who)
	require.Equal(t, "api_key", who.Type)
	require.Equal(t, "agent", who.KeyType)
	require.Equal(t, stack.Team.ID, who.Team.ID)
	require.Equal(t, "profile "+who.Team.Slug, who.KeySource)
	require.Len(t, who.Profiles, 1)
	require.True(t, who.Profiles[0].Active)

	res = owltest.RunTTY(t, base, "whoami", "--no-color")
	require.Contains(t, res.Stdout.String(), stack.Team.Name+" ("+stack.Team.Slug+") at "+stack.URL+"\n")
	require.Contains(t, res.Stdout.String(), "Key          agent key from profile "+stack.Team.Slug+"\n")
	require.Contains(t, res.Stdout.String(), "\nProfiles\n● ")

	// A key from the environment borrows nothing from the profile: no default project.
	other := stack.SeedKey(t, stack.Team, []string{"jobs:read", "jobs:write"})
	res = owltest.Run(t, base.With("OWLMETRY_API_KEY", other.Token, "OWLMETRY_ENDPOINT", stack.URL), "ratings", "sync")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), cmdutil.NoProjectMessage)
	res = owltest.Run(t, base.With("OWLMETRY_API_KEY", other.Token, "OWLMETRY_ENDPOINT", stack.URL), "whoami", "--format", "json")
	oneJSON(t, res, &who)
	require.Equal(t, "OWLMETRY_API_KEY", who.KeySource)

	res = owltest.Run(t, base, "auth", "logout", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	res = owltest.Run(t, base, "jobs", "list")
	require.Equal(t, cmdutil.ExitAuth, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "error: not logged in\nhint: owlmetry auth login, or set OWLMETRY_API_KEY\n")
}

func TestIntegrationsList(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)
	project := stack.SeedProject(t)
	env := stack.Env().With("OWLMETRY_PROJECT_ID", project.ID)

	res := owltest.Run(t, env, "integrations", "list", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.JSONEq(t, "[]", res.Stdout.String(), "the bare array, empty")

	stack.SeedIntegration(t, project, "revenuecat", false)
	res = owltest.Run(t, env, "integrations", "list", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var list []apitype.Integration
	oneJSON(t, res, &list)
	require.Len(t, list, 1)
	require.Equal(t, "revenuecat", list[0].Provider)
	require.Equal(t, []string{"api_key"}, list[0].MissingFields)

	res = owltest.Run(t, env, "integrations", "list")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Contains(t, res.Stdout.String(), "revenuecat")

	// Another team's project is not found.
	other := stack.SeedProject(t, owltest.InTeam(stack.SeedTeam(t)))
	res = owltest.Run(t, stack.Env(), "integrations", "list", "--project-id", other.ID)
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "Project not found (HTTP 404)")
}
