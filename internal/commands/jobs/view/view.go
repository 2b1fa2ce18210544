// Package view implements `owlmetry jobs view`.
package view

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// ViewOptions holds what `owlmetry jobs view` needs.
type ViewOptions struct {
	IO        *iostreams.IOStreams
	APIClient func() (*client.Client, error)
	Printer   func() (*cmdutil.Printer, error)

	RunID string
}

// NewCmdView builds `owlmetry jobs view`.
func NewCmdView(f *cmdutil.Factory, runFunc func(context.Context, *ViewOptions) error) *cobra.Command {
	opts := &ViewOptions{IO: f.IOStreams, APIClient: f.APIClient, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "view <run-id>",
		Short: "Show one job run: status, progress, result and error",
		Long: `Show everything about one job run: its status, who started it, when it ran,
its progress, its result and, for a failed run, its error. System runs are visible
to server owners only, through owlmetry system jobs view.`,
		Example: `  # Look at a run
  owlmetry jobs view 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f

  # Its status, for a script
  owlmetry jobs view 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f --format json | jq -r .status`,
		Args:              cmdutil.ExactArgs(1, "a run id"),
		ValidArgsFunction: runs.CompleteRunIDs(f, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cmdutil.ParseUUID("run id", args[0])
			if err != nil {
				return err
			}
			opts.RunID = id
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return viewRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func viewRun(ctx context.Context, opts *ViewOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	run, err := c.JobRunGet(ctx, opts.RunID)
	if err != nil {
		if client.IsNotFound(err) {
			return cmdutil.WithHint(cmdutil.Reword(err, "no job run "+opts.RunID), runs.SystemRunHint(opts.RunID))
		}
		return err
	}
	return p.Print(run, runs.RunDetails(run))
}
