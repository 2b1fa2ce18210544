// Package teams builds the `owlmetry system teams` group.
package teams

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	createcmd "github.com/owlmetry/owlmetry/internal/commands/system/teams/create"
)

// NewCmdTeams builds the group.
func NewCmdTeams(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "teams <command>",
		Short: "Create teams straight in the database",
		Long:  `Create the teams of a fresh install, before the API has any key to accept.`,
		Example: `  # The first team
  owlmetry system teams create --name "Acme Inc."

  # Keep its id
  owlmetry system teams create --name "Acme Inc." --format json | jq -r .id`,
	})
	cmd.AddCommand(createcmd.NewCmdCreate(f, nil))
	return cmd
}
