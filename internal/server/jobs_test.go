package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

func triggerPath(teamID string) string { return "/v1/teams/" + teamID + "/jobs/trigger" }

func TestTrigger(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.RevenueCatUserBackfill, jobtype.AppleAdsSync))
	team := stack.Team
	key := stack.Key

	t.Run("created with key", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		body := fmt.Sprintf(`{"job_type":"revenuecat_user_backfill","project_id":%q,"params":{"starting_after":"cust_9"},"notify":true,"extra":1}`,
			upper(project.ID))
		r := post(t, stack, triggerPath(upper(team.ID)), key.Token, body)
		require.Equal(t, http.StatusCreated, r.Status, "body: %s", r.Body)
		doc := r.JSON(t)
		require.Len(t, doc, 1)
		run := doc["job_run"].(map[string]any)
		requireJobRunShape(t, run)
		require.Equal(t, "revenuecat_user_backfill", run["job_type"])
		require.Equal(t, "pending", run["status"])
		require.Equal(t, team.ID, run["team_id"])
		require.Equal(t, project.ID, run["project_id"])
		require.Equal(t, "manual:api_key:"+key.ID, run["triggered_by"])
		require.Equal(t, map[string]any{"project_id": project.ID, "starting_after": "cust_9"}, run["params"])
		require.Nil(t, run["progress"])
		require.Nil(t, run["result"])
		require.Nil(t, run["error"])
		require.Equal(t, true, run["notify"])
		require.Nil(t, run["started_at"])
		require.Nil(t, run["completed_at"])
		require.Nil(t, run["cancel_requested_at"])

		id := run["id"].(string)
		audit := auditRows(t, stack, id, "create")
		require.Len(t, audit, 1)
		require.Equal(t, map[string]any{"actor_type": "api_key", "actor_id": key.ID, "team_id": team.ID,
			"metadata": map[string]any{"job_type": "revenuecat_user_backfill", "project_id": project.ID}}, audit[0])

		// The run executes, and is visible through GET.
		stack.Blocker.Started(t, id)
		got := get(t, stack, "/v1/jobs/"+id, key.Token)
		require.Equal(t, http.StatusOK, got.Status)
		requireJobRunShape(t, got.JSON(t)["job_run"].(map[string]any))
		stack.Blocker.Release(id)
	})

	t.Run("created by user", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		owner := stack.SeedUser(t, team, owltest.RoleOwner)
		r := post(t, stack, triggerPath(team.ID), owner.Token, fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q,"params":null,"notify":null}`, project.ID))
		require.Equal(t, http.StatusCreated, r.Status, "body: %s", r.Body)
		run := r.JSON(t)["job_run"].(map[string]any)
		require.Equal(t, "manual:user:"+owner.ID, run["triggered_by"])
		require.Equal(t, false, run["notify"])
		require.Equal(t, map[string]any{"project_id": project.ID}, run["params"])
		audit := auditRows(t, stack, run["id"].(string), "create")
		require.Len(t, audit, 1)
		require.Equal(t, "user", audit[0]["actor_type"])
		require.Equal(t, owner.ID, audit[0]["actor_id"])
		stack.Blocker.Release(run["id"].(string))
	})

	t.Run("conflict", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		body := fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, project.ID)
		first := post(t, stack, triggerPath(team.ID), key.Token, body)
		require.Equal(t, http.StatusCreated, first.Status)
		id := first.JSON(t)["job_run"].(map[string]any)["id"].(string)
		second := post(t, stack, triggerPath(team.ID), key.Token, body)
		require.Equal(t, http.StatusConflict, second.Status)
		require.Equal(t, map[string]any{"error": "apple_ads_sync is already running or pending for this project",
			"existing_run_id": id}, second.JSON(t))
		// A params.project_id equal to the body's changes nothing.
		third := post(t, stack, triggerPath(team.ID), key.Token,
			fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q,"params":{"project_id":%q}}`, project.ID, upper(project.ID)))
		require.Equal(t, http.StatusConflict, third.Status)
		// Another project does not conflict.
		other := post(t, stack, triggerPath(team.ID), key.Token, fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, stack.SeedProject(t).ID))
		require.Equal(t, http.StatusCreated, other.Status)
		stack.Blocker.Release(id)
		stack.Blocker.Release(other.JSON(t)["job_run"].(map[string]any)["id"].(string))
	})

	t.Run("validation", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		pid := project.ID
		types := strings.Join(jobtype.Names(), ", ")
		cases := []struct{ body, msg string }{
			{`{`, "Invalid JSON body"},
			{`{"job_type":"apple_ads_sync"} {}`, "Invalid JSON body"},
			{`{"job_type":"apple_ads_sync",}`, "Invalid JSON body"},
			{`nul`, "Invalid JSON body"},
			{`[]`, "Request body must be a JSON object"},
			{`null`, "Request body must be a JSON object"},
			{`"x"`, "Request body must be a JSON object"},
			{` `, "Request body must be a JSON object"},
			{`{}`, "job_type is required"},
			{`{"job_type":null}`, "job_type is required"},
			{`{"job_type":7}`, "job_type must be a string"},
			{`{"job_type":["apple_ads_sync"]}`, "job_type must be a string"},
			{`{"job_type":"nope"}`, `Invalid job_type "nope". Valid types: ` + types},
			{`{"job_type":"Apple_Ads_Sync"}`, `Invalid job_type "Apple_Ads_Sync". Valid types: ` + types},
			{`{"job_type":"retention_cleanup","project_id":"` + pid + `"}`, `"retention_cleanup" is a system job and cannot be triggered through the API`},
			{`{"job_type":"app_store_ratings_sync"}`, `"app_store_ratings_sync" is a system job and cannot be triggered through the API`},
			{`{"job_type":"apple_ads_sync"}`, `project_id is required for project-scoped job "apple_ads_sync"`},
			{`{"job_type":"apple_ads_sync","project_id":null}`, `project_id is required for project-scoped job "apple_ads_sync"`},
			{`{"job_type":"apple_ads_sync","project_id":"nope"}`, "project_id must be a UUID"},
			{`{"job_type":"apple_ads_sync","project_id":42}`, "project_id must be a UUID"},
			{`{"job_type":"apple_ads_sync","project_id":"{` + pid + `}"}`, "project_id must be a UUID"},
			{`{"job_type":"apple_ads_sync","project_id":"` + pid + `","params":[]}`, "params must be a JSON object"},
			{`{"job_type":"apple_ads_sync","project_id":"` + pid + `","params":"x"}`, "params must be a JSON object"},
			{`{"job_type":"apple_ads_sync","project_id":"` + pid + `","params":{"starting_after":"x"}}`, `Unknown param "starting_after" for job type "apple_ads_sync" (allowed: project_id)`},
			{`{"job_type":"revenuecat_user_backfill","project_id":"` + pid + `","params":{"app_id":"x"}}`, `Unknown param "app_id" for job type "revenuecat_user_backfill" (allowed: project_id, starting_after)`},
			{`{"job_type":"revenuecat_user_backfill","project_id":"` + pid + `","params":{"starting_after":""}}`, `Invalid param "starting_after": must be 1-255 characters`},
			{`{"job_type":"revenuecat_user_backfill","project_id":"` + pid + `","params":{"starting_after":12}}`, `Invalid param "starting_after": must be a string`},
			{`{"job_type":"revenuecat_user_backfill","project_id":"` + pid + `","params":{"starting_after":"` + strings.Repeat("x", 256) + `"}}`, `Invalid param "starting_after": must be 1-255 characters`},
			{`{"job_type":"apple_ads_sync","project_id":"` + pid + `","params":{"project_id":"nope"}}`, `Invalid param "project_id": must be a UUID`},
			{`{"job_type":"revenuecat_user_backfill","project_id":"` + pid + `","params":{"starting_after":"a\u0000b"}}`, `Invalid param "starting_after": must not contain NUL characters`},
			{`{"job_type":"revenuecat_user_backfill","project_id":"` + pid + `","params":{"x\u0000":"a"}}`, `Unknown param "x\x00" for job type "revenuecat_user_backfill" (allowed: project_id, starting_after)`},
			{`{"job_type":"apple_ads_sync","project_id":"` + pid + `","params":{"project_id":"00000000-0000-4000-8000-000000000000"}}`, "params.project_id must match project_id"},
			{`{"job_type":"apple_ads_sync","project_id":"` + pid + `","notify":"yes"}`, "notify must be a boolean"},
			{`{"job_type":"apple_ads_sync","project_id":"` + pid + `","notify":1}`, "notify must be a boolean"},
		}
		for _, c := range cases {
			r := post(t, stack, triggerPath(team.ID), key.Token, c.body)
			requireError(t, r, http.StatusBadRequest, c.msg)
		}
		var n int
		require.NoError(t, stack.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM job_runs WHERE project_id = $1`, pid).Scan(&n))
		require.Zero(t, n, "no refused request created a run")
	})

	t.Run("project must be visible and in the path team", func(t *testing.T) {
		t.Parallel()
		other := stack.SeedTeam(t)
		foreign := stack.SeedProject(t, owltest.InTeam(other))
		deleted := stack.SeedProject(t)
		stack.DeleteProject(t, deleted)
		for _, pid := range []string{foreign.ID, deleted.ID, "00000000-0000-4000-8000-000000000000"} {
			r := post(t, stack, triggerPath(team.ID), key.Token, fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, pid))
			requireError(t, r, http.StatusNotFound, "Project not found")
		}
		// A user in both teams still cannot run a project of one team under the other.
		both := stack.SeedUser(t, team, owltest.RoleAdmin)
		stack.AddMember(t, both, other, owltest.RoleAdmin)
		r := post(t, stack, triggerPath(team.ID), both.Token, fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, foreign.ID))
		requireError(t, r, http.StatusNotFound, "Project not found")
	})

	t.Run("bodies", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		valid := fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, project.ID)
		big := `{"job_type":"apple_ads_sync","pad":"` + strings.Repeat("x", 64<<10) + `"}`
		requireError(t, post(t, stack, triggerPath(team.ID), key.Token, big), http.StatusRequestEntityTooLarge, "Request body too large")
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/jsonp", ";;"} {
			r := call(t, stack, req{method: "POST", path: triggerPath(team.ID), token: key.Token, body: valid, contentType: ct})
			requireError(t, r, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		}
		r := call(t, stack, req{method: "POST", path: triggerPath(team.ID), token: key.Token})
		requireError(t, r, http.StatusBadRequest, "Request body must be a JSON object")
		// Exactly 64 KiB is fine; parameters of the media type are allowed.
		pad := 64<<10 - len(valid) + 1 - len(`,"pad":""`)
		exact := valid[:len(valid)-1] + `,"pad":"` + strings.Repeat("x", pad-1) + `"}`
		require.Len(t, exact, 64<<10)
		r = call(t, stack, req{method: "POST", path: triggerPath(team.ID), token: key.Token, body: exact, contentType: "Application/JSON; charset=utf-8"})
		require.Equal(t, http.StatusCreated, r.Status, "body: %s", r.Body)
		stack.Blocker.Release(r.JSON(t)["job_run"].(map[string]any)["id"].(string))
	})

	t.Run("type without a handler", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		r := post(t, stack, triggerPath(team.ID), key.Token, fmt.Sprintf(`{"job_type":"revenuecat_sync","project_id":%q}`, project.ID))
		requireError(t, r, http.StatusNotImplemented, "revenuecat_sync has no handler in this build")
	})
}

// TestTriggerConcurrent sends 200 identical triggers at once: the database lets exactly
// one through and every other request names that run.
func TestTriggerConcurrent(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync))
	project := stack.SeedProject(t)
	body := fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, project.ID)

	const n = 200
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		resps = make([]response, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resps[i] = post(t, stack, triggerPath(stack.Team.ID), stack.Key.Token, body)
		}()
	}
	close(start)
	wg.Wait()

	var created string
	conflicts := map[string]int{}
	for _, r := range resps {
		switch r.Status {
		case http.StatusCreated:
			require.Empty(t, created, "a second run was created")
			created = r.JSON(t)["job_run"].(map[string]any)["id"].(string)
		case http.StatusConflict:
			conflicts[r.JSON(t)["existing_run_id"].(string)]++
		default:
			t.Fatalf("unexpected answer %d: %s", r.Status, r.Body)
		}
	}
	require.NotEmpty(t, created)
	require.Equal(t, map[string]int{created: n - 1}, conflicts)
	var runs int
	require.NoError(t, stack.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM job_runs WHERE project_id = $1`, project.ID).Scan(&runs))
	require.Equal(t, 1, runs)
	require.Len(t, auditRows(t, stack, created, "create"), 1)
	stack.Blocker.Release(created)
}

func TestGetJob(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)
	team := stack.Team
	project := stack.SeedProject(t)
	other := stack.SeedTeam(t)

	id := insertRun(t, stack, seedRun{teamID: &team.ID, projectID: &project.ID, status: "completed"})
	r := get(t, stack, "/v1/jobs/"+upper(id), stack.Key.Token)
	require.Equal(t, http.StatusOK, r.Status)
	doc := r.JSON(t)
	require.Len(t, doc, 1)
	run := doc["job_run"].(map[string]any)
	requireJobRunShape(t, run)
	require.Equal(t, id, run["id"])
	require.Equal(t, "completed", run["status"])
	require.Equal(t, map[string]any{"ok": true}, run["result"])
	require.NotNil(t, run["started_at"])
	require.NotNil(t, run["completed_at"])

	// Timestamps carry exactly three fractional digits, also for whole seconds.
	var raw struct {
		JobRun json.RawMessage `json:"job_run"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &raw))
	require.NotContains(t, string(raw.JobRun), "+00:00")

	for _, invisible := range []string{
		insertRun(t, stack, seedRun{teamID: &other.ID}),                         // another team
		insertRun(t, stack, seedRun{jobType: "retention_cleanup"}),              // a system run
		insertRun(t, stack, seedRun{projectID: &project.ID, status: "running"}), // a system run of this team's project
		"00000000-0000-4000-8000-000000000000",                                  // no such run
	} {
		requireError(t, get(t, stack, "/v1/jobs/"+invisible, stack.Key.Token), http.StatusNotFound, "Job run not found")
	}
	for _, bad := range []string{"nope", "0b6f3a5247a14c549b8f5b1f0f9a7c01", "{" + id + "}", id + "0", "urn:uuid:" + id} {
		requireError(t, get(t, stack, "/v1/jobs/"+bad, stack.Key.Token), http.StatusBadRequest, "Invalid runId: must be a UUID")
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	held := make(chan struct{})
	stubborn := engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
		<-held // finishes its work whatever happens
		return engine.Result{"done": true}, nil
	})
	stack := owltest.StartStack(t,
		owltest.WithBlockingHandler(jobtype.AppleAdsSync),
		owltest.WithHandler(jobtype.RevenueCatUserBackfill, stubborn))
	t.Cleanup(func() { close(held) })
	team := stack.Team
	cancelPath := func(id string) string { return "/v1/jobs/" + id + "/cancel" }

	t.Run("pending run is cancelled at once", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		id := insertRun(t, stack, seedRun{teamID: &team.ID, projectID: &project.ID, status: "pending"})
		admin := stack.SeedUser(t, team, owltest.RoleAdmin)
		r := call(t, stack, req{method: "POST", path: cancelPath(id), token: admin.Token, body: "ignored", contentType: "text/plain"})
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		require.Equal(t, map[string]any{"cancelled": true, "status": "cancelled"}, r.JSON(t))
		run := get(t, stack, "/v1/jobs/"+id, admin.Token).JSON(t)["job_run"].(map[string]any)
		require.Equal(t, "cancelled", run["status"])
		require.NotNil(t, run["cancel_requested_at"])
		require.NotNil(t, run["completed_at"])
		var by string
		require.NoError(t, stack.DB.Pool.QueryRow(context.Background(), `SELECT cancel_requested_by FROM job_runs WHERE id = $1`, id).Scan(&by))
		require.Equal(t, "manual:user:"+admin.ID, by)
		audit := auditRows(t, stack, id, "update")
		require.Len(t, audit, 1)
		require.Equal(t, map[string]any{"actor_type": "user", "actor_id": admin.ID, "team_id": team.ID,
			"metadata": map[string]any{"job_type": "apple_ads_sync", "cancel": true}}, audit[0])

		// Now terminal: cancelling again is a 400 and writes nothing.
		requireError(t, post(t, stack, cancelPath(id), admin.Token, ""), http.StatusBadRequest, `Cannot cancel a job with status "cancelled"`)
		require.Len(t, auditRows(t, stack, id, "update"), 1)
	})

	t.Run("running run is asked to stop", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		created := post(t, stack, triggerPath(team.ID), stack.Key.Token, fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, project.ID))
		require.Equal(t, http.StatusCreated, created.Status)
		id := created.JSON(t)["job_run"].(map[string]any)["id"].(string)
		stack.Blocker.Started(t, id)
		r := post(t, stack, cancelPath(id), stack.Key.Token, "")
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		require.Equal(t, map[string]any{"cancelled": true, "status": "running"}, r.JSON(t))
		// The blocker stops early on its cancelled context: the run ends cancelled.
		rec := waitStatus(t, stack, id, "cancelled")
		require.Equal(t, "manual:api_key:"+stack.Key.ID, *rec.CancelRequestedBy)
		require.Len(t, auditRows(t, stack, id, "update"), 1)
	})

	t.Run("repeated requests are idempotent", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		created := post(t, stack, triggerPath(team.ID), stack.Key.Token, fmt.Sprintf(`{"job_type":"revenuecat_user_backfill","project_id":%q}`, project.ID))
		require.Equal(t, http.StatusCreated, created.Status)
		id := created.JSON(t)["job_run"].(map[string]any)["id"].(string)
		waitStatus(t, stack, id, "running")
		for range 3 {
			r := post(t, stack, cancelPath(id), stack.Key.Token, "")
			require.Equal(t, http.StatusOK, r.Status)
			require.Equal(t, map[string]any{"cancelled": true, "status": "running"}, r.JSON(t))
		}
		require.Len(t, auditRows(t, stack, id, "update"), 3, "each request is recorded")
	})

	t.Run("terminal and invisible runs", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		for _, st := range []string{"completed", "failed", "cancelled"} {
			id := insertRun(t, stack, seedRun{teamID: &team.ID, projectID: &project.ID, status: st})
			requireError(t, post(t, stack, cancelPath(id), stack.Key.Token, ""), http.StatusBadRequest,
				`Cannot cancel a job with status "`+st+`"`)
		}
		system := insertRun(t, stack, seedRun{jobType: "retention_cleanup", status: "pending"})
		requireError(t, post(t, stack, cancelPath(system), stack.Key.Token, ""), http.StatusNotFound, "Job run not found")
		var status string
		require.NoError(t, stack.DB.Pool.QueryRow(context.Background(), `SELECT status::text FROM job_runs WHERE id = $1`, system).Scan(&status))
		require.Equal(t, "pending", status, "system runs cannot be cancelled through the API")
		other := stack.SeedTeam(t)
		foreign := insertRun(t, stack, seedRun{teamID: &other.ID, status: "pending"})
		requireError(t, post(t, stack, cancelPath(foreign), stack.Key.Token, ""), http.StatusNotFound, "Job run not found")
		requireError(t, post(t, stack, cancelPath("nope"), stack.Key.Token, ""), http.StatusBadRequest, "Invalid runId: must be a UUID")
	})
}

// waitStatus waits for a run to reach a status, re-reading it on every change
// notification of the engine.
func waitStatus(t *testing.T, s *owltest.Stack, id, status string) engine.RunRecord {
	t.Helper()
	sub := s.Engine.Subscribe(id)
	defer sub.Close()
	deadline := time.After(30 * time.Second)
	for {
		rec, err := s.Engine.Get(context.Background(), id)
		require.NoError(t, err)
		if string(rec.Status) == status {
			return rec
		}
		require.False(t, rec.Status.Terminal(), "run ended %s, want %s", rec.Status, status)
		select {
		case <-sub.C:
		case <-time.After(time.Second): // a missed notification costs a second
		case <-deadline:
			t.Fatalf("run %s stayed %s, want %s", id, rec.Status, status)
		}
	}
}
