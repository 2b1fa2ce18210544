// Package schedules builds `owlmetry system jobs schedules`: without a subcommand it lists
// the schedules, like `schedules list`.
package schedules

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	disablecmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/schedules/disable"
	enablecmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/schedules/enable"
	listcmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/schedules/list"
	resetcmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/schedules/reset"
	setcmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs/schedules/set"
)

// NewCmdSchedules builds the group.
func NewCmdSchedules(f *cmdutil.Factory) *cobra.Command {
	cmd := listcmd.NewCmdList(f, nil)
	cmd.Use = "schedules [list | set | enable | disable | reset]"
	cmd.Short = "Show and change the cron schedules of the job types"
	cmd.Long = listcmd.Long + `The subcommands change a type's schedule in the job_schedules table; running
servers apply a change from their next minute tick, without a restart.

` + cmdutil.DatabaseHelp
	cmd.Example = `  # Every schedule, with its next tick in UTC
  owlmetry system jobs schedules

  # Run the RevenueCat fan-out every night at 03:00 UTC
  owlmetry system jobs schedules set revenuecat_sync "0 3 * * *"

  # Pause the issue scan
  owlmetry system jobs schedules disable issue_scan`
	// Like a group, an unknown subcommand is a usage error rather than an argument.
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return cmdutil.FlagErrorf("%s", msg)
	}
	cmd.AddCommand(
		listcmd.NewCmdList(f, nil),
		setcmd.NewCmdSet(f, nil),
		enablecmd.NewCmdEnable(f, nil),
		disablecmd.NewCmdDisable(f, nil),
		resetcmd.NewCmdReset(f, nil),
	)
	return cmd
}
