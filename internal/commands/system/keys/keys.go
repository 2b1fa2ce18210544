// Package keys builds the `owlmetry system keys` group.
package keys

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	createcmd "github.com/owlmetry/owlmetry/internal/commands/system/keys/create"
	listcmd "github.com/owlmetry/owlmetry/internal/commands/system/keys/list"
)

// NewCmdKeys builds the group.
func NewCmdKeys(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "keys <command>",
		Short: "Create and list agent API keys straight in the database",
		Long: `Create the first agent keys of a fresh install, and list a team's keys. A key's
secret is printed once, when it is created, and stored nowhere.`,
		Example: `  # A key for the team's owner
  owlmetry system keys create --team acme --created-by ada@example.com

  # What keys does the team have?
  owlmetry system keys list --team acme`,
	})
	cmd.AddCommand(createcmd.NewCmdCreate(f, nil), listcmd.NewCmdList(f, nil))
	return cmd
}
