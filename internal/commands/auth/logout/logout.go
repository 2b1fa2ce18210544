// Package logout implements `owlmetry auth logout`.
package logout

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/auth/shared"
	"github.com/owlmetry/owlmetry/internal/config"
)

// LogoutOptions holds what `owlmetry auth logout` needs.
type LogoutOptions struct {
	Settings func() *cmdutil.Settings
	Printer  func() (*cmdutil.Printer, error)

	// Team is the team hint; "" removes the active profile.
	Team string
}

// Removed names the removed profile in the JSON document.
type Removed struct {
	TeamID   string `json:"team_id"`
	TeamName string `json:"team_name"`
	TeamSlug string `json:"team_slug"`
}

// Doc is the JSON document of a logout.
type Doc struct {
	Removed    Removed `json:"removed"`
	ActiveTeam *string `json:"active_team"`
}

// NewCmdLogout builds `owlmetry auth logout`.
func NewCmdLogout(f *cmdutil.Factory, runFunc func(context.Context, *LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{Settings: f.Settings, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "logout [team]",
		Short: "Remove a stored team profile from the config file",
		Long: `Remove a team profile (by default the active one) from the config file. The key
itself keeps working until a server owner revokes it: owlmetry system keys list
shows it on the server. When the active profile is removed, the remaining profile
whose team name sorts first becomes active.`,
		Example: `  # Forget the active profile
  owlmetry auth logout

  # Forget the staging profile
  owlmetry auth logout staging`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: CompleteProfiles(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Team = ""
			if len(args) == 1 {
				opts.Team = args[0]
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return logoutRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func logoutRun(_ context.Context, opts *LogoutOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	path, err := opts.Settings().ConfigPath()
	if err != nil {
		return err
	}
	var doc Doc
	_, err = config.Update(path.Value, func(f *config.File) error {
		key := f.ActiveTeam
		if opts.Team != "" {
			k, err := config.SelectProfile(f, opts.Team)
			if err != nil {
				return cmdutil.ConfigError(err)
			}
			key = k
		}
		prof, ok := f.Teams[key]
		if key == "" || !ok {
			return cmdutil.FlagErrorf("no profile to remove")
		}
		doc.Removed = Removed{TeamID: key, TeamName: prof.TeamName, TeamSlug: prof.TeamSlug}
		delete(f.Teams, key)
		if f.ActiveTeam == key {
			f.ActiveTeam = ""
			if keys := f.ProfileKeys(); len(keys) > 0 {
				f.ActiveTeam = keys[0]
			}
		}
		if f.ActiveTeam != "" {
			a := f.ActiveTeam
			doc.ActiveTeam = &a
		}
		return nil
	})
	if err != nil {
		return err
	}
	return p.Print(doc, func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			active := ""
			if doc.ActiveTeam != nil {
				active = *doc.ActiveTeam
			}
			return fmt.Sprintf("removed\t%s\nactive_team\t%s\n", doc.Removed.TeamID, active)
		}
		s := "Removed " + shared.Name(shared.ProfileDoc{TeamID: doc.Removed.TeamID, TeamName: doc.Removed.TeamName, TeamSlug: doc.Removed.TeamSlug})
		if doc.ActiveTeam != nil {
			s += "; active team is now " + *doc.ActiveTeam
		}
		return s
	})
}

// CompleteProfiles offers profile slugs with the team name (cli.md §12.2).
func CompleteProfiles(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		l, err := f.Settings().Resolver().File()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, k := range l.ProfileKeys() {
			p := l.Teams[k]
			out = append(out, cobra.CompletionWithDesc(config.ProfileLabel(k, p), p.TeamName))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
