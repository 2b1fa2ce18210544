// Package users builds the `owlmetry system users` group.
package users

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	createcmd "github.com/owlmetry/owlmetry/internal/commands/system/users/create"
)

// NewCmdUsers builds the group.
func NewCmdUsers(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "users <command>",
		Short: "Create users and team memberships straight in the database",
		Long:  `Create the users of a fresh install and make them members of a team.`,
		Example: `  # The owner of the first team
  owlmetry system users create --email ada@example.com --team acme --role owner

  # A user without a team
  owlmetry system users create --email bob@example.com --format json`,
	})
	cmd.AddCommand(createcmd.NewCmdCreate(f, nil))
	return cmd
}
