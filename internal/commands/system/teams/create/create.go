// Package create implements `owlmetry system teams create`.
package create

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// CreateOptions holds what `owlmetry system teams create` needs.
type CreateOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	Name string
	Slug string
}

// NewCmdCreate builds `owlmetry system teams create`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdCreate(f *cmdutil.Factory, runFunc func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a team straight in the database",
		Long: `Create a team on a fresh install, before any API key exists. The slug is derived
from the name unless --slug is given; a slug that is taken exits 5.

` + cmdutil.DatabaseHelp,
		Example: `  # The first team of a new server
  owlmetry system teams create --name "Acme Inc."

  # With an explicit slug, keeping the id for the next steps
  owlmetry system teams create --name "Acme Inc." --slug acme --format json | jq -r .id`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = strings.TrimSpace(opts.Name)
			if opts.Name == "" {
				return cmdutil.FlagErrorf("--name is required")
			}
			slug, err := shared.SlugFlag(cmd.Flags(), opts.Slug, opts.Name)
			if err != nil {
				return err
			}
			opts.Slug = slug
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return createRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "team name (required)")
	cmd.Flags().StringVar(&opts.Slug, "slug", "", "team slug (default: derived from the name)")
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
	team, err := st.CreateTeam(ctx, opts.Name, opts.Slug)
	if err != nil {
		return shared.UsageError(err)
	}
	return p.Print(team, shared.TeamDetail(team))
}
