package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/follow"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// FollowFunc is the signature of Factory.FollowAPI, so commands can hold it as a field.
type FollowFunc func(ctx context.Context, ids []string, w WaitOptions, opts ...follow.Option) (FollowResult, error)

// FollowResult is a finished wait.
type FollowResult struct {
	follow.Result
	// Format is the output format the wait ran under.
	Format Format
}

// FollowAPI follows runs through the API until they end (cli.md §6): the event stream
// with polling as fallback, the progress display of §6.4, the timeout and interrupt
// rules of the wait flags, and in table format the outcome lines of §6.8 on stderr.
// The returned result's Err is the error to return after printing the result.
func (f *Factory) FollowAPI(ctx context.Context, ids []string, w WaitOptions, opts ...follow.Option) (FollowResult, error) {
	format, err := f.Format()
	if err != nil {
		return FollowResult{}, err
	}
	c, err := f.APIClient()
	if err != nil {
		return FollowResult{}, err
	}
	rep, err := NewReporter(ctx, f.IOStreams, format, w.Progress, f.NowFunc)
	if err != nil {
		return FollowResult{}, err
	}
	o := follow.Options{
		Timeout:           w.Timeout,
		CancelOnInterrupt: w.CancelOnInterrupt,
		Signals:           f.Signals,
		NowFunc:           f.NowFunc,
	}
	for _, opt := range opts {
		opt(&o)
	}
	res, err := follow.Follow(ctx, ids, c.RunSource(w.PollInterval), rep, o)
	var runErr *client.RunError
	if errors.As(err, &runErr) && client.IsNotFound(err) {
		return FollowResult{}, WithHint(Reword(err, "no job run "+runErr.RunID), SystemRunHint(runErr.RunID))
	}
	if err != nil {
		return FollowResult{}, err
	}
	fr := FollowResult{Result: res, Format: format}
	if format == FormatTable {
		fr.PrintOutcomes(f.IOStreams)
	}
	return fr, nil
}

// PrintOutcomes writes one outcome line per run on stderr (cli.md §6.8).
func (r FollowResult) PrintOutcomes(ios *iostreams.IOStreams) {
	tty := ios.IsStderrTTY()
	cs := ios.ColorScheme(iostreams.Stderr)
	for i, run := range r.Runs {
		fmt.Fprintln(ios.ErrOut, tui.OutcomeLine(run, string(r.Outcomes[i]), r.EndedAt, tty, cs))
	}
}

// Err is nil when every run succeeded, else an *OutcomeError with the exit code of
// cli.md §6.9, the re-attach hint for runs still active, and the note that an interrupt
// left the runs alone.
func (r FollowResult) Err() error {
	code := r.ExitCode()
	if code == 0 {
		return nil
	}
	e := &OutcomeError{Code: ExitCode(code), Name: r.Code(), Reported: r.Format == FormatTable}
	var bad []string
	for i, o := range r.Outcomes {
		if o != follow.Succeeded {
			bad = append(bad, r.Runs[i].ID)
		}
	}
	e.RunIDs = bad
	if len(e.RunIDs) == 0 {
		e.RunIDs = r.IDs()
	}
	if open := r.Unfinished(); len(open) > 0 {
		e.Hint = "re-attach: owlmetry jobs wait " + strings.Join(open, " ")
	}
	switch {
	case r.Interrupted:
		e.Message = "interrupted"
		if !r.CancelRequested {
			e.Notes = append(e.Notes, "note: the run was not cancelled")
			if len(r.Runs) > 1 {
				e.Notes[len(e.Notes)-1] = "note: the runs were not cancelled"
			}
		}
	default:
		e.Message = r.message()
	}
	return e
}

// message is the error text of a wait that ended badly, for the JSON error object.
func (r FollowResult) message() string {
	for i, o := range r.Outcomes {
		run := r.Runs[i]
		switch o {
		case follow.Failed:
			msg := fmt.Sprintf("%s run %s failed", run.JobType, run.ID)
			if run.Error != nil && *run.Error != "" {
				msg += ": " + *run.Error
			}
			return msg
		case follow.Cancelled:
			return fmt.Sprintf("%s run %s was cancelled", run.JobType, run.ID)
		case follow.Aborted:
			msg := fmt.Sprintf("%s run %s completed but aborted", run.JobType, run.ID)
			if reason := run.AbortReason(); reason != "" {
				msg += ": " + reason
			}
			return msg
		case follow.Lost:
			return fmt.Sprintf("lost contact with the server while waiting for run %s", run.ID)
		}
	}
	n := len(r.Unfinished())
	if n == 1 {
		return "wait timed out with 1 run still active"
	}
	return fmt.Sprintf("wait timed out with %d runs still active", n)
}

// SystemRunHint is the hint of a 404 for a run id (cli.md §5.4).
func SystemRunHint(id string) string {
	return "system runs are visible to server owners only: owlmetry system jobs view " + id
}
