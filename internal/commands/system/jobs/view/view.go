// Package view implements `owlmetry system jobs view`.
package view

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// ViewOptions holds what `owlmetry system jobs view` needs.
type ViewOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Follow   shared.FollowFunc
	Database cmdutil.DatabaseOptions

	RunID string
	Wait  cmdutil.WaitOptions

	watch bool
}

// NewCmdView builds `owlmetry system jobs view`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdView(f *cmdutil.Factory, runFunc func(context.Context, *ViewOptions) error) *cobra.Command {
	opts := &ViewOptions{IO: f.IOStreams, Printer: f.Printer, Follow: shared.Follower(f)}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "view <run-id>",
		Short: "Show one job run from the database, with its engine details",
		Long: `Show everything about one run, system runs included: what owlmetry jobs view
shows, plus how the engine executes it — executor, owner node and instance, last
heartbeat and whether the lease has expired, cancellation requested at and by,
the schedule tick that created it, and its River job. With --wait (or --watch)
the command follows the run to its end; it is how to re-attach to a run started
with owlmetry system jobs run.

` + cmdutil.DatabaseHelp,
		Example: `  # Look at a run
  owlmetry system jobs view 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f

  # Follow it to its end; the exit code says how it ended
  owlmetry system jobs view 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f --wait --progress lines

  # Which node runs it?
  owlmetry system jobs view 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f --format json | jq -r .owner_node`,
		Args: cmdutil.ExactArgs(1, "a run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cmdutil.ParseUUID("run id", args[0])
			if err != nil {
				return err
			}
			opts.RunID = id
			if opts.watch {
				opts.Wait.Enabled = true
			}
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
			return viewRun(cmd.Context(), opts)
		},
	}
	shared.AddWaitFlags(cmd, &opts.Wait)
	cmd.Flags().BoolVar(&opts.watch, "watch", false, "alias of --wait")
	_ = cmd.Flags().MarkHidden("watch")
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func viewRun(ctx context.Context, opts *ViewOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if !opts.Wait.Enabled {
		d, err := st.GetRun(ctx, opts.RunID)
		if err != nil {
			return err
		}
		return p.Print(d.Run, shared.RunViews(d))
	}
	fr, err := opts.Follow(ctx, st, []string{opts.RunID}, opts.Wait)
	if err != nil {
		return err
	}
	if err := p.Print(fr.Runs[0], shared.RunViews(shared.FinalDetails(ctx, st, fr)...)); err != nil {
		return err
	}
	return shared.WaitErr(fr)
}
