package shared

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/localjobs"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// RunList renders `system jobs list` (cli.md §10.2) and the runs `system jobs recover`
// reports.
func RunList(list []localjobs.Run) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			t := tui.Table{Columns: make([]tui.Column, 11)}
			for _, r := range list {
				j := r.JobRun()
				t.AddRow(r.ID, r.JobType, string(r.Status), deref(r.TeamID), deref(r.ProjectID), r.TriggeredBy,
					tui.RawTime(&j.CreatedAt), tui.RawTime(j.StartedAt), tui.RawTime(j.CompletedAt), deref(r.OwnerNode), deref(r.Error))
			}
			return t.Render(false, 0, rc.CS)
		}
		t := tui.Table{Columns: []tui.Column{
			{Header: "id", NoTruncate: true}, {Header: "type"}, {Header: "status", NoTruncate: true},
			{Header: "scope", NoTruncate: true}, {Header: "project", NoTruncate: true}, {Header: "trigger"},
			{Header: "node"}, {Header: "created"}, {Header: "duration"}, {Header: "error"},
		}}
		for _, r := range list {
			j := r.JobRun()
			scope := "system"
			if r.TeamID != nil {
				scope = tui.ShortID(*r.TeamID)
			}
			project := "-"
			if r.ProjectID != nil {
				project = tui.ShortID(*r.ProjectID)
			}
			node := "-"
			if r.OwnerNode != nil {
				node = *r.OwnerNode
			}
			errText := "-"
			if r.Error != nil && *r.Error != "" {
				errText, _, _ = strings.Cut(*r.Error, "\n")
			}
			t.AddRow(tui.ShortID(r.ID), r.JobType, runs.StatusCell(rc.CS, j), scope, project, tui.TriggeredBy(r.TriggeredBy),
				node, rc.CS.Dim(tui.RelativeTime(j.CreatedAt.Time, rc.Now)), runs.DurationCell(j, rc.Now, true), errText)
		}
		return t.Render(true, rc.Width, rc.CS)
	}
}

// RunViews renders `system jobs view` (cli.md §10.3) for each run, separated by an empty
// line: the `jobs view` layout followed by the engine's columns. Waits on DB runs print
// it as their final output.
func RunViews(details ...localjobs.Detail) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		parts := make([]string, 0, len(details))
		for _, d := range details {
			base := runs.RunDetails(d.Run.JobRun())(rc)
			if rc.TTY {
				parts = append(parts, base+engineBlockTTY(d, rc))
			} else {
				parts = append(parts, base+engineLinesPiped(d))
			}
		}
		return strings.Join(parts, "\n")
	}
}

func engineBlockTTY(d localjobs.Detail, rc cmdutil.RenderContext) string {
	cs := rc.CS
	var b strings.Builder
	loc := rc.Now.Location()
	when := func(t *apitype.Time) string {
		return tui.AbsoluteTime(t.Time, loc) + " " + cs.Dim("("+tui.RelativeTime(t.Time, rc.Now)+")")
	}
	line := func(label, value string) {
		fmt.Fprintf(&b, "  %s%s%s\n", label, strings.Repeat(" ", max(1, 12-len(label))), value)
	}
	fmt.Fprintln(&b, cs.Bold("Engine"))
	line("Executor", d.Executor)
	if d.OwnerNode != nil {
		v := *d.OwnerNode
		if d.OwnerInstance != nil {
			v += " (instance " + *d.OwnerInstance + ")"
		}
		line("Owner", v)
	}
	if d.HeartbeatAt != nil {
		v := when(d.HeartbeatAt)
		if d.LeaseExpired {
			v += ", " + cs.Failure("lease expired")
		}
		line("Heartbeat", v)
	}
	if d.CancelRequestedAt != nil {
		v := "requested " + when(d.CancelRequestedAt)
		if d.CancelRequestedBy != nil {
			v += " by " + tui.TriggeredBy(*d.CancelRequestedBy)
		}
		line("Cancel", v)
	}
	if d.ScheduledFor != nil {
		line("Tick", d.ScheduledFor.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if d.RiverJobID != nil {
		v := strconv.FormatInt(*d.RiverJobID, 10)
		if d.RiverState != "" {
			v += " (" + d.RiverState + ")"
		} else {
			v += " (gone)"
		}
		line("River job", v)
	}
	return b.String()
}

func engineLinesPiped(d localjobs.Detail) string {
	river := ""
	if d.RiverJobID != nil {
		river = strconv.FormatInt(*d.RiverJobID, 10)
	}
	lease := ""
	if d.Status == apitype.StatusRunning {
		lease = strconv.FormatBool(d.LeaseExpired)
	}
	rows := [][2]string{
		{"executor", d.Executor}, {"owner_node", deref(d.OwnerNode)}, {"owner_instance", deref(d.OwnerInstance)},
		{"heartbeat_at", tui.RawTime(d.HeartbeatAt)}, {"lease_expired", lease},
		{"cancel_requested_at", tui.RawTime(d.CancelRequestedAt)}, {"cancel_requested_by", deref(d.CancelRequestedBy)},
		{"scheduled_for", tui.RawTime(d.ScheduledFor)}, {"river_job_id", river}, {"river_state", d.RiverState},
	}
	var b strings.Builder
	for _, kv := range rows {
		fmt.Fprintf(&b, "%s\t%s\n", kv[0], tui.Escape(kv[1]))
	}
	return b.String()
}

// Started renders a run `system jobs run` queued (cli.md §7.3): a sentence on a
// terminal, `<run id><TAB><job_type>` piped.
func Started(r localjobs.Run) cmdutil.Renderer {
	return runs.Started(r.JobRun())
}

// AttachedNote is the note printed when --attach adopts an existing run (cli.md §6.13).
func AttachedNote(r localjobs.Run, now time.Time) string {
	return runs.AttachedNote(r.JobRun(), now)
}
