package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// MaxResultBytes is where the Result field of a job e-mail is cut (engine.md §14.5).
const MaxResultBytes = 16 << 10

// truncatedMark ends a cut Result.
const truncatedMark = "… (truncated)"

// message is one rendered e-mail: a plain-text part first, an HTML part second.
type message struct {
	To      []string
	Subject string
	Text    string
	HTML    string
}

// jobReport is what an e-mail about a finished run shows. It is built from a FinishedRun
// for system alerts and from a job.completed notification row for user e-mails.
type jobReport struct {
	RunID       string
	JobType     string
	Label       string
	Status      string
	Duration    string
	TriggeredBy string
	TeamID      string
	ProjectID   string
	StartedAt   *time.Time
	CompletedAt *time.Time
	Error       string
	Result      map[string]any
}

func reportFromRun(run FinishedRun) jobReport {
	r := jobReport{
		RunID: run.ID, JobType: run.JobType, Label: jobtype.LabelOf(run.JobType), Status: run.Status,
		Duration: RunDuration(run.StartedAt, run.CompletedAt), TriggeredBy: run.TriggeredBy,
		StartedAt: run.StartedAt, Result: run.Result,
	}
	completed := run.CompletedAt
	r.CompletedAt = &completed
	if run.TeamID != nil {
		r.TeamID = *run.TeamID
	}
	if run.ProjectID != nil {
		r.ProjectID = *run.ProjectID
	}
	if run.Error != nil {
		r.Error = *run.Error
	}
	return r
}

// aborted reports a completed run whose result says aborted: true (engine.md §8).
func (r jobReport) aborted() bool {
	return r.Status == string(apitype.StatusCompleted) && resultTrue(r.Result, "aborted")
}

func (r jobReport) abortReason() string {
	s, _ := r.Result["abort_reason"].(string)
	return s
}

// outcome is the (emoji, word) pair of engine.md §14.5.
func (r jobReport) outcome() (string, string) {
	switch {
	case r.aborted():
		return "⚠️", "aborted"
	case r.Status == string(apitype.StatusCompleted):
		return "✅", "completed"
	case r.Status == string(apitype.StatusFailed):
		return "❌", "failed"
	case r.Status == string(apitype.StatusCancelled):
		return "🚫", "cancelled"
	}
	return "ℹ️", r.Status
}

func resultTrue(result map[string]any, key string) bool {
	b, _ := result[key].(bool)
	return b
}

// field is one row of the two-column table of engine.md §14.5.
type field struct {
	Name  string
	Value string
	// Block values (the result) go on their own lines in text and in <pre> in HTML.
	Block bool
	// URL makes the value a link in HTML.
	URL string
}

const rfc3339UTC = "2006-01-02T15:04:05Z07:00"

func (r jobReport) fields(webAppURL string) []field {
	var fs []field
	add := func(name, value string) { fs = append(fs, field{Name: name, Value: value}) }
	add("Job", fmt.Sprintf("%s (%s)", r.Label, r.JobType))
	status := r.Status
	if r.aborted() {
		status += " — aborted"
		if reason := r.abortReason(); reason != "" {
			status += ": " + reason
		}
	}
	add("Status", status)
	add("Duration", r.Duration)
	add("Run", r.RunID)
	if r.TriggeredBy != "" {
		add("Triggered by", r.TriggeredBy)
	}
	if r.TeamID != "" {
		add("Team", r.TeamID)
	}
	if r.ProjectID != "" {
		add("Project", r.ProjectID)
	}
	if r.StartedAt != nil {
		add("Started", r.StartedAt.UTC().Format(rfc3339UTC))
	} else if r.CompletedAt != nil || r.Duration == NotStarted {
		add("Started", NotStarted)
	}
	if r.CompletedAt != nil {
		add("Finished", r.CompletedAt.UTC().Format(rfc3339UTC))
	}
	if r.Status == string(apitype.StatusFailed) && r.Error != "" {
		add("Error", r.Error)
	}
	if res := resultText(r.Result); res != "" {
		fs = append(fs, field{Name: "Result", Value: res, Block: true})
	}
	if r.TeamID != "" {
		u := webAppURL + "/dashboard/jobs"
		fs = append(fs, field{Name: "Link", Value: u, URL: u})
	} else {
		add("Link", "owlmetry system jobs view "+r.RunID)
	}
	return fs
}

// resultText pretty-prints a result without _silent, cut at MaxResultBytes. An empty
// result gives "".
func resultText(result map[string]any) string {
	if len(result) == 0 {
		return ""
	}
	shown := make(map[string]any, len(result))
	for k, v := range result {
		if k != "_silent" {
			shown[k] = v
		}
	}
	if len(shown) == 0 {
		return ""
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // escaping is the HTML renderer's job, and text stays readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(shown); err != nil {
		return fmt.Sprintf("(result not printable: %v)", err)
	}
	return truncateBytes(strings.TrimRight(buf.String(), "\n"), MaxResultBytes)
}

// truncateBytes cuts s to at most n bytes on a rune boundary and marks the cut.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "\n" + truncatedMark
}

// renderJobEmail renders a system alert or a job.completed e-mail (engine.md §14.5).
func renderJobEmail(r jobReport, webAppURL string) (message, error) {
	emoji, outcome := r.outcome()
	subject := fmt.Sprintf("[Owlmetry] %s Job %s: %s", emoji, outcome, r.Label)
	heading := fmt.Sprintf("%s Job %s: %s", emoji, outcome, r.Label)
	fs := r.fields(webAppURL)

	var text strings.Builder
	text.WriteString(heading + "\n\n")
	const width = len("Triggered by:") + 1
	for _, f := range fs {
		if f.Block {
			text.WriteString(f.Name + ":\n" + f.Value + "\n")
			continue
		}
		value := strings.ReplaceAll(f.Value, "\n", "\n"+strings.Repeat(" ", width))
		fmt.Fprintf(&text, "%-*s%s\n", width, f.Name+":", value)
	}

	var html bytes.Buffer
	err := templates.ExecuteTemplate(&html, "job", map[string]any{
		"Subject": subject, "Heading": heading, "Fields": fs,
	})
	if err != nil {
		return message{}, fmt.Errorf("render job e-mail: %w", err)
	}
	return message{Subject: subject, Text: text.String(), HTML: html.String()}, nil
}

// jobCompleted builds the job.completed inbox notification of engine.md §14.3.
func jobCompleted(run FinishedRun, recipient string) Notification {
	r := reportFromRun(run)
	emoji, outcome := r.outcome()
	var body string
	switch outcome {
	case "completed":
		body = "Finished in " + r.Duration
	case "aborted":
		body = withDetail("Aborted after "+r.Duration, r.abortReason())
	case "cancelled":
		body = "Cancelled after " + r.Duration
	default:
		body = withDetail("Failed after "+r.Duration, r.Error)
	}
	data := map[string]any{
		"job_type": run.JobType,
		"label":    r.Label,
		"run_id":   run.ID,
		"status":   run.Status,
		"duration": r.Duration,
	}
	if run.Error != nil {
		data["error"] = *run.Error
	}
	if run.Result != nil {
		data["result"] = run.Result
	}
	return Notification{
		Type:       TypeJobCompleted,
		TeamID:     run.TeamID,
		Recipients: []string{recipient},
		Title:      fmt.Sprintf("%s %s %s", emoji, r.Label, outcome),
		Body:       body,
		Link:       "/dashboard/jobs",
		Data:       data,
	}
}

func withDetail(s, detail string) string {
	if detail == "" {
		return s
	}
	return s + ": " + detail
}

// storedNotification is a notifications row as the outbox reads it at send time.
type storedNotification struct {
	Type  string
	Title string
	Body  string
	Link  string
	// Data is decoded with json.Number, so counts print exactly as stored.
	Data   map[string]any
	TeamID string
	// Run is the job_runs row of a job.completed notification, when it still exists.
	Run *storedRun
}

// storedRun is what a job.completed e-mail takes from the run row itself.
type storedRun struct {
	TriggeredBy string
	TeamID      *string
	ProjectID   *string
	StartedAt   *time.Time
	CompletedAt *time.Time
}

// buttonLabels are the call-to-action words of jobs.md §3.7 rule 4.
var buttonLabels = map[string]string{
	TypeIssueNew:         "View issues",
	TypeAppRatingChanged: "View app",
	TypeAppReviewNew:     "View reviews",
}

// renderNotification renders the e-mail of a stored notification (jobs.md §3.7 rule 4;
// job.completed uses engine.md §14.5).
func renderNotification(n storedNotification, webAppURL string) (message, error) {
	switch n.Type {
	case TypeJobCompleted:
		return renderJobEmail(reportFromNotification(n), webAppURL)
	case TypeIssueDigest:
		return renderDigest(n, webAppURL)
	case TypeIssueNew, TypeAppRatingChanged, TypeAppReviewNew:
		subject := "[Owlmetry] " + n.Title
		link := ""
		if n.Link != "" {
			link = webAppURL + n.Link
		}
		label := buttonLabels[n.Type]
		var text strings.Builder
		text.WriteString(n.Title + "\n\n")
		if n.Body != "" {
			text.WriteString(n.Body + "\n\n")
		}
		if link != "" {
			text.WriteString(label + ": " + link + "\n")
		}
		var html bytes.Buffer
		err := templates.ExecuteTemplate(&html, "simple", map[string]any{
			"Subject": subject, "Heading": n.Title, "Lines": strings.Split(n.Body, "\n"),
			"HasBody": n.Body != "", "Button": label, "URL": link,
		})
		if err != nil {
			return message{}, fmt.Errorf("render %s e-mail: %w", n.Type, err)
		}
		return message{Subject: subject, Text: text.String(), HTML: html.String()}, nil
	}
	return message{}, fmt.Errorf("no e-mail template for notification type %q", n.Type)
}

func reportFromNotification(n storedNotification) jobReport {
	d := n.Data
	r := jobReport{
		RunID:    stringOf(d["run_id"]),
		JobType:  stringOf(d["job_type"]),
		Label:    stringOf(d["label"]),
		Status:   stringOf(d["status"]),
		Duration: stringOf(d["duration"]),
		Error:    stringOf(d["error"]),
		TeamID:   n.TeamID,
	}
	if r.Label == "" {
		r.Label = jobtype.LabelOf(r.JobType)
	}
	if res, ok := d["result"].(map[string]any); ok {
		r.Result = res
	}
	if run := n.Run; run != nil {
		r.TriggeredBy = run.TriggeredBy
		if run.TeamID != nil {
			r.TeamID = *run.TeamID
		}
		if run.ProjectID != nil {
			r.ProjectID = *run.ProjectID
		}
		r.StartedAt = run.StartedAt
		r.CompletedAt = run.CompletedAt
	}
	return r
}

// digestIssue is one row of the issue.digest table.
type digestIssue struct {
	Status      string
	Title       string
	Occurrences string
	Users       string
	App         string
}

var statusIcons = map[string]string{"new": "🆕", "regressed": "🔄"}

// digestTitleMax is where an issue title is cut in the digest table (jobs.md §3.7 rule 4).
const digestTitleMax = 80

func digestTitle(s string) string {
	if utf8.RuneCountInString(s) <= digestTitleMax {
		return s
	}
	return string([]rune(s)[:digestTitleMax-3]) + "..."
}

func renderDigest(n storedNotification, webAppURL string) (message, error) {
	subject := "[Owlmetry] 🐛 " + n.Title
	link := stringOf(n.Data["dashboard_url"])
	if link == "" && n.Link != "" {
		link = webAppURL + n.Link
	}
	var issues []digestIssue
	list, _ := n.Data["issues"].([]any)
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		status := stringOf(m["status"])
		icon := statusIcons[status]
		if icon == "" {
			icon = "•"
		}
		issues = append(issues, digestIssue{
			Status:      icon + " " + status,
			Title:       digestTitle(stringOf(m["title"])),
			Occurrences: stringOf(m["occurrence_count"]),
			Users:       stringOf(m["unique_user_count"]),
			App:         stringOf(m["app_name"]),
		})
	}
	var text strings.Builder
	text.WriteString("🐛 " + n.Title + "\n\n")
	for _, is := range issues {
		fmt.Fprintf(&text, "%s  %s  (%s occurrences, %s users, %s)\n", is.Status, is.Title, is.Occurrences, is.Users, is.App)
	}
	if link != "" {
		text.WriteString("\nView Issues: " + link + "\n")
	}
	var html bytes.Buffer
	err := templates.ExecuteTemplate(&html, "digest", map[string]any{
		"Subject": subject, "Heading": "🐛 " + n.Title, "Issues": issues, "URL": link,
	})
	if err != nil {
		return message{}, fmt.Errorf("render issue.digest e-mail: %w", err)
	}
	return message{Subject: subject, Text: text.String(), HTML: html.String()}, nil
}

// stringOf prints a decoded JSON scalar; objects and arrays print as JSON.
func stringOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64, bool, int, int64:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// dict builds a map from key, value pairs so a template can call a sub-template with
// more than one value.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		m[k] = kv[i+1]
	}
	return m
}

// templates hold the HTML parts. html/template escapes every interpolated value for its
// context, so a job error or an issue title cannot inject markup.
var templates = template.Must(template.New("emails").Funcs(template.FuncMap{"dict": dict}).Parse(`
{{define "head"}}<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2328">
<div style="max-width:680px;margin:0 auto;background:#ffffff;border:1px solid #d8dee4;border-radius:8px;padding:24px">
<h1 style="font-size:18px;margin:0 0 16px">{{.Heading}}</h1>
{{end}}
{{define "foot"}}</div></body></html>
{{end}}
{{define "button"}}<p style="margin:24px 0 0"><a href="{{.URL}}" style="display:inline-block;background:#1f6feb;color:#ffffff;text-decoration:none;padding:10px 16px;border-radius:6px">{{.Label}}</a></p>{{end}}
{{define "job"}}{{template "head" .}}<table cellpadding="6" cellspacing="0" style="border-collapse:collapse;width:100%;font-size:14px">
{{range .Fields}}<tr><th align="left" valign="top" style="white-space:nowrap;color:#59636e;border-bottom:1px solid #eef0f2">{{.Name}}</th><td style="border-bottom:1px solid #eef0f2">{{if .Block}}<pre style="margin:0;white-space:pre-wrap;font-size:12px">{{.Value}}</pre>{{else if .URL}}<a href="{{.URL}}">{{.Value}}</a>{{else}}{{.Value}}{{end}}</td></tr>
{{end}}</table>
{{template "foot" .}}{{end}}
{{define "simple"}}{{template "head" .}}{{if .HasBody}}<p style="font-size:14px;line-height:1.5">{{range $i, $l := .Lines}}{{if $i}}<br>{{end}}{{$l}}{{end}}</p>{{end}}
{{if .URL}}{{template "button" (dict "URL" .URL "Label" .Button)}}{{end}}
{{template "foot" .}}{{end}}
{{define "digest"}}{{template "head" .}}<table cellpadding="6" cellspacing="0" style="border-collapse:collapse;width:100%;font-size:14px">
<tr><th align="left">Status</th><th align="left">Issue</th><th align="right">Occurrences</th><th align="right">Users</th><th align="left">App</th></tr>
{{range .Issues}}<tr><td style="white-space:nowrap">{{.Status}}</td><td>{{.Title}}</td><td align="right">{{.Occurrences}}</td><td align="right">{{.Users}}</td><td>{{.App}}</td></tr>
{{end}}</table>
{{if .URL}}{{template "button" (dict "URL" .URL "Label" "View Issues")}}{{end}}
{{template "foot" .}}{{end}}
`))
