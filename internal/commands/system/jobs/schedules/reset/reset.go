// Package reset implements `owlmetry system jobs schedules reset`.
package reset

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// ResetOptions holds what `owlmetry system jobs schedules reset` needs.
type ResetOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	JobType string
	All     bool
}

// NewCmdReset builds `owlmetry system jobs schedules reset`. Tests pass runFunc to
// inspect the parsed options without connecting.
func NewCmdReset(f *cmdutil.Factory, runFunc func(context.Context, *ResetOptions) error) *cobra.Command {
	opts := &ResetOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "reset [<job-type> | --all]",
		Short: "Drop a schedule override and re-enable the default",
		Long: `Drop the owner's override of a job type's schedule and enable the type again, so
it runs on its default schedule — or on none, for a Manual type such as
revenuecat_sync. --all resets every type in one transaction. Running servers
apply the change from their next minute tick.

` + cmdutil.DatabaseHelp,
		Example: `  # Back to the default daily Apple Ads sync
  owlmetry system jobs schedules reset apple_ads_sync

  # Undo every change, in a script
  owlmetry system jobs schedules reset --all --format json | jq -r ".schedules[].source"`,
		ValidArgsFunction: runs.CompleteJobTypes(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.All && len(args) > 0:
				return cmdutil.FlagErrorf("give a job type or --all, not both")
			case opts.All:
			case len(args) == 0:
				return cmdutil.FlagErrorf("missing a job type (or --all)")
			case len(args) > 1:
				return cmdutil.FlagErrorf("expected one job type, got %d arguments", len(args))
			default:
				name, err := shared.ParseScheduleType(args[0])
				if err != nil {
					return err
				}
				opts.JobType = name
			}
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return resetRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "reset every job type")
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func resetRun(ctx context.Context, opts *ResetOptions) error {
	return shared.ApplyScheduleChange(ctx, opts.Store, opts.Printer, opts.IO,
		shared.ScheduleChange{Kind: localjobs.ScheduleReset, JobType: opts.JobType, All: opts.All})
}
