// Package create implements `owlmetry system projects create`.
package create

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// CreateOptions holds what `owlmetry system projects create` needs.
type CreateOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	Team  string
	Name  string
	Slug  string
	Color string
}

// NewCmdCreate builds `owlmetry system projects create`. Tests pass runFunc to inspect
// the parsed options without connecting.
func NewCmdCreate(f *cmdutil.Factory, runFunc func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a project in a team, straight in the database",
		Long: `Create a project in a team (id or slug) on a fresh install. The slug is derived
from the name unless --slug is given; it is unique within the team, and a slug
that is taken there exits 5.

` + cmdutil.DatabaseHelp,
		Example: `  # A project for the team's iOS app
  owlmetry system projects create --team acme --name "Acme iOS"

  # Keep its id for owlmetry config set default_project
  owlmetry system projects create --team acme --name Backend --slug backend --color "#10b981" --format json | jq -r .id`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = strings.TrimSpace(opts.Name)
			if opts.Team == "" {
				return cmdutil.FlagErrorf("--team is required")
			}
			if opts.Name == "" {
				return cmdutil.FlagErrorf("--name is required")
			}
			slug, err := shared.SlugFlag(cmd.Flags(), opts.Slug, opts.Name)
			if err != nil {
				return err
			}
			opts.Slug = slug
			if err := localjobs.CheckColor(opts.Color); err != nil {
				return cmdutil.FlagErrorWrap(err)
			}
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return createRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	shared.TeamFlag(fl, &opts.Team, "team id or slug (required)")
	fl.StringVar(&opts.Name, "name", "", "project name (required)")
	fl.StringVar(&opts.Slug, "slug", "", "project slug (default: derived from the name)")
	fl.StringVar(&opts.Color, "color", localjobs.DefaultProjectColor, "colour as #rrggbb")
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func createRun(ctx context.Context, opts *CreateOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	proj, err := st.CreateProject(ctx, localjobs.NewProject{Team: opts.Team, Name: opts.Name, Slug: opts.Slug, Color: opts.Color})
	if err != nil {
		return shared.UsageError(err)
	}
	return p.Print(proj, shared.ProjectDetail(proj))
}
