package shared

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// UTCMinute renders a schedule instant the way every schedule view does: always UTC,
// whatever TZ says, because schedules are UTC (cli.md §10.6).
func UTCMinute(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04") + " UTC"
}

// nextText is `2026-11-30 03:00 UTC (in 14h)`, or `-`.
func nextText(s localjobs.Schedule, now time.Time) string {
	if s.NextRunAt == nil {
		return "-"
	}
	return UTCMinute(s.NextRunAt.Time) + " (" + tui.RelativeTime(s.NextRunAt.Time, now) + ")"
}

// ScheduleList renders `system jobs schedules` (cli.md §10.6).
func ScheduleList(list []localjobs.Schedule) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			return schedulesPiped(list)
		}
		t := tui.Table{Columns: []tui.Column{
			{Header: "type"}, {Header: "cron (utc)"}, {Header: "source", NoTruncate: true}, {Header: "enabled", NoTruncate: true},
			{Header: "next (utc)", NoTruncate: true}, {Header: "last tick"}, {Header: "last run"},
			{Header: "active", NoTruncate: true}, {Header: "fired", NoTruncate: true}, {Header: "skipped", NoTruncate: true},
		}}
		for _, s := range list {
			cron := "manual"
			if s.Cron != nil {
				cron = *s.Cron
			}
			enabled := "yes"
			if !s.Enabled {
				enabled = "no"
			}
			lastTick := "-"
			if s.LastTickAt != nil && s.LastOutcome != nil {
				lastTick = rc.CS.Dim(tui.RelativeTime(s.LastTickAt.Time, rc.Now)) + " " + *s.LastOutcome
			}
			lastRun := "-"
			if lr := s.LastRun; lr != nil {
				lastRun = rc.CS.Status(string(lr.Status)) + " " + rc.CS.Dim(tui.RelativeTime(lr.CreatedAt.Time, rc.Now))
			}
			active := "-"
			if s.ActiveRunID != nil {
				active = tui.ShortID(*s.ActiveRunID)
			}
			t.AddRow(s.JobType, cron, s.Source, enabled, nextText(s, rc.Now), lastTick, lastRun, active,
				strconv.FormatInt(s.FiredCount, 10), strconv.FormatInt(s.SkippedCount, 10))
		}
		return t.Render(true, rc.Width, rc.CS)
	}
}

func schedulesPiped(list []localjobs.Schedule) string {
	t := tui.Table{Columns: make([]tui.Column, 15)}
	for _, s := range list {
		var lastRunID, lastRunStatus string
		if lr := s.LastRun; lr != nil {
			lastRunID, lastRunStatus = lr.ID, string(lr.Status)
		}
		t.AddRow(s.JobType, deref(s.Cron), strconv.FormatBool(s.Enabled), RawTime(s.NextRunAt), RawTime(s.LastTickAt),
			deref(s.LastOutcome), lastRunID, lastRunStatus, deref(s.ActiveRunID),
			strconv.FormatInt(s.FiredCount, 10), strconv.FormatInt(s.SkippedCount, 10), s.Source,
			deref(s.DefaultCron), deref(s.OverrideCron), deref(s.UpdatedBy))
	}
	return t.Render(false, 0, nil)
}

// ScheduleChanged renders the result of a schedule change: one sentence per changed type
// on a terminal (cli.md §10.6), the listing's piped layout otherwise.
func ScheduleChanged(kind localjobs.ScheduleChangeKind, changed []localjobs.Schedule) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			return schedulesPiped(changed)
		}
		var b strings.Builder
		for _, s := range changed {
			cron := ""
			if s.Cron != nil {
				cron = *s.Cron
			}
			next := ""
			if s.NextRunAt != nil {
				next = "; next run " + nextText(s, rc.Now)
			}
			switch {
			case kind == localjobs.ScheduleSet:
				fmt.Fprintf(&b, "Schedule of %s set to %s (UTC)%s\n", s.JobType, cron, next)
			case kind == localjobs.ScheduleEnable:
				fmt.Fprintf(&b, "Schedule of %s enabled: %s (UTC)%s\n", s.JobType, cron, next)
			case kind == localjobs.ScheduleDisable:
				fmt.Fprintf(&b, "Schedule of %s disabled\n", s.JobType)
			case cron == "":
				fmt.Fprintf(&b, "Schedule of %s reset: manual only\n", s.JobType)
			default:
				fmt.Fprintf(&b, "Schedule of %s reset to its default %s (UTC)%s\n", s.JobType, cron, next)
			}
		}
		return b.String()
	}
}

// ScheduleAppliedNote follows every change.
const ScheduleAppliedNote = "running servers apply it from their next minute tick"

// ScheduleChange is what a schedule change command asks for.
type ScheduleChange struct {
	Kind    localjobs.ScheduleChangeKind
	JobType string
	Cron    string
	// All resets every type (reset --all).
	All bool
}

// ApplyScheduleChange writes the change in one transaction and prints the changed
// schedules and the note that servers pick it up by themselves.
func ApplyScheduleChange(ctx context.Context, open StoreFunc, printer func() (*cmdutil.Printer, error), ios *iostreams.IOStreams, ch ScheduleChange) error {
	p, err := printer()
	if err != nil {
		return err
	}
	st, err := open(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	var changed []localjobs.Schedule
	if ch.All {
		changed, err = st.ResetAllSchedules(ctx)
	} else {
		var s localjobs.Schedule
		s, err = st.ChangeSchedule(ctx, ch.JobType, ch.Kind, ch.Cron)
		changed = []localjobs.Schedule{s}
	}
	if err != nil {
		return UsageError(err)
	}
	if err := p.Print(struct {
		Schedules []localjobs.Schedule `json:"schedules"`
	}{changed}, ScheduleChanged(ch.Kind, changed)); err != nil {
		return err
	}
	cmdutil.Notef(ios, p.Format, "%s", ScheduleAppliedNote)
	return nil
}

// ParseScheduleType checks a type a schedule change names: a registry type that can be
// scheduled.
func ParseScheduleType(value string) (string, error) {
	name, err := ParseJobType(value)
	if err != nil {
		return "", err
	}
	if err := localjobs.CheckScheduleType(name); err != nil {
		return "", cmdutil.FlagErrorWrap(err)
	}
	return name, nil
}
