// Package auth builds the `owlmetry auth` group.
package auth

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	logincmd "github.com/owlmetry/owlmetry/internal/commands/auth/login"
	logoutcmd "github.com/owlmetry/owlmetry/internal/commands/auth/logout"
	switchcmd "github.com/owlmetry/owlmetry/internal/commands/auth/switch"
)

// NewCmdAuth builds the group.
func NewCmdAuth(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "auth <command>",
		Short: "Store, list and remove API keys for your teams",
		Long: `Manage the team profiles of the config file (~/.owlmetry/config.json): each holds
an agent API key, the team it belongs to and the endpoint it was checked against.`,
		Example: `  # Store a key
  owlmetry auth login

  # Use another team
  owlmetry auth switch staging`,
	})
	cmd.AddCommand(logincmd.NewCmdLogin(f, nil), logoutcmd.NewCmdLogout(f, nil), switchcmd.NewCmdSwitch(f, nil))
	return cmd
}
