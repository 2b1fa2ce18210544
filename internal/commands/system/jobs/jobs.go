// Package jobs builds the `owlmetry system jobs` group.
package jobs

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	cancelcmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/cancel"
	listcmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/list"
	prunecmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/prune"
	recovercmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/recover"
	runcmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/run"
	schedulescmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/schedules"
	viewcmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/view"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
)

// NewCmdJobs builds the group.
func NewCmdJobs(f *cmdutil.Factory, deps shared.Deps) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "jobs <command>",
		Short: "Every job run and schedule, straight from the database",
		Long: `See and control every job run — system runs included, which the API never
shows — and the cron schedules, straight in the database the servers use: list
and view runs, start any job type (queued or in this process), cancel runs,
recover runs whose server died, prune old runs, and set schedules.

` + cmdutil.DatabaseHelp,
		Example: `  # What did the scheduler run lately?
  owlmetry system jobs list

  # Run the partition job here and now
  owlmetry system jobs run partition_creation --local

  # When does each job fire next (UTC)?
  owlmetry system jobs schedules`,
	})
	cmd.AddCommand(
		listcmd.NewCmdList(f, nil),
		viewcmd.NewCmdView(f, nil),
		runcmd.NewCmdRun(f, deps, nil),
		cancelcmd.NewCmdCancel(f, nil),
		schedulescmd.NewCmdSchedules(f),
		recovercmd.NewCmdRecover(f, nil),
		prunecmd.NewCmdPrune(f, nil),
	)
	return cmd
}
