// Package disable implements `owlmetry system jobs schedules disable`.
package disable

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// DisableOptions holds what `owlmetry system jobs schedules disable` needs.
type DisableOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	JobType string
}

// NewCmdDisable builds `owlmetry system jobs schedules disable`. Tests pass runFunc to inspect
// the parsed options without connecting.
func NewCmdDisable(f *cmdutil.Factory, runFunc func(context.Context, *DisableOptions) error) *cobra.Command {
	opts := &DisableOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "disable <job-type>",
		Short: "Stop a job type's scheduled runs",
		Long: `Disable a job type's schedule: the scheduler creates no more runs of it until it
is enabled or reset. Runs already pending or running continue. The override, if
any, is kept for a later enable. Running servers apply the change from their next
minute tick.

` + cmdutil.DatabaseHelp,
		Example: `  # No more hourly issue scans
  owlmetry system jobs schedules disable issue_scan

  # The same, in a script
  owlmetry system jobs schedules disable issue_scan --format json | jq -r ".schedules[0].source"`,
		Args:              cmdutil.ExactArgs(1, "a job type"),
		ValidArgsFunction: runs.CompleteJobTypes(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := shared.ParseScheduleType(args[0])
			if err != nil {
				return err
			}
			opts.JobType = name
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return disableRun(cmd.Context(), opts)
		},
	}
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func disableRun(ctx context.Context, opts *DisableOptions) error {
	return shared.ApplyScheduleChange(ctx, opts.Store, opts.Printer, opts.IO,
		shared.ScheduleChange{Kind: localjobs.ScheduleDisable, JobType: opts.JobType})
}
