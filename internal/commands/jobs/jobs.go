// Package jobs builds the `owlmetry jobs` group.
package jobs

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	cancelcmd "github.com/owlmetry/owlmetry/internal/commands/jobs/cancel"
	listcmd "github.com/owlmetry/owlmetry/internal/commands/jobs/list"
	triggercmd "github.com/owlmetry/owlmetry/internal/commands/jobs/trigger"
	typescmd "github.com/owlmetry/owlmetry/internal/commands/jobs/types"
	viewcmd "github.com/owlmetry/owlmetry/internal/commands/jobs/view"
	waitcmd "github.com/owlmetry/owlmetry/internal/commands/jobs/wait"
)

// NewCmdJobs builds the group.
func NewCmdJobs(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "jobs <command>",
		Short: "List, start, follow and cancel the team's job runs",
		Long: `Work with the job runs of your team through the Owlmetry API: list them, look at
one, start a project job, follow runs to their end and cancel them. These commands
need an API endpoint and an agent key (owlmetry auth login).`,
		Example: `  # What ran lately?
  owlmetry jobs list

  # Start an Apple Ads sync and wait for it
  owlmetry jobs trigger apple_ads_sync --wait`,
	})
	cmd.AddCommand(
		listcmd.NewCmdList(f, nil),
		viewcmd.NewCmdView(f, nil),
		triggercmd.NewCmdTrigger(f, nil),
		cancelcmd.NewCmdCancel(f, nil),
		waitcmd.NewCmdWait(f, nil),
		typescmd.NewCmdTypes(f, nil),
	)
	return cmd
}
