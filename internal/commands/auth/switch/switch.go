// Package switchcmd implements `owlmetry auth switch` and its hidden alias
// `owlmetry switch`.
package switchcmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/auth/logout"
	"github.com/owlmetry/owlmetry/internal/commands/auth/shared"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// SwitchOptions holds what `owlmetry auth switch` needs.
type SwitchOptions struct {
	IO       *iostreams.IOStreams
	Settings func() *cmdutil.Settings
	Printer  func() (*cmdutil.Printer, error)

	// Team is the hint; "" lists the profiles.
	Team string
}

// Switched is the JSON document of a switch.
type Switched struct {
	TeamID        string `json:"team_id"`
	TeamName      string `json:"team_name"`
	TeamSlug      string `json:"team_slug"`
	AlreadyActive bool   `json:"already_active,omitempty"`
}

// NewCmdSwitch builds `owlmetry auth switch`.
func NewCmdSwitch(f *cmdutil.Factory, runFunc func(context.Context, *SwitchOptions) error) *cobra.Command {
	opts := &SwitchOptions{IO: f.IOStreams, Settings: f.Settings, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "switch [team]",
		Short: "List the stored team profiles or pick the active one",
		Long: `Without an argument, list the team profiles of the config file and mark the
active one. With a team — its id, slug or name — make that profile the active one.`,
		Example: `  # Which teams do I have?
  owlmetry auth switch

  # Use the staging team from now on
  owlmetry auth switch staging`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: logout.CompleteProfiles(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Team = ""
			if len(args) == 1 {
				opts.Team = args[0]
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return switchRun(cmd.Context(), opts)
		},
	}
	return cmd
}

// NewCmdSwitchAlias builds the hidden top-level `owlmetry switch` of the public CLI.
func NewCmdSwitchAlias(f *cmdutil.Factory) *cobra.Command {
	cmd := NewCmdSwitch(f, nil)
	cmd.Hidden = true
	cmd.Short = "List or pick team profiles (compatibility alias of auth switch)"
	return cmd
}

func switchRun(_ context.Context, opts *SwitchOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	s := opts.Settings()
	if opts.Team == "" {
		l, err := s.File()
		if err != nil {
			return err
		}
		docs := shared.Profiles(l.File)
		if err := p.Print(docs, shared.RenderProfiles(docs)); err != nil {
			return err
		}
		if len(docs) == 0 {
			cmdutil.Notef(opts.IO, p.Format, "No team profiles configured; run owlmetry auth login.")
		}
		return nil
	}
	path, err := s.ConfigPath()
	if err != nil {
		return err
	}
	var doc Switched
	var name string
	_, err = config.Update(path.Value, func(f *config.File) error {
		key, err := config.SelectProfile(f, opts.Team)
		if err != nil {
			return cmdutil.ConfigError(err)
		}
		prof := f.Teams[key]
		doc = Switched{TeamID: key, TeamName: prof.TeamName, TeamSlug: prof.TeamSlug, AlreadyActive: f.ActiveTeam == key}
		name = shared.Name(shared.ProfileDoc{TeamID: key, TeamName: prof.TeamName, TeamSlug: prof.TeamSlug})
		if doc.AlreadyActive {
			return errUnchanged
		}
		f.ActiveTeam = key
		return nil
	})
	if err != nil && err != errUnchanged { //nolint:errorlint // a sentinel of this file, never wrapped
		return err
	}
	if doc.AlreadyActive {
		if p.Format == cmdutil.FormatTable {
			fmt.Fprintf(opts.IO.ErrOut, "Already using %s\n", name)
			return nil
		}
		return p.Print(doc, nil)
	}
	return p.Print(doc, func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			return fmt.Sprintf("team_id\t%s\nteam_slug\t%s\nteam_name\t%s\n", doc.TeamID, doc.TeamSlug, doc.TeamName)
		}
		return "Switched to " + name
	})
}

// errUnchanged abandons the write when the profile is already active: read-only
// outcomes never rewrite the file.
var errUnchanged = fmt.Errorf("already active")
