package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobtype"
)

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.00ms"},
		{420 * time.Microsecond, "0.42ms"},
		{999 * time.Microsecond, "1.00ms"},
		{time.Millisecond, "1ms"},
		{316600 * time.Microsecond, "317ms"},
		{999 * time.Millisecond, "999ms"},
		{time.Second, "1.0s"},
		{12340 * time.Millisecond, "12.3s"},
		{59900 * time.Millisecond, "59.9s"},
		{time.Minute, "1m 0s"},
		{61500 * time.Millisecond, "1m 1s"},
		{59*time.Minute + 59*time.Second, "59m 59s"},
		{time.Hour, "1h 0m"},
		{2*time.Hour + 3*time.Minute + 59*time.Second, "2h 3m"},
		{49 * time.Hour, "49h 0m"},
		{-time.Second, "0.00ms"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, FormatDuration(tt.d), "%s", tt.d)
	}
	end := time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)
	start := end.Add(-5 * time.Second)
	require.Equal(t, "5.0s", RunDuration(&start, end))
	require.Equal(t, "not started", RunDuration(nil, end))
}

func TestAlertWanted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		run       FinishedRun
		all, fail bool
	}{
		{"completed", FinishedRun{Status: "completed"}, true, false},
		{"completed, _silent false", FinishedRun{Status: "completed", Result: map[string]any{"_silent": false}}, true, false},
		{"completed, _silent true", FinishedRun{Status: "completed", Result: map[string]any{"_silent": true}}, false, false},
		{"completed, _silent not a boolean", FinishedRun{Status: "completed", Result: map[string]any{"_silent": "yes"}}, true, false},
		{"aborted", FinishedRun{Status: "completed", Result: map[string]any{"aborted": true}}, true, true},
		{"aborted and silent", FinishedRun{Status: "completed", Result: map[string]any{"aborted": true, "_silent": true}}, true, true},
		{"aborted false", FinishedRun{Status: "completed", Result: map[string]any{"aborted": false, "_silent": true}}, false, false},
		{"failed", FinishedRun{Status: "failed"}, true, true},
		{"failed, silent", FinishedRun{Status: "failed", Result: map[string]any{"_silent": true}}, true, true},
		{"cancelled", FinishedRun{Status: "cancelled"}, true, false},
		{"cancelled, silent", FinishedRun{Status: "cancelled", Result: map[string]any{"_silent": true}}, true, false},
		{"running is not terminal", FinishedRun{Status: "running"}, false, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.all, alertWanted(AlertAll, tt.run), "%s in all", tt.name)
		require.Equal(t, tt.fail, alertWanted(AlertFailures, tt.run), "%s in failures", tt.name)
	}
}

// Every interpolated value is escaped in the HTML part and left alone in the text part.
func TestJobEmailEscapesHTML(t *testing.T) {
	t.Parallel()
	const evil = `<script>alert("x")</script> & <b>bold</b>`
	started, completed := span(time.Second)
	team, project := `team"><img src=x>`, "p&q"
	run := FinishedRun{
		ID: "6f1c2d3e-0000-4000-8000-000000000001", JobType: jobtype.AppStoreRatingsSync, Status: "failed",
		TeamID: &team, ProjectID: &project, TriggeredBy: "manual:cli:<eve>@host",
		Error: ptr(evil), Result: map[string]any{"note": evil, "_silent": true},
		StartedAt: started, CompletedAt: completed,
	}
	email, err := renderJobEmail(reportFromRun(run), "https://owl.example.com")
	require.NoError(t, err)

	require.NotContains(t, email.HTML, "<script>")
	require.NotContains(t, email.HTML, "<b>bold</b>")
	require.NotContains(t, email.HTML, "<img")
	require.NotContains(t, email.HTML, "<eve>")
	require.Contains(t, email.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;")
	require.Contains(t, email.HTML, "manual:cli:&lt;eve&gt;@host")
	require.Contains(t, email.HTML, "p&amp;q")
	require.Contains(t, email.HTML, `<pre style="margin:0;white-space:pre-wrap;font-size:12px">{
  &#34;note&#34;: &#34;&lt;script&gt;`)
	require.Contains(t, email.HTML, `<a href="https://owl.example.com/dashboard/jobs">`)
	require.Equal(t, 2, strings.Count(email.HTML, "<table")+strings.Count(email.HTML, "</table>"), "one table")

	require.Contains(t, email.Text, "Error:        "+evil+"\n", "plain text is not escaped")
	require.Contains(t, email.Text, `"note": "<script>alert(\"x\")</script> & <b>bold</b>"`)
	require.Equal(t, "[Owlmetry] ❌ Job failed: App Store Ratings Sync", email.Subject)
}

func TestJobEmailFieldOrder(t *testing.T) {
	t.Parallel()
	started, completed := span(90 * time.Minute)
	team, project := "6f1c2d3e-0000-4000-8000-0000000000aa", "6f1c2d3e-0000-4000-8000-0000000000bb"
	email, err := renderJobEmail(reportFromRun(FinishedRun{
		ID: "6f1c2d3e-0000-4000-8000-000000000001", JobType: jobtype.AppleAdsSync, Status: "completed",
		TeamID: &team, ProjectID: &project, TriggeredBy: "manual:user:6f1c2d3e-0000-4000-8000-0000000000cc",
		Result:    map[string]any{"aborted": true, "abort_reason": "budget exhausted", "_silent": false},
		StartedAt: started, CompletedAt: completed,
	}), "http://localhost:3000")
	require.NoError(t, err)
	require.Equal(t, "[Owlmetry] ⚠️ Job aborted: Apple Ads Sync", email.Subject)
	want := "⚠️ Job aborted: Apple Ads Sync\n\n" +
		"Job:          Apple Ads Sync (apple_ads_sync)\n" +
		"Status:       completed — aborted: budget exhausted\n" +
		"Duration:     1h 30m\n" +
		"Run:          6f1c2d3e-0000-4000-8000-000000000001\n" +
		"Triggered by: manual:user:6f1c2d3e-0000-4000-8000-0000000000cc\n" +
		"Team:         6f1c2d3e-0000-4000-8000-0000000000aa\n" +
		"Project:      6f1c2d3e-0000-4000-8000-0000000000bb\n" +
		"Started:      2026-03-14T07:56:53Z\n" +
		"Finished:     2026-03-14T09:26:53Z\n" +
		"Result:\n{\n  \"abort_reason\": \"budget exhausted\",\n  \"aborted\": true\n}\n" +
		"Link:         http://localhost:3000/dashboard/jobs\n"
	require.Equal(t, want, email.Text)
}

func TestResultIsCutAt16KiB(t *testing.T) {
	t.Parallel()
	ids := make([]any, 3000)
	for i := range ids {
		ids[i] = "ünïcode-" + strings.Repeat("x", 4)
	}
	text := resultText(map[string]any{"ids": ids, "_silent": true})
	require.True(t, strings.HasSuffix(text, "\n… (truncated)"))
	body := strings.TrimSuffix(text, "\n… (truncated)")
	require.LessOrEqual(t, len(body), MaxResultBytes)
	require.Greater(t, len(body), MaxResultBytes-4, "cut at the limit, on a rune boundary")
	require.True(t, strings.HasPrefix(text, "{\n  \"ids\": [\n"))
	require.Equal(t, "{\n  \"n\": 1\n}", resultText(map[string]any{"n": 1, "_silent": false}))
	require.Empty(t, resultText(map[string]any{"_silent": true}), "nothing but _silent is no result")
	require.Empty(t, resultText(nil))
}

func TestRenderNotificationTemplates(t *testing.T) {
	t.Parallel()
	const web = "https://owl.example.com"
	t.Run("issue.digest", func(t *testing.T) {
		t.Parallel()
		long := strings.Repeat("a", 78) + "<bcd>"
		var data map[string]any
		require.NoError(t, json.Unmarshal([]byte(`{"project_name":"Owl <App>","dashboard_url":"`+web+`/dashboard/issues",
			"issues":[{"id":"1","title":"`+long+`","status":"regressed","occurrence_count":12,"unique_user_count":3,"app_name":"Owl iOS"},
			{"id":"2","title":"Crash in <Feed>","status":"new","occurrence_count":1,"unique_user_count":1,"app_name":"Owl & Co"}]}`), &data))
		email, err := renderNotification(storedNotification{
			Type: TypeIssueDigest, Title: "2 issues in Owl <App>", Link: "/dashboard/issues", Data: data,
		}, web)
		require.NoError(t, err)
		require.Equal(t, "[Owlmetry] 🐛 2 issues in Owl <App>", email.Subject)
		require.Contains(t, email.HTML, strings.Repeat("a", 77)+"...")
		require.NotContains(t, email.HTML, strings.Repeat("a", 78))
		require.Contains(t, email.HTML, "🔄 regressed")
		require.Contains(t, email.HTML, "🆕 new")
		require.Contains(t, email.HTML, "Crash in &lt;Feed&gt;")
		require.Contains(t, email.HTML, "Owl &amp; Co")
		require.Contains(t, email.HTML, ">12<")
		require.Contains(t, email.HTML, `href="https://owl.example.com/dashboard/issues"`)
		require.Contains(t, email.HTML, ">View Issues</a>")
		require.Contains(t, email.Text, "View Issues: https://owl.example.com/dashboard/issues")
	})
	for _, tt := range []struct{ typ, button string }{
		{TypeIssueNew, "View issues"}, {TypeAppRatingChanged, "View app"}, {TypeAppReviewNew, "View reviews"},
	} {
		t.Run(tt.typ, func(t *testing.T) {
			t.Parallel()
			email, err := renderNotification(storedNotification{
				Type: tt.typ, Title: "1 new issue, 2 regressed", Body: "🆕 <Crash>\n🔄 Hang & stall",
				Link: "/dashboard/reviews?app_id=1&x=2",
			}, web)
			require.NoError(t, err)
			require.Equal(t, "[Owlmetry] 1 new issue, 2 regressed", email.Subject)
			require.Contains(t, email.HTML, "🆕 &lt;Crash&gt;<br>🔄 Hang &amp; stall")
			require.Contains(t, email.HTML, `href="https://owl.example.com/dashboard/reviews?app_id=1&amp;x=2"`)
			require.Contains(t, email.HTML, ">"+tt.button+"</a>")
			require.Contains(t, email.Text, "🆕 <Crash>\n🔄 Hang & stall\n")
		})
	}
	t.Run("unknown type", func(t *testing.T) {
		t.Parallel()
		_, err := renderNotification(storedNotification{Type: "billing.due", Title: "x"}, web)
		require.ErrorContains(t, err, `no e-mail template for notification type "billing.due"`)
	})
}

func ExampleFormatDuration() {
	fmt.Println(FormatDuration(420 * time.Microsecond))
	fmt.Println(FormatDuration(317 * time.Millisecond))
	fmt.Println(FormatDuration(12340 * time.Millisecond))
	fmt.Println(FormatDuration(4*time.Minute + 5*time.Second))
	fmt.Println(FormatDuration(2*time.Hour + 3*time.Minute))
	// Output:
	// 0.42ms
	// 317ms
	// 12.3s
	// 4m 5s
	// 2h 3m
}
