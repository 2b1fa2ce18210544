// Package cancel implements `owlmetry jobs cancel`.
package cancel

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/follow"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// CancelOptions holds what `owlmetry jobs cancel` needs.
type CancelOptions struct {
	IO        *iostreams.IOStreams
	APIClient func() (*client.Client, error)
	Printer   func() (*cmdutil.Printer, error)
	Follow    cmdutil.FollowFunc

	RunID string
	Wait  cmdutil.WaitOptions
}

// NewCmdCancel builds `owlmetry jobs cancel`. Tests pass runFunc to inspect the parsed
// options without sending anything.
func NewCmdCancel(f *cmdutil.Factory, runFunc func(context.Context, *CancelOptions) error) *cobra.Command {
	opts := &CancelOptions{IO: f.IOStreams, APIClient: f.APIClient, Printer: f.Printer, Follow: f.FollowAPI}
	cmd := &cobra.Command{
		Use:   "cancel <run-id>",
		Short: "Ask a running or queued job run to stop",
		Long: `Ask a job run to stop. A queued run is cancelled at once; a running one stops
at its next checkpoint and ends as cancelled. The run keeps its partial result.
With --wait the command follows the run until it has stopped and exits 0 however
it ended.`,
		Example: `  # Ask a run to stop and return at once
  owlmetry jobs cancel 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f

  # Wait until it has stopped, for example before a deploy
  owlmetry jobs cancel 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f --wait --timeout 2m`,
		Args:              cmdutil.ExactArgs(1, "a run id"),
		ValidArgsFunction: runs.CompleteRunIDs(f, true),
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
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return cancelRun(cmd.Context(), opts)
		},
	}
	opts.Wait.BuildFlags(cmd.Flags(), cmdutil.WaitOptional)
	opts.Wait.RegisterCompletions(cmd)
	return cmd
}

func cancelRun(ctx context.Context, opts *CancelOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	res, err := c.JobRunCancel(ctx, opts.RunID)
	if err != nil {
		if client.IsNotFound(err) {
			return cmdutil.WithHint(cmdutil.Reword(err, "no job run "+opts.RunID), runs.SystemRunHint(opts.RunID))
		}
		return err
	}
	if !opts.Wait.Enabled {
		if err := p.Print(res, cancelled(opts.RunID, res)); err != nil {
			return err
		}
		if res.Status != apitype.StatusCancelled {
			cmdutil.Hintf(opts.IO, p.Format, "the run stops at its next checkpoint; %s", runs.FollowHint(opts.RunID))
		}
		return nil
	}

	// Any end counts as success here: the caller wanted the run stopped.
	fr, err := opts.Follow(ctx, []string{opts.RunID}, opts.Wait, follow.AnyEndIsSuccess)
	if err != nil {
		return err
	}
	doc, err := runs.WithKey(res.Raw, "job_run", fr.Runs[0])
	if err != nil {
		return err
	}
	if err := p.Print(doc, runs.RunDetails(fr.Runs...)); err != nil {
		return err
	}
	return fr.Err() // nil, or an *OutcomeError for a timeout or an interrupt
}

func cancelled(id string, res apitype.CancelResponse) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		switch {
		case !rc.TTY:
			return id
		case res.Status == apitype.StatusCancelled:
			return fmt.Sprintf("Cancelled run %s before it started", id)
		default:
			return fmt.Sprintf("Cancellation requested for run %s", id)
		}
	}
}
