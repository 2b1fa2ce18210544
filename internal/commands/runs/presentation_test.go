package runs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

var (
	cet = time.FixedZone("CET", 3600)
	now = time.Date(2026, 11, 29, 16, 7, 12, 0, cet)
)

const runJSON = `{
  "id": "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f", "job_type": "apple_ads_sync", "status": "completed",
  "team_id": "9c0d11aa-0000-4000-8000-000000000001", "project_id": "1a2b3c4d-0000-4000-8000-000000000001",
  "triggered_by": "manual:api_key:5d1e02aa-0000-4000-8000-000000000009",
  "params": {"project_id": "1a2b3c4d-0000-4000-8000-000000000001"},
  "progress": {"processed": 20, "total": 20, "message": "synced 20 ad groups"},
  "result": {"errors": 0, "enriched": 1204, "_silent": false, "notes": "a\tb"},
  "error": null, "notify": false,
  "started_at": "2026-11-29T15:03:12.000Z", "completed_at": "2026-11-29T15:04:17.000Z",
  "created_at": "2026-11-29T15:03:12.000Z", "cancel_requested_at": null}`

func sampleRun(t *testing.T) apitype.JobRun {
	t.Helper()
	var r apitype.JobRun
	require.NoError(t, json.Unmarshal([]byte(runJSON), &r))
	return r
}

func rc(tty bool, width int) cmdutil.RenderContext {
	ios, _, _, _ := iostreams.Test()
	return cmdutil.RenderContext{CS: ios.ColorScheme(iostreams.Stdout), Width: width, Now: now, TTY: tty}
}

func TestRunDetailsTTY(t *testing.T) {
	t.Parallel()
	out := RunDetails(sampleRun(t))(rc(true, 80))
	want := `Apple Ads Sync (apple_ads_sync)
ID          3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f
Status      completed
Team        9c0d11aa-0000-4000-8000-000000000001
Project     1a2b3c4d-0000-4000-8000-000000000001
Triggered   api key 5d1e02aa
Notify      no
Created     2026-11-29 16:03:12 +01:00 (4m ago)
Started     2026-11-29 16:03:12 +01:00 (4m ago)
Completed   2026-11-29 16:04:17 +01:00 (2m ago)
Duration    1m05s
Progress    20/20 (100%) synced 20 ad groups
Result
  enriched  1204
  errors    0
  notes     a	b
Params
  project_id  1a2b3c4d-0000-4000-8000-000000000001
`
	require.Equal(t, want, out)
}

func TestRunDetailsPiped(t *testing.T) {
	t.Parallel()
	r := sampleRun(t)
	r.Result = json.RawMessage(`{"aborted":true,"abort_reason":"quota\nexceeded"}`)
	out := RunDetails(r)(rc(false, 80))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var keys []string
	for _, l := range lines {
		k, _, ok := strings.Cut(l, "\t")
		require.True(t, ok, l)
		keys = append(keys, k)
	}
	require.Equal(t, []string{"id", "job_type", "status", "team_id", "project_id", "triggered_by", "notify", "created_at",
		"started_at", "completed_at", "duration_ms", "progress_processed", "progress_total", "progress_message",
		"aborted", "abort_reason", "error", "result", "params"}, keys, "a stable interface: keys in this order")
	require.Contains(t, out, "created_at\t2026-11-29T15:03:12.000Z\n", "times as the server sent them")
	require.Contains(t, out, "duration_ms\t65000\n")
	require.Contains(t, out, "aborted\ttrue\n")
	require.Contains(t, out, "abort_reason\tquota\\nexceeded\n", "escaped")
	require.Contains(t, out, "error\t\n", "null is an empty field")
	require.NotContains(t, out, "\x1b")
}

func TestRunDetailsAbortedAndFailedTTY(t *testing.T) {
	t.Parallel()
	r := sampleRun(t)
	r.Result = json.RawMessage(`{"aborted":true,"abort_reason":"quota exceeded"}`)
	out := RunDetails(r)(rc(true, 80))
	require.Contains(t, out, "Status      aborted\n")
	require.Contains(t, out, "Aborted     quota exceeded\n")

	msg := "Server restarted during execution"
	r = sampleRun(t)
	r.Status, r.Error, r.Progress, r.Result, r.StartedAt, r.CompletedAt = "failed", &msg, nil, nil, nil, nil
	out = RunDetails(r)(rc(true, 80))
	require.Contains(t, out, "Error       Server restarted during execution\n")
	require.NotContains(t, out, "Progress")
	require.NotContains(t, out, "Started")
	require.NotContains(t, out, "Duration")
	require.NotContains(t, out, "Result")
}

func TestRunListLayouts(t *testing.T) {
	t.Parallel()
	a := sampleRun(t)
	b := sampleRun(t)
	b.ID, b.Status, b.ProjectID, b.StartedAt, b.CompletedAt, b.Progress = "77ab01cd-0000-4000-8000-000000000002", "pending", nil, nil, nil, nil
	c := sampleRun(t)
	c.ID, c.Status, c.CompletedAt = "88ab01cd-0000-4000-8000-000000000003", "running", nil
	c.Progress = &apitype.Progress{Processed: 120}

	piped := RunList([]apitype.JobRun{a, b})(rc(false, 40))
	require.Equal(t, "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f\tapple_ads_sync\tcompleted\t1a2b3c4d-0000-4000-8000-000000000001\tmanual:api_key:5d1e02aa-0000-4000-8000-000000000009\t2026-11-29T15:03:12.000Z\t2026-11-29T15:03:12.000Z\t2026-11-29T15:04:17.000Z\n"+
		"77ab01cd-0000-4000-8000-000000000002\tapple_ads_sync\tpending\t\tmanual:api_key:5d1e02aa-0000-4000-8000-000000000009\t2026-11-29T15:03:12.000Z\t\t\n", piped)

	tty := RunList([]apitype.JobRun{a, b, c})(rc(true, 100))
	lines := strings.Split(strings.TrimSuffix(tty, "\n"), "\n")
	require.Len(t, lines, 4)
	require.Regexp(t, `^ID +TYPE +STATUS +PROJECT +TRIGGER +PROGRESS +CREATED +DURATION$`, lines[0])
	require.Regexp(t, `^3f2a9c1e +apple_ads_sync +completed +1a2b3c4d +api key 5d1e02aa +100% +4m ago +1m05s$`, lines[1])
	require.Regexp(t, `^77ab01cd +apple_ads_sync +pending +- +api key 5d1e02aa +- +4m ago +-$`, lines[2])
	require.Regexp(t, `120 processed +4m ago +4m00s$`, lines[3])

	narrow := RunList([]apitype.JobRun{a})(rc(true, 60))
	for _, l := range strings.Split(strings.TrimSuffix(narrow, "\n"), "\n") {
		require.LessOrEqual(t, ansi.StringWidth(l), 60, l)
	}
	require.Contains(t, narrow, "3f2a9c1e", "ids are never cut")
}

func TestStartedAndNotes(t *testing.T) {
	t.Parallel()
	r := sampleRun(t)
	r.Status, r.StartedAt = "pending", nil
	require.Equal(t, "Started apple_ads_sync run 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f (pending)\n", Started(r)(rc(true, 80)))
	require.Equal(t, "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f\tapple_ads_sync\n", Started(r)(rc(false, 80)))
	require.Equal(t, "attached to existing run 3f2a9c1e (pending, created 4m ago)", AttachedNote(r, now))
	r = sampleRun(t)
	r.Status = "running"
	require.Equal(t, "attached to existing run 3f2a9c1e (running, started 4m ago)", AttachedNote(r, now))
}

func TestWithKeyKeepsFields(t *testing.T) {
	t.Parallel()
	out, err := WithKey(json.RawMessage(`{"syncing":true,"total":3,"job_run_id":"x","future":{"a":1}}`), "job_runs", []apitype.JobRun{})
	require.NoError(t, err)
	require.JSONEq(t, `{"syncing":true,"total":3,"job_run_id":"x","future":{"a":1},"job_runs":[]}`, string(out))
}

func TestParseProvider(t *testing.T) {
	t.Parallel()
	p, err := ParseProvider("apple-search-ads")
	require.NoError(t, err)
	require.Equal(t, "apple_ads_sync", p.JobType)
	_, err = ParseProvider("stripe")
	require.EqualError(t, err, `invalid provider "stripe": valid providers are revenuecat, apple-search-ads, app-store-connect`)
}
