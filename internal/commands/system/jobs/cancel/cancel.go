// Package cancel implements `owlmetry system jobs cancel`.
package cancel

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/follow"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// CancelOptions holds what `owlmetry system jobs cancel` needs.
type CancelOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Follow   shared.FollowFunc
	Database cmdutil.DatabaseOptions

	RunID string
	Wait  cmdutil.WaitOptions
}

// NewCmdCancel builds `owlmetry system jobs cancel`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdCancel(f *cmdutil.Factory, runFunc func(context.Context, *CancelOptions) error) *cobra.Command {
	opts := &CancelOptions{IO: f.IOStreams, Printer: f.Printer, Follow: shared.Follower(f)}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "cancel <run-id>",
		Short: "Ask any job run to stop, system runs included",
		Long: `Request cancellation of a run through the engine. A pending run is cancelled at
once; a running one stops at its next checkpoint on whichever process runs it — a
server replica or a --local run in another terminal — and keeps its partial
result. A run that already ended exits 1. With --wait the command follows the run
until it has stopped and exits 0 whatever its final status.

` + cmdutil.DatabaseHelp,
		Example: `  # Ask a run to stop
  owlmetry system jobs cancel 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f

  # Stop it and wait until it has, for example before a deploy
  owlmetry system jobs cancel 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f --wait --timeout 2m --format json | jq -r .job_run.status`,
		Args: cmdutil.ExactArgs(1, "a run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cmdutil.ParseUUID("run id", args[0])
			if err != nil {
				return err
			}
			opts.RunID = id
			if err := opts.Wait.Validate(cmd.Flags()); err != nil {
				return err
			}
			if err := f.CheckWait(&opts.Wait); err != nil {
				return err
			}
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return cancelRun(cmd.Context(), opts)
		},
	}
	shared.AddWaitFlags(cmd, &opts.Wait)
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func cancelRun(ctx context.Context, opts *CancelOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	run, outcome, err := st.Cancel(ctx, opts.RunID)
	if err != nil {
		return err
	}
	if !opts.Wait.Enabled {
		doc := map[string]any{"cancelled": true, "job_run": run}
		if err := p.Print(doc, requested(run, outcome)); err != nil {
			return err
		}
		if outcome == localjobs.CancelRequested {
			cmdutil.Hintf(opts.IO, p.Format, "the run stops at its next checkpoint; %s", shared.ViewHint(run.ID))
		}
		return nil
	}
	// Any end counts as success here: the caller wanted the run stopped.
	fr, err := opts.Follow(ctx, st, []string{opts.RunID}, opts.Wait, follow.AnyEndIsSuccess)
	if err != nil {
		return err
	}
	doc := map[string]any{"cancelled": true, "job_run": fr.Runs[0]}
	if err := p.Print(doc, shared.RunViews(shared.FinalDetails(ctx, st, fr)...)); err != nil {
		return err
	}
	return shared.WaitErr(fr)
}

// requested is the output of a cancel without --wait: a sentence on a terminal, the run
// id when piped.
func requested(run localjobs.Run, outcome localjobs.CancelOutcome) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		switch {
		case !rc.TTY:
			return run.ID + "\n"
		case outcome == localjobs.CancelDone:
			return fmt.Sprintf("Cancelled run %s before it started\n", run.ID)
		default:
			return fmt.Sprintf("Cancellation requested for run %s\n", run.ID)
		}
	}
}
