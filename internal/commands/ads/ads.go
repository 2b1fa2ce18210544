// Package ads builds the `owlmetry ads` group.
package ads

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	synccmd "github.com/owlmetry/owlmetry/internal/commands/ads/sync"
)

// NewCmdAds builds the group.
func NewCmdAds(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "ads <command>",
		Short: "Sync ad attribution: RevenueCat and Apple Search Ads",
		Long:  "Sync a project's RevenueCat and Apple Search Ads data through the Owlmetry API.",
		Example: `  # Sync both and wait
  owlmetry ads sync --wait

  # Start them and return
  owlmetry ads sync --project-id 1a2b3c4d-0000-4000-8000-000000000001`,
	})
	cmd.AddCommand(synccmd.NewCmdSync(f, nil))
	return cmd
}
