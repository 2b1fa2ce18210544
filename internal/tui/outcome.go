package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// The outcome names of follow.Outcome, repeated as plain strings because this package
// does not import follow.
const (
	OutcomeSucceeded   = "succeeded"
	OutcomeAborted     = "aborted"
	OutcomeFailed      = "failed"
	OutcomeCancelled   = "cancelled"
	OutcomeTimedOut    = "timed_out"
	OutcomeInterrupted = "interrupted"
	OutcomeLost        = "lost"
)

// Glyph is the status mark of cli.md §4.5, shown only on a terminal.
func Glyph(outcome string) string {
	switch outcome {
	case OutcomeSucceeded:
		return "✓"
	case OutcomeFailed, OutcomeLost:
		return "✗"
	case OutcomeCancelled:
		return "⊘"
	case OutcomeAborted:
		return "!"
	}
	return "…"
}

// OutcomeLine is the sentence printed on stderr for one run when a wait ends
// (cli.md §6.8). On a terminal it starts with a coloured glyph and names the label and
// short id; piped it names the job type and full id, without glyph or colour.
func OutcomeLine(run apitype.JobRun, outcome string, now time.Time, tty bool, cs *iostreams.ColorScheme) string {
	name, id := run.JobType, run.ID
	if tty {
		name, id = jobtype.LabelOf(run.JobType), ShortID(run.ID)
	}
	took := outcomeDuration(run, now)
	var body string
	switch outcome {
	case OutcomeSucceeded:
		body = fmt.Sprintf("%s in %s", run.Status, took)
		if run.Status != apitype.StatusCompleted {
			body = fmt.Sprintf("%s after %s", run.Status, took)
		}
		if n, ok := ResultErrors(run); ok {
			body += fmt.Sprintf(" (%d errors)", n)
		}
	case OutcomeAborted:
		body = "completed but aborted after " + took
		if r := run.AbortReason(); r != "" {
			body += ": " + r
		}
	case OutcomeFailed:
		body = "failed after " + took
		if run.Error != nil && *run.Error != "" {
			body += ": " + firstLine(*run.Error)
		}
	case OutcomeCancelled:
		body = "cancelled after " + took
	case OutcomeLost:
		body = fmt.Sprintf("still %s after %s; the server stopped answering", run.Status, took)
	default:
		body = fmt.Sprintf("still %s after %s", run.Status, took)
	}
	line := fmt.Sprintf("%s %s %s", name, id, body)
	if !tty {
		return line
	}
	glyph := Glyph(outcome)
	if cs != nil {
		switch outcome {
		case OutcomeSucceeded:
			glyph = cs.Success(glyph)
		case OutcomeFailed, OutcomeLost:
			glyph = cs.Failure(glyph)
		case OutcomeCancelled, OutcomeAborted:
			glyph = cs.Warning(glyph)
		default:
			glyph = cs.Dim(glyph)
		}
	}
	return glyph + " " + line
}

// outcomeDuration is the run's duration, or for a run that never started the time
// since it was created.
func outcomeDuration(run apitype.JobRun, now time.Time) string {
	if d, ok := RunDuration(run, now); ok {
		return Duration(d)
	}
	if !run.CreatedAt.IsZero() {
		end := now
		if run.CompletedAt != nil {
			end = run.CompletedAt.Time
		}
		return Duration(end.Sub(run.CreatedAt.Time))
	}
	return Duration(0)
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
