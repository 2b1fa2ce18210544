// Package enable implements `owlmetry system jobs schedules enable`.
package enable

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// EnableOptions holds what `owlmetry system jobs schedules enable` needs.
type EnableOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	JobType string
}

// NewCmdEnable builds `owlmetry system jobs schedules enable`. Tests pass runFunc to inspect
// the parsed options without connecting.
func NewCmdEnable(f *cmdutil.Factory, runFunc func(context.Context, *EnableOptions) error) *cobra.Command {
	opts := &EnableOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "enable <job-type>",
		Short: "Turn a job type's schedule back on",
		Long: `Enable a job type's schedule: its override when one is set, else its default. A
type with neither (revenuecat_sync, unless an override was set) exits 2; give it
one with owlmetry system jobs schedules set. Running servers apply the change from
their next minute tick; when it changes the effective schedule, ticks count from
now, so nothing fires for a tick in the past.

` + cmdutil.DatabaseHelp,
		Example: `  # Resume the hourly issue scan
  owlmetry system jobs schedules enable issue_scan

  # The new next tick, for a script
  owlmetry system jobs schedules enable issue_scan --format json | jq -r ".schedules[0].next_run_at"`,
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
			return enableRun(cmd.Context(), opts)
		},
	}
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func enableRun(ctx context.Context, opts *EnableOptions) error {
	return shared.ApplyScheduleChange(ctx, opts.Store, opts.Printer, opts.IO,
		shared.ScheduleChange{Kind: localjobs.ScheduleEnable, JobType: opts.JobType})
}
