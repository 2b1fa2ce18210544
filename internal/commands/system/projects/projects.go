// Package projects builds the `owlmetry system projects` group.
package projects

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	createcmd "github.com/owlmetry/owlmetry/internal/commands/system/projects/create"
)

// NewCmdProjects builds the group.
func NewCmdProjects(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "projects <command>",
		Short: "Create projects straight in the database",
		Long:  `Create the projects of a fresh install inside an existing team.`,
		Example: `  # A project for the team's iOS app
  owlmetry system projects create --team acme --name "Acme iOS"

  # Keep its id
  owlmetry system projects create --team acme --name Backend --format json | jq -r .id`,
	})
	cmd.AddCommand(createcmd.NewCmdCreate(f, nil))
	return cmd
}
