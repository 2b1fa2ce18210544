package cmdutil

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// MakeGroup turns cmd into a command group: without a subcommand it prints its help on
// stdout and exits 0; an unknown subcommand is a usage error with a "did you mean"
// suggestion, which cobra does not produce for groups by itself.
func MakeGroup(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return FlagErrorf("%s", msg)
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		return c.Help()
	}
	return cmd
}
