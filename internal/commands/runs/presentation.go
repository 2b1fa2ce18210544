// Package runs holds what the job commands and the sync commands that start runs
// have in common: the renderers of runs (lists, detail views, "started" lines) and the
// attach and wait steps that follow a start.
package runs

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// StatusCell is a run's status for a terminal: coloured, and `aborted` for a completed
// run whose result says so.
func StatusCell(cs *iostreams.ColorScheme, run apitype.JobRun) string {
	return cs.Status(tui.StatusWord(run))
}

// orDash renders an absent value as `-` on a terminal and as an empty field when piped.
func orDash(s string, tty bool) string {
	if s == "" && tty {
		return "-"
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ProgressCell is the PROGRESS column: a percentage, `<n> processed`, or `-`.
func ProgressCell(p *apitype.Progress) string {
	if p == nil {
		return "-"
	}
	if pct, ok := tui.Percent(p); ok {
		return fmt.Sprintf("%d%%", pct)
	}
	return fmt.Sprintf("%d processed", p.Processed)
}

// DurationCell is a run's duration: human on a terminal, integer milliseconds piped,
// `-`/empty when it never started.
func DurationCell(run apitype.JobRun, now time.Time, tty bool) string {
	d, ok := tui.RunDuration(run, now)
	switch {
	case !ok:
		return orDash("", tty)
	case tty:
		return tui.Duration(d)
	default:
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
}

// RunList renders `jobs list` (cli.md §7.1).
func RunList(runs []apitype.JobRun) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			t := tui.Table{Columns: make([]tui.Column, 8)}
			for _, r := range runs {
				t.AddRow(r.ID, r.JobType, string(r.Status), deref(r.ProjectID), r.TriggeredBy,
					tui.RawTime(&r.CreatedAt), tui.RawTime(r.StartedAt), tui.RawTime(r.CompletedAt))
			}
			return t.Render(false, 0, rc.CS)
		}
		t := tui.Table{Columns: []tui.Column{
			{Header: "id", NoTruncate: true}, {Header: "type"}, {Header: "status", NoTruncate: true},
			{Header: "project", NoTruncate: true}, {Header: "trigger"}, {Header: "progress"},
			{Header: "created"}, {Header: "duration"},
		}}
		for _, r := range runs {
			project := "-"
			if r.ProjectID != nil {
				project = tui.ShortID(*r.ProjectID)
			}
			t.AddRow(tui.ShortID(r.ID), r.JobType, StatusCell(rc.CS, r), project, tui.TriggeredBy(r.TriggeredBy),
				ProgressCell(r.Progress), rc.CS.Dim(tui.RelativeTime(r.CreatedAt.Time, rc.Now)), DurationCell(r, rc.Now, true))
		}
		return t.Render(true, rc.Width, rc.CS)
	}
}

// RunDetails renders the `jobs view` of each run (cli.md §7.2), separated by an empty
// line. Waits print it as their final output.
func RunDetails(runs ...apitype.JobRun) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		parts := make([]string, 0, len(runs))
		for _, r := range runs {
			if rc.TTY {
				parts = append(parts, runDetailTTY(r, rc))
			} else {
				parts = append(parts, runDetailPiped(r, rc.Now))
			}
		}
		return strings.Join(parts, "\n")
	}
}

const labelWidth = 12

func runDetailTTY(r apitype.JobRun, rc cmdutil.RenderContext) string {
	cs := rc.CS
	var b strings.Builder
	line := func(label, value string) {
		fmt.Fprintf(&b, "%s%s%s\n", cs.Bold(label), strings.Repeat(" ", max(1, labelWidth-len(label))), value)
	}
	loc := rc.Now.Location()
	when := func(t time.Time) string {
		return tui.AbsoluteTime(t, loc) + " " + cs.Dim("("+tui.RelativeTime(t, rc.Now)+")")
	}
	fmt.Fprintf(&b, "%s (%s)\n", cs.Bold(jobtype.LabelOf(r.JobType)), r.JobType)
	line("ID", r.ID)
	line("Status", StatusCell(cs, r))
	if r.TeamID != nil {
		line("Team", *r.TeamID)
	}
	if r.ProjectID != nil {
		line("Project", *r.ProjectID)
	}
	line("Triggered", tui.TriggeredBy(r.TriggeredBy))
	notify := "no"
	if r.Notify {
		notify = "yes"
	}
	line("Notify", notify)
	line("Created", when(r.CreatedAt.Time))
	if r.StartedAt != nil {
		line("Started", when(r.StartedAt.Time))
	}
	if r.CompletedAt != nil {
		line("Completed", when(r.CompletedAt.Time))
	}
	if r.StartedAt != nil {
		line("Duration", DurationCell(r, rc.Now, true))
	}
	if r.CancelRequestedAt != nil {
		line("Cancel", "requested "+when(r.CancelRequestedAt.Time))
	}
	if p := r.Progress; p != nil {
		v := tui.ProgressText(p)
		if p.Message != "" {
			v += " " + p.Message
		}
		if in := p.Inner; in != nil {
			v += fmt.Sprintf(" (%d/%d %s)", in.Processed, in.Total, in.Message)
		}
		line("Progress", strings.TrimSpace(v))
	}
	if r.Aborted() {
		line("Aborted", cs.Warning(orDash(r.AbortReason(), true)))
	}
	if r.Error != nil && *r.Error != "" {
		line("Error", cs.Failure(*r.Error))
	}
	block(&b, cs, "Result", r.Result)
	block(&b, cs, "Params", r.Params)
	return b.String()
}

// block prints an object's keys sorted and aligned, `_silent` left out.
func block(b *strings.Builder, cs *iostreams.ColorScheme, title string, raw json.RawMessage) {
	var obj map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &obj) != nil {
		return
	}
	delete(obj, "_silent")
	if len(obj) == 0 {
		return
	}
	keys := make([]string, 0, len(obj))
	w := 0
	for k := range obj {
		keys = append(keys, k)
		w = max(w, len(k))
	}
	sort.Strings(keys)
	fmt.Fprintln(b, cs.Bold(title))
	for _, k := range keys {
		fmt.Fprintf(b, "  %s%s  %s\n", k, strings.Repeat(" ", w-len(k)), tui.JSONValue(obj[k]))
	}
}

func compact(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	return tui.JSONValue(raw)
}

func runDetailPiped(r apitype.JobRun, now time.Time) string {
	var processed, total, message string
	if p := r.Progress; p != nil {
		processed, total, message = strconv.FormatInt(p.Processed, 10), strconv.FormatInt(p.Total, 10), p.Message
	}
	aborted := ""
	if r.Status == apitype.StatusCompleted {
		aborted = strconv.FormatBool(r.Aborted())
	}
	rows := [][2]string{
		{"id", r.ID}, {"job_type", r.JobType}, {"status", string(r.Status)},
		{"team_id", deref(r.TeamID)}, {"project_id", deref(r.ProjectID)},
		{"triggered_by", r.TriggeredBy}, {"notify", strconv.FormatBool(r.Notify)},
		{"created_at", tui.RawTime(&r.CreatedAt)}, {"started_at", tui.RawTime(r.StartedAt)},
		{"completed_at", tui.RawTime(r.CompletedAt)}, {"duration_ms", DurationCell(r, now, false)},
		{"progress_processed", processed}, {"progress_total", total}, {"progress_message", message},
		{"aborted", aborted}, {"abort_reason", r.AbortReason()}, {"error", deref(r.Error)},
		{"result", compact(r.Result)}, {"params", compact(r.Params)},
	}
	var b strings.Builder
	for _, kv := range rows {
		fmt.Fprintf(&b, "%s\t%s\n", kv[0], tui.Escape(kv[1]))
	}
	return b.String()
}

// Started renders a run that a command started (cli.md §7.3): a sentence on a terminal,
// `<run id><TAB><job_type>` when piped.
func Started(runs ...apitype.JobRun) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		var b strings.Builder
		for _, r := range runs {
			if rc.TTY {
				fmt.Fprintf(&b, "Started %s run %s (%s)\n", r.JobType, r.ID, StatusCell(rc.CS, r))
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", r.ID, r.JobType)
			}
		}
		return b.String()
	}
}

// FollowHint is the hint printed after a start without --wait.
func FollowHint(ids ...string) string {
	return "follow it: owlmetry jobs wait " + strings.Join(ids, " ")
}

// SystemRunHint is the hint of a 404 for a run id (cli.md §5.4).
func SystemRunHint(id string) string { return cmdutil.SystemRunHint(id) }

// AttachedNote is the note printed when --attach adopts an existing run (cli.md §6.13).
func AttachedNote(run apitype.JobRun, now time.Time) string {
	since := ""
	switch {
	case run.StartedAt != nil:
		since = ", started " + tui.RelativeTime(run.StartedAt.Time, now)
	default:
		since = ", created " + tui.RelativeTime(run.CreatedAt.Time, now)
	}
	return fmt.Sprintf("attached to existing run %s (%s%s)", tui.ShortID(run.ID), run.Status, since)
}

// WithKey returns the JSON object raw with key set to v, keeping every other field as
// received.
func WithKey(raw json.RawMessage, key string, v any) (json.RawMessage, error) {
	doc := map[string]json.RawMessage{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("decode server response: %w", err)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	doc[key] = b
	return json.Marshal(doc)
}
