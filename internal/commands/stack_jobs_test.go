package commands_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

// oneJSON checks that stdout holds exactly one JSON document and decodes it.
func oneJSON(t *testing.T, res owltest.Result, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(res.Stdout.String()))
	require.NoError(t, dec.Decode(v), res.Stdout.String())
	var extra json.RawMessage
	require.Error(t, dec.Decode(&extra), "exactly one JSON document on stdout")
	require.True(t, strings.HasSuffix(res.Stdout.String(), "}\n") || strings.HasSuffix(res.Stdout.String(), "]\n"), "ends in one newline")
}

// errorObject checks that the last stderr line is the JSON error object and decodes it.
func errorObject(t *testing.T, res owltest.Result) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimRight(res.Stderr.String(), "\n"), "\n")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &doc), res.Stderr.String())
	return doc
}

func triggerRun(t *testing.T, stack *owltest.Stack, env owltest.Env, jobType, project string, extra ...string) apitype.JobRun {
	t.Helper()
	args := append([]string{"jobs", "trigger", jobType, "--project-id", project, "--format", "json"}, extra...)
	res := owltest.Run(t, env, args...)
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var run apitype.JobRun
	oneJSON(t, res, &run)
	return run
}

func TestTriggerViewListCancel(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync, jobtype.RevenueCatUserBackfill))
	project := stack.SeedProject(t, owltest.WithIntegration("apple-search-ads"))
	env := stack.Env()

	res := owltest.Run(t, env, "jobs", "trigger", "apple_ads_sync", "--project-id", project.ID)
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	id, jobType, ok := strings.Cut(strings.TrimSpace(res.Stdout.String()), "\t")
	require.True(t, ok, "piped: <run id><TAB><job_type>")
	require.Equal(t, "apple_ads_sync", jobType)
	require.Empty(t, res.Stderr.String(), "hints only on a terminal")

	tty := owltest.RunTTY(t, env, "jobs", "trigger", "revenuecat_user_backfill", "--project-id", project.ID, "--param", "starting_after=user_1", "--no-color")
	require.Equal(t, cmdutil.ExitOK, tty.ExitCode, tty.Stderr.String())
	require.Regexp(t, `^Started revenuecat_user_backfill run [0-9a-f-]{36} \(pending\)\n$`, tty.Stdout.String())
	require.Regexp(t, `follow it: owlmetry jobs wait [0-9a-f-]{36}`, tty.Stderr.String())

	res = owltest.Run(t, env, "jobs", "view", id, "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	var run apitype.JobRun
	oneJSON(t, res, &run)
	require.Equal(t, id, run.ID)
	require.Equal(t, project.ID, *run.ProjectID)
	require.Contains(t, res.Stdout.String(), `"cancel_requested_at"`, "fields are re-emitted as the server sent them")

	res = owltest.Run(t, env, "jobs", "view", id)
	require.Contains(t, res.Stdout.String(), "id\t"+id+"\n")
	require.Contains(t, res.Stdout.String(), "job_type\tapple_ads_sync\n")

	res = owltest.Run(t, env, "jobs", "list", "--type", "apple_ads_sync", "--format", "json")
	var list apitype.JobRunList
	oneJSON(t, res, &list)
	require.Len(t, list.JobRuns, 1)
	require.Equal(t, id, list.JobRuns[0].ID)

	res = owltest.Run(t, env, "jobs", "list", "--limit", "1")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Len(t, strings.Split(strings.TrimSpace(res.Stdout.String()), "\n"), 1)
	tty = owltest.RunTTY(t, env, "jobs", "list", "--limit", "1", "--no-color")
	require.Regexp(t, `More results: owlmetry jobs list --limit 1 --cursor '[^']+'`, tty.Stderr.String())
	require.Regexp(t, `(?m)^ID +TYPE +STATUS`, tty.Stdout.String())

	res = owltest.Run(t, env, "jobs", "list", "--limit", "1", "--all", "--format", "json")
	oneJSON(t, res, &list)
	require.Len(t, list.JobRuns, 2, "--all follows the cursor")
	require.Nil(t, list.Cursor)
	require.False(t, list.HasMore)

	res = owltest.Run(t, env, "jobs", "list", "--status", "failed")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	require.Equal(t, "No job runs found.\n", res.Stderr.String())

	stack.Blocker.Started(t, id)
	res = owltest.Run(t, env, "jobs", "cancel", id, "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var cancel map[string]any
	oneJSON(t, res, &cancel)
	require.Equal(t, map[string]any{"cancelled": true, "status": "running"}, cancel)

	res = owltest.Run(t, env, "jobs", "wait", id, "--format", "json")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode, "a cancelled run is a failed wait")
	require.Equal(t, "job_cancelled", errorObject(t, res)["code"])

	res = owltest.Run(t, env, "jobs", "cancel", id)
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode, "the run already ended")
	require.Contains(t, res.Stderr.String(), `Cannot cancel a job with status "cancelled" (HTTP 400)`)
}

func TestViewUnknownRun(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)
	const missing = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"
	res := owltest.Run(t, stack.Env(), "jobs", "view", missing)
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Equal(t, "error: no job run "+missing+"\nhint: system runs are visible to server owners only: owlmetry system jobs view "+missing+"\n", res.Stderr.String())

	res = owltest.Run(t, stack.Env(), "jobs", "wait", missing, "--format", "json")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	require.Equal(t, "not_found", errorObject(t, res)["code"])
}

func TestTriggerConflict(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync))
	project := stack.SeedProject(t, owltest.WithIntegration("apple-search-ads"))
	first := triggerRun(t, stack, stack.Env(), "apple_ads_sync", project.ID)

	res := owltest.Run(t, stack.Env(), "jobs", "trigger", "apple_ads_sync", "--project-id", project.ID)
	require.Equal(t, cmdutil.ExitConflict, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	require.Equal(t, "error: apple_ads_sync is already running or pending for this project (HTTP 409)\n"+
		"existing run: "+first.ID+"\n"+
		"hint: wait for it: owlmetry jobs wait "+first.ID+"\n"+
		"hint: or run again with --attach\n", res.Stderr.String())

	res = owltest.Run(t, stack.Env(), "jobs", "trigger", "apple_ads_sync", "--project-id", project.ID, "--format", "json")
	require.Equal(t, cmdutil.ExitConflict, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	doc := errorObject(t, res)
	require.Equal(t, first.ID, doc["existing_run_id"])
	require.Equal(t, "conflict", doc["code"])
	require.Equal(t, float64(5), doc["exit_code"])
	require.Equal(t, float64(409), doc["status"])

	res = owltest.Run(t, stack.Env(), "jobs", "trigger", "apple_ads_sync", "--project-id", project.ID, "--attach")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.True(t, strings.HasPrefix(res.Stdout.String(), first.ID+"\t"), "the existing run is printed as the started one")
	require.Contains(t, res.Stderr.String(), "attached to existing run "+first.ID[:8]+" (")

	// --attach with --wait follows the existing run to its end.
	r := owltest.Start(t, stack.Env(), owltest.StartOptions{}, "jobs", "trigger", "apple_ads_sync", "--project-id", project.ID, "--attach", "--wait")
	r.Stderr.WaitFor(t, "waiting for apple_ads_sync run "+first.ID)
	stack.Blocker.Release(first.ID)
	end := r.Wait(t)
	require.Equal(t, cmdutil.ExitOK, end.ExitCode)
	require.Contains(t, end.Stdout.String(), "id\t"+first.ID+"\njob_type\tapple_ads_sync\nstatus\tcompleted\n", "the final snapshot of the adopted run")
}

func TestWaitOutcomes(t *testing.T) {
	t.Parallel()
	types := []string{jobtype.AppleAdsSync, jobtype.RevenueCatSync, jobtype.RevenueCatUserBackfill, jobtype.AppleAdsSync}
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(types...))
	env := stack.Env()
	tests := []struct {
		name    string
		finish  func(id string)
		code    cmdutil.ExitCode
		errCode string
		line    string
	}{
		{name: "completed", finish: func(id string) { stack.Blocker.Finish(id, engine.Result{"errors": 2}, nil) }, code: cmdutil.ExitOK, line: "completed in"},
		{name: "failed", finish: func(id string) { stack.Blocker.Finish(id, nil, errors.New("upstream said no")) }, code: cmdutil.ExitFailure, errCode: "job_failed", line: "failed after"},
		{name: "aborted", finish: func(id string) {
			stack.Blocker.Finish(id, engine.Result{"aborted": true, "abort_reason": "quota exhausted"}, nil)
		}, code: cmdutil.ExitFailure, errCode: "job_aborted", line: "completed but aborted after"},
		{name: "cancelled by another command", finish: func(id string) {
			res := owltest.Run(t, env, "jobs", "cancel", id)
			require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		}, code: cmdutil.ExitFailure, errCode: "job_cancelled", line: "cancelled after"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			project := stack.SeedProject(t)
			jobType := types[i]
			run := triggerRun(t, stack, env, jobType, project.ID)

			r := owltest.Start(t, env, owltest.StartOptions{}, "jobs", "wait", run.ID, "--progress", "lines")
			r.Stderr.WaitFor(t, "waiting for "+jobType+" run "+run.ID)
			stack.Blocker.Started(t, run.ID).Progress.Report(3, 4, "almost there")
			r.Stderr.WaitFor(t, "3/4 (75%) almost there")
			tt.finish(run.ID)
			res := r.Wait(t)
			require.Equal(t, tt.code, res.ExitCode)
			require.Contains(t, res.Stderr.String(), jobType+" "+run.ID+" "+tt.line, "piped outcome line")
			require.NotContains(t, res.Stderr.String(), "error:", "the outcome line replaces the error line")
			require.Contains(t, res.Stdout.String(), "id\t"+run.ID+"\n", "the final view on stdout")
			if tt.name == "completed" {
				require.Contains(t, res.Stderr.String(), "(2 errors)")
			}

			res = owltest.Run(t, env, "jobs", "wait", run.ID, "--format", "json")
			require.Equal(t, tt.code, res.ExitCode, "a run that already ended returns at once")
			var doc struct {
				JobRuns []apitype.JobRun `json:"job_runs"`
			}
			oneJSON(t, res, &doc)
			require.Len(t, doc.JobRuns, 1)
			if tt.errCode != "" {
				obj := errorObject(t, res)
				require.Equal(t, tt.errCode, obj["code"])
				require.Equal(t, []any{run.ID}, obj["run_ids"])
			} else {
				require.Empty(t, res.Stderr.String())
			}
		})
	}
}

func TestWaitTimeoutAndCancelWait(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync))
	project := stack.SeedProject(t)
	run := triggerRun(t, stack, stack.Env(), "apple_ads_sync", project.ID)
	stack.Blocker.Started(t, run.ID)

	res := owltest.Run(t, stack.Env(), "jobs", "wait", run.ID, "--timeout", "1s")
	require.Equal(t, cmdutil.ExitPending, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "apple_ads_sync "+run.ID+" still running after")
	require.Contains(t, res.Stderr.String(), "hint: re-attach: owlmetry jobs wait "+run.ID+"\n")

	res = owltest.Run(t, stack.Env(), "jobs", "wait", run.ID, "--timeout", "1s", "--format", "json")
	require.Equal(t, cmdutil.ExitPending, res.ExitCode)
	var doc struct {
		JobRuns []apitype.JobRun `json:"job_runs"`
	}
	oneJSON(t, res, &doc)
	require.Equal(t, apitype.StatusRunning, doc.JobRuns[0].Status, "the last snapshot of a run still active")
	require.Equal(t, "wait_timeout", errorObject(t, res)["code"])

	// cancel --wait exits 0 however the run ended.
	res = owltest.Run(t, stack.Env(), "jobs", "cancel", run.ID, "--wait", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var cancelled struct {
		Cancelled bool           `json:"cancelled"`
		JobRun    apitype.JobRun `json:"job_run"`
	}
	oneJSON(t, res, &cancelled)
	require.True(t, cancelled.Cancelled)
	require.Equal(t, apitype.StatusCancelled, cancelled.JobRun.Status)
}

func TestInterrupts(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync, jobtype.RevenueCatSync))
	project := stack.SeedProject(t)

	t.Run("leaves the run alone", func(t *testing.T) {
		t.Parallel()
		run := triggerRun(t, stack, stack.Env(), "apple_ads_sync", project.ID)
		r := owltest.Start(t, stack.Env(), owltest.StartOptions{}, "jobs", "wait", run.ID)
		r.Stderr.WaitFor(t, "waiting for apple_ads_sync run")
		r.Signal(owltest.Interrupt)
		res := r.Wait(t)
		require.Equal(t, cmdutil.ExitInterrupted, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "hint: re-attach: owlmetry jobs wait "+run.ID+"\nnote: the run was not cancelled\n")
		view := owltest.Run(t, stack.Env(), "jobs", "view", run.ID, "--format", "json")
		var now apitype.JobRun
		oneJSON(t, view, &now)
		require.True(t, now.Status.Active(), "an interrupt never cancels by itself")
	})
	t.Run("cancel on interrupt", func(t *testing.T) {
		t.Parallel()
		run := triggerRun(t, stack, stack.Env(), "revenuecat_sync", project.ID)
		stack.Blocker.Started(t, run.ID)
		r := owltest.Start(t, stack.Env(), owltest.StartOptions{}, "jobs", "wait", run.ID, "--cancel-on-interrupt")
		r.Stderr.WaitFor(t, "waiting for revenuecat_sync run")
		r.Signal(owltest.Interrupt)
		res := r.Wait(t)
		require.Equal(t, cmdutil.ExitInterrupted, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "cancel requested for "+run.ID[:8])
		require.Contains(t, res.Stderr.String(), "revenuecat_sync "+run.ID+" cancelled after")
		require.NotContains(t, res.Stderr.String(), "was not cancelled")
	})
}

func TestWaitByPolling(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithoutEventStream(), owltest.WithBlockingHandler(jobtype.AppleAdsSync))
	project := stack.SeedProject(t)
	run := triggerRun(t, stack, stack.Env(), "apple_ads_sync", project.ID)
	r := owltest.Start(t, stack.Env(), owltest.StartOptions{}, "jobs", "wait", run.ID, "--poll-interval", "500ms")
	r.Stderr.WaitFor(t, "waiting for apple_ads_sync run")
	stack.Blocker.Started(t, run.ID).Progress.Report(1, 2, "half")
	r.Stderr.WaitFor(t, "1/2 (50%) half")
	stack.Blocker.Release(run.ID)
	res := r.Wait(t)
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "apple_ads_sync "+run.ID+" completed in")
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)
	res := owltest.Run(t, stack.Env().With("OWLMETRY_API_KEY", "owl_agent_"+strings.Repeat("0", 48)), "jobs", "list")
	require.Equal(t, cmdutil.ExitAuth, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "error: Invalid API key (HTTP 401)\nhint: the server rejected the API key; store a new one with owlmetry auth login\n")

	readOnly := stack.SeedKey(t, stack.Team, []string{"jobs:read"})
	project := stack.SeedProject(t)
	res = owltest.Run(t, stack.Env().With("OWLMETRY_API_KEY", readOnly.Token), "jobs", "trigger", "apple_ads_sync", "--project-id", project.ID, "--format", "json")
	require.Equal(t, cmdutil.ExitAuth, res.ExitCode)
	doc := errorObject(t, res)
	require.Equal(t, "forbidden", doc["code"])
	require.Equal(t, "the API key lacks jobs:write", doc["hint"])

	// Without a team id anywhere, the team comes from whoami.
	res = owltest.Run(t, stack.Env().With("OWLMETRY_TEAM_ID", ""), "jobs", "list", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())

	// A server that is not there.
	res = owltest.Run(t, stack.Env().With("OWLMETRY_ENDPOINT", "http://127.0.0.1:1"), "jobs", "list")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "hint: is owlmetry server (or owlmetry dev) running?")
}
