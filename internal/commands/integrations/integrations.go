// Package integrations builds the `owlmetry integrations` group.
package integrations

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	listcmd "github.com/owlmetry/owlmetry/internal/commands/integrations/list"
	synccmd "github.com/owlmetry/owlmetry/internal/commands/integrations/sync"
)

// NewCmdIntegrations builds the group.
func NewCmdIntegrations(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "integrations <command>",
		Short: "List a project's integrations and sync them",
		Long: `Work with the RevenueCat, Apple Search Ads and App Store Connect integrations of
a project through the Owlmetry API.`,
		Example: `  # What is configured?
  owlmetry integrations list

  # Sync RevenueCat now and wait
  owlmetry integrations sync revenuecat --wait`,
	})
	cmd.AddCommand(listcmd.NewCmdList(f, nil), synccmd.NewCmdSync(f, nil))
	return cmd
}
