// Package ratings builds the `owlmetry ratings` group.
package ratings

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	synccmd "github.com/owlmetry/owlmetry/internal/commands/ratings/sync"
)

// NewCmdRatings builds the group.
func NewCmdRatings(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "ratings <command>",
		Short: "Sync App Store ratings",
		Long:  "Sync the App Store ratings of a project's Apple apps through the Owlmetry API.",
		Example: `  # Sync now and wait
  owlmetry ratings sync --wait

  # Start it and return
  owlmetry ratings sync --project-id 1a2b3c4d-0000-4000-8000-000000000001`,
	})
	cmd.AddCommand(synccmd.NewCmdSync(f, nil))
	return cmd
}
