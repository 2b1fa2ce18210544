// Package set implements `owlmetry system jobs schedules set`.
package set

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// SetOptions holds what `owlmetry system jobs schedules set` needs.
type SetOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	JobType string
	Cron    string
}

// NewCmdSet builds `owlmetry system jobs schedules set`. Tests pass runFunc to inspect
// the parsed options without connecting.
func NewCmdSet(f *cmdutil.Factory, runFunc func(context.Context, *SetOptions) error) *cobra.Command {
	opts := &SetOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "set <job-type> <cron>",
		Short: "Give a job type its own schedule, in UTC",
		Long: `Set a job type's schedule override and enable it. The expression has 5 fields or
is a descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every <duration>)
and is always read in UTC; a CRON_TZ= or TZ= prefix is refused. Quote it for the
shell. revenuecat_user_backfill needs a project and can never be scheduled.

Running servers apply the change from their next minute tick, counting ticks from
now: a new schedule never fires for a tick in the past.

` + cmdutil.DatabaseHelp,
		Example: `  # A daily RevenueCat reconciliation at 03:00 UTC
  owlmetry system jobs schedules set revenuecat_sync "0 3 * * *"

  # Issue scans every 20 minutes, and when the next one is
  owlmetry system jobs schedules set issue_scan "*/20 * * * *" --format json | jq -r ".schedules[0].next_run_at"`,
		Args:              cmdutil.ExactArgs(2, "a job type and a cron expression"),
		ValidArgsFunction: runs.CompleteJobTypes(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := shared.ParseScheduleType(args[0])
			if err != nil {
				return err
			}
			if err := localjobs.CheckCron(args[1]); err != nil {
				return cmdutil.FlagErrorWrap(err)
			}
			opts.JobType, opts.Cron = name, args[1]
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return setRun(cmd.Context(), opts)
		},
	}
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func setRun(ctx context.Context, opts *SetOptions) error {
	return shared.ApplyScheduleChange(ctx, opts.Store, opts.Printer, opts.IO,
		shared.ScheduleChange{Kind: localjobs.ScheduleSet, JobType: opts.JobType, Cron: opts.Cron})
}
