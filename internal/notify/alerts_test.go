package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobtype"
)

func TestSystemRunCompletedAlert(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{cfg: Config{AlertEmails: []string{"ops@example.com", "oncall@example.com"}}})
	started, completed := span(83 * time.Second)
	run := b.finish(t, FinishedRun{
		JobType: jobtype.PartitionCreation, Status: "completed", TriggeredBy: "schedule",
		Result:    map[string]any{"created": []any{"events_2026_05"}, "_silent": false},
		StartedAt: started, CompletedAt: completed,
	})

	msgs := b.sink.wait(t, 2)
	b.waitSettled(t, 2)
	var to []string
	for _, r := range msgs {
		require.Len(t, r.To, 1, "one job per alert address")
		to = append(to, r.To[0])
		m := r.parse(t)
		require.Equal(t, "[Owlmetry] ✅ Job completed: Partition Creation", m.Subject)
		require.Contains(t, m.Text, "Job:          Partition Creation (partition_creation)\n")
		require.Contains(t, m.Text, "Status:       completed\n")
		require.Contains(t, m.Text, "Duration:     1m 23s\n")
		require.Contains(t, m.Text, "Run:          "+run.ID+"\n")
		require.Contains(t, m.Text, "Triggered by: schedule\n")
		require.Contains(t, m.Text, "Started:      2026-03-14T09:25:30Z\n")
		require.Contains(t, m.Text, "Finished:     2026-03-14T09:26:53Z\n")
		require.Contains(t, m.Text, "Result:\n{\n  \"created\": [\n    \"events_2026_05\"\n  ]\n}\n")
		require.Contains(t, m.Text, "Link:         owlmetry system jobs view "+run.ID+"\n")
		require.NotContains(t, m.Text, "_silent")
		require.NotContains(t, m.Text, "Error:")
		require.NotContains(t, m.Text, "Team:")
		require.Contains(t, m.HTML, "<pre")
		require.Contains(t, m.HTML, "owlmetry system jobs view "+run.ID)
		require.NotContains(t, m.HTML, "_silent")
	}
	require.ElementsMatch(t, []string{"ops@example.com", "oncall@example.com"}, to)
	require.Equal(t, "completed", b.runStatus(t, run.ID))
	require.Equal(t, 2.0, b.emailCount(KindSystemAlert, OutcomeSent))
}

func TestSystemRunFailedAlert(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{cfg: Config{AlertEmails: []string{"ops@example.com"}}})
	started, completed := span(317 * time.Millisecond)
	run := b.finish(t, FinishedRun{
		JobType: jobtype.RetentionCleanup, Status: "failed", TriggeredBy: "manual:cli:root@db1",
		Error: ptr("delete batch: deadlock detected"), StartedAt: started, CompletedAt: completed,
	})

	m := b.sink.wait(t, 1)[0].parse(t)
	require.Equal(t, "[Owlmetry] ❌ Job failed: Data Retention Cleanup", m.Subject)
	require.Contains(t, m.Text, "Status:       failed\n")
	require.Contains(t, m.Text, "Duration:     317ms\n")
	require.Contains(t, m.Text, "Error:        delete batch: deadlock detected\n")
	require.Contains(t, m.Text, "owlmetry system jobs view "+run.ID)
	require.NotContains(t, m.Text, "Result:")
	require.Contains(t, m.HTML, "delete batch: deadlock detected")
	job := b.waitSettled(t, 1)[0]
	require.Equal(t, rivertype.JobStateCompleted, job.State)
	require.Equal(t, QueueInternal, job.Queue)
	require.Equal(t, EmailMaxAttempts, job.MaxAttempts)
	args := decodeArgs(t, job)
	require.Equal(t, run.ID, args.RunID)
	require.Equal(t, KindSystemAlert, args.MailKind)
	require.Equal(t, "failed", b.runStatus(t, run.ID))
}

// The table of engine.md §14.2 through the real outbox: what gets enqueued for each final
// state in each mode.
func TestSystemAlertRules(t *testing.T) {
	t.Parallel()
	started, completed := span(5 * time.Second)
	type want struct{ all, failures string } // expected subject prefix, "" for no alert
	tests := []struct {
		name string
		run  FinishedRun
		want want
	}{
		{"completed", FinishedRun{Status: "completed", Result: map[string]any{"_silent": false}},
			want{"[Owlmetry] ✅ Job completed", ""}},
		{"completed without result", FinishedRun{Status: "completed"},
			want{"[Owlmetry] ✅ Job completed", ""}},
		{"completed silent", FinishedRun{Status: "completed", Result: map[string]any{"_silent": true}},
			want{"", ""}},
		{"aborted", FinishedRun{Status: "completed", Result: map[string]any{"aborted": true, "abort_reason": "budget exhausted"}},
			want{"[Owlmetry] ⚠️ Job aborted", "[Owlmetry] ⚠️ Job aborted"}},
		{"aborted and silent", FinishedRun{Status: "completed", Result: map[string]any{"aborted": true, "_silent": true}},
			want{"[Owlmetry] ⚠️ Job aborted", "[Owlmetry] ⚠️ Job aborted"}},
		{"failed", FinishedRun{Status: "failed", Error: ptr("boom")},
			want{"[Owlmetry] ❌ Job failed", "[Owlmetry] ❌ Job failed"}},
		{"failed by recovery before start", FinishedRun{Status: "failed", Error: ptr("lease expired")},
			want{"[Owlmetry] ❌ Job failed", "[Owlmetry] ❌ Job failed"}},
		{"cancelled", FinishedRun{Status: "cancelled", Result: map[string]any{"_silent": true}},
			want{"[Owlmetry] 🚫 Job cancelled", ""}},
	}
	for _, mode := range []AlertMode{AlertAll, AlertFailures} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOptions{noWorker: true, cfg: Config{AlertEmails: []string{"ops@example.com"}, AlertOn: mode}})
			for _, tt := range tests {
				run := tt.run
				run.JobType, run.TriggeredBy = jobtype.SoftDeleteCleanup, "schedule"
				run.StartedAt, run.CompletedAt = started, completed
				if tt.name == "failed by recovery before start" {
					run.StartedAt = nil
				}
				before := len(b.emailJobs(t))
				run = b.finish(t, run)
				jobs := b.emailJobs(t)
				want := tt.want.all
				if mode == AlertFailures {
					want = tt.want.failures
				}
				if want == "" {
					require.Len(t, jobs, before, "%s in mode %s: no alert", tt.name, mode)
					continue
				}
				require.Len(t, jobs, before+1, "%s in mode %s: one alert", tt.name, mode)
				args := decodeArgs(t, jobs[len(jobs)-1])
				require.True(t, strings.HasPrefix(args.Subject, want+": Soft-Delete Cleanup"), "%s: %s", tt.name, args.Subject)
				require.Equal(t, run.ID, args.RunID)
				require.Equal(t, []string{"ops@example.com"}, args.To)
				if strings.HasPrefix(tt.name, "aborted") {
					require.Contains(t, args.Text, "Status:       completed — aborted")
				}
				if tt.name == "aborted" {
					require.Contains(t, args.Text, "Status:       completed — aborted: budget exhausted\n")
				}
				if run.StartedAt == nil {
					require.Contains(t, args.Text, "Duration:     not started\n")
					require.Contains(t, args.Text, "Started:      not started\n")
				}
			}
		})
	}
}

func TestAlertsDisabledOrTeamRun(t *testing.T) {
	t.Parallel()
	t.Run("no alert address", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOptions{noWorker: true})
		b.finish(t, FinishedRun{JobType: jobtype.DBPruning, Status: "failed", TriggeredBy: "schedule", Error: ptr("x"), CompletedAt: time.Now()})
		require.Empty(t, b.emailJobs(t))
	})
	t.Run("team run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOptions{noWorker: true, cfg: Config{AlertEmails: []string{"ops@example.com"}}})
		s := b.seedTeam(t)
		user := b.seedUser(t, "dev@example.com", "")
		b.finish(t, FinishedRun{
			JobType: jobtype.AppleAdsSync, Status: "failed", TeamID: &s.teamID, ProjectID: &s.projectID,
			TriggeredBy: "manual:user:" + user, Error: ptr("x"), CompletedAt: time.Now(),
		})
		require.Empty(t, b.emailJobs(t), "team runs never alert the server owner, and notify was off")
		var n int
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM notifications`).Scan(&n))
		require.Zero(t, n)
	})
}

func TestNotifyByUser(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{cfg: Config{AlertEmails: []string{"ops@example.com"}, WebAppURL: "https://app.owlmetry.test/"}})
	s := b.seedTeam(t)
	user := b.seedUser(t, "dev@example.com", "")
	started, completed := span(65 * time.Second)
	run := b.finish(t, FinishedRun{
		JobType: jobtype.AppleAdsSync, Status: "completed", TeamID: &s.teamID, ProjectID: &s.projectID,
		TriggeredBy: "manual:user:" + user, Notify: true,
		Result:    map[string]any{"campaigns_synced": 3, "_silent": true},
		StartedAt: started, CompletedAt: completed,
	})

	got := b.sink.wait(t, 1)[0]
	require.Equal(t, []string{"dev@example.com"}, got.To)
	m := got.parse(t)
	require.Equal(t, "[Owlmetry] ✅ Job completed: Apple Ads Sync", m.Subject)
	require.Contains(t, m.Text, "Job:          Apple Ads Sync (apple_ads_sync)\n")
	require.Contains(t, m.Text, "Duration:     1m 5s\n")
	require.Contains(t, m.Text, "Triggered by: manual:user:"+user+"\n")
	require.Contains(t, m.Text, "Team:         "+s.teamID+"\n")
	require.Contains(t, m.Text, "Project:      "+s.projectID+"\n")
	require.Contains(t, m.Text, "\"campaigns_synced\": 3")
	require.NotContains(t, m.Text, "_silent", "_silent never suppresses notify: true and is not shown")
	require.Contains(t, m.Text, "Link:         https://app.owlmetry.test/dashboard/jobs\n")
	require.Contains(t, m.HTML, `href="https://app.owlmetry.test/dashboard/jobs"`)
	b.waitSettled(t, 1)

	jobs := b.emailJobs(t)
	require.Len(t, jobs, 1, "a team run gets no system alert")
	require.NotEmpty(t, decodeArgs(t, jobs[0]).DeliveryID)

	var title, body, link, teamID string
	var data map[string]any
	require.NoError(t, b.pool.QueryRow(b.ctx,
		`SELECT title, body, link, team_id::text, data FROM notifications WHERE user_id = $1 AND type = 'job.completed'`, user).
		Scan(&title, &body, &link, &teamID, &data))
	require.Equal(t, "✅ Apple Ads Sync completed", title)
	require.Equal(t, "Finished in 1m 5s", body)
	require.Equal(t, "/dashboard/jobs", link)
	require.Equal(t, s.teamID, teamID)
	require.Equal(t, "apple_ads_sync", data["job_type"])
	require.Equal(t, "Apple Ads Sync", data["label"])
	require.Equal(t, run.ID, data["run_id"])
	require.Equal(t, "completed", data["status"])
	require.Equal(t, "1m 5s", data["duration"])
	require.NotContains(t, data, "error")

	ds := b.deliveries(t, user)
	require.Len(t, ds, 2)
	require.Equal(t, ChannelEmail, ds[0].Channel)
	require.Equal(t, DeliverySent, ds[0].Status)
	require.NotNil(t, ds[0].AttemptedAt)
	require.Nil(t, ds[0].Error)
	require.Equal(t, map[string]any{"attempts": 1.0, "transport": "smtp"}, ds[0].Metadata)
	require.Equal(t, ChannelInApp, ds[1].Channel)
	require.Equal(t, DeliverySent, ds[1].Status)
	require.Equal(t, 1.0, b.emailCount(TypeJobCompleted, OutcomeSent))
}

func TestNotifyInboxContent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noWorker: true})
	s := b.seedTeam(t)
	user := b.seedUser(t, "dev@example.com", "")
	started, completed := span(12300 * time.Millisecond)
	tests := []struct {
		run         FinishedRun
		title, body string
	}{
		{FinishedRun{Status: "completed", Result: map[string]any{"aborted": true, "abort_reason": "auth_error: 401"}},
			"⚠️ RevenueCat Sync aborted", "Aborted after 12.3s: auth_error: 401"},
		{FinishedRun{Status: "cancelled"}, "🚫 RevenueCat Sync cancelled", "Cancelled after 12.3s"},
		{FinishedRun{Status: "failed", Error: ptr("upstream 500")}, "❌ RevenueCat Sync failed", "Failed after 12.3s: upstream 500"},
	}
	for _, tt := range tests {
		run := tt.run
		run.JobType, run.TeamID, run.ProjectID = jobtype.RevenueCatSync, &s.teamID, &s.projectID
		run.TriggeredBy, run.Notify, run.StartedAt, run.CompletedAt = "manual:user:"+user, true, started, completed
		run = b.finish(t, run)
		var title, body string
		var data map[string]any
		require.NoError(t, b.pool.QueryRow(b.ctx,
			`SELECT title, body, data FROM notifications WHERE data->>'run_id' = $1`, run.ID).Scan(&title, &body, &data))
		require.Equal(t, tt.title, title)
		require.Equal(t, tt.body, body)
		if run.Error != nil {
			require.Equal(t, *run.Error, data["error"])
		}
		if run.Result != nil {
			require.Equal(t, true, data["result"].(map[string]any)["aborted"])
		}
	}
}

func TestNotifyByAPIKey(t *testing.T) {
	t.Parallel()
	for _, deleted := range []bool{false, true} {
		name := "live key"
		if deleted {
			name = "soft-deleted key"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOptions{})
			s := b.seedTeam(t)
			creator := b.seedUser(t, "creator@example.com", "")
			b.seedUser(t, "bystander@example.com", "")
			key := b.seedAPIKey(t, s.teamID, creator, deleted)
			started, completed := span(3 * time.Hour)
			b.finish(t, FinishedRun{
				JobType: jobtype.RevenueCatUserBackfill, Status: "failed", TeamID: &s.teamID, ProjectID: &s.projectID,
				TriggeredBy: "manual:api_key:" + key, Notify: true, Error: ptr("RevenueCat integration not found or disabled"),
				StartedAt: started, CompletedAt: completed,
			})
			got := b.sink.wait(t, 1)[0]
			require.Equal(t, []string{"creator@example.com"}, got.To)
			m := got.parse(t)
			require.Equal(t, "[Owlmetry] ❌ Job failed: RevenueCat User Backfill", m.Subject)
			require.Contains(t, m.Text, "Duration:     3h 0m\n")
			require.Contains(t, m.Text, "Error:        RevenueCat integration not found or disabled\n")
			require.Contains(t, m.Text, "Triggered by: manual:api_key:"+key+"\n")
			b.waitSettled(t, 1)
			require.Len(t, b.sink.all(), 1)
		})
	}
}

func TestNotifyWithoutRecipient(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noWorker: true})
	s := b.seedTeam(t)
	for _, actor := range []string{
		"schedule",
		"manual:cli:root@db1",
		"manual:user:not-a-uuid",
		"manual:user:6f1c2d3e-0000-4000-8000-000000000001",    // no such user
		"manual:api_key:6f1c2d3e-0000-4000-8000-000000000002", // no such key
		"manual:api_key:garbage",
	} {
		b.finish(t, FinishedRun{
			JobType: jobtype.AppleAdsSync, Status: "completed", TeamID: &s.teamID, ProjectID: &s.projectID,
			TriggeredBy: actor, Notify: true, CompletedAt: time.Now(),
		})
	}
	require.Empty(t, b.emailJobs(t))
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM notifications`).Scan(&n))
	require.Zero(t, n)
	warnings := b.logs.lines(t, "notify: no recipient for run")
	require.Len(t, warnings, 6)
	for _, w := range warnings {
		require.Equal(t, "WARN", w["level"])
	}
}

func TestNotifyPreferences(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noWorker: true})
	s := b.seedTeam(t)
	tests := []struct {
		name  string
		prefs string
		want  []string // channels of the delivery rows
	}{
		{"defaults", `{}`, []string{ChannelEmail, ChannelInApp}},
		{"email off", `{"notifications":{"types":{"job.completed":{"email":false}}},"theme":"dark"}`, []string{ChannelInApp}},
		{"in-app off", `{"notifications":{"types":{"job.completed":{"in_app":false}}}}`, []string{ChannelEmail}},
		{"other type off only", `{"notifications":{"types":{"issue.new":{"email":false}}}}`, []string{ChannelEmail, ChannelInApp}},
		{"not a boolean", `{"notifications":{"types":{"job.completed":{"email":"no"}}}}`, []string{ChannelEmail, ChannelInApp}},
	}
	for i, tt := range tests {
		user := b.seedUser(t, "user"+string(rune('a'+i))+"@example.com", tt.prefs)
		before := len(b.emailJobs(t))
		b.finish(t, FinishedRun{
			JobType: jobtype.AppleAdsSync, Status: "completed", TeamID: &s.teamID, ProjectID: &s.projectID,
			TriggeredBy: "manual:user:" + user, Notify: true, CompletedAt: time.Now(),
		})
		var channels []string
		for _, d := range b.deliveries(t, user) {
			channels = append(channels, d.Channel)
		}
		require.Equal(t, tt.want, channels, tt.name)
		wantJobs := 0
		if tt.want[0] == ChannelEmail {
			wantJobs = 1
		}
		require.Len(t, b.emailJobs(t), before+wantJobs, tt.name)
	}
}
