// Package list implements `owlmetry system keys list`.
package list

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// ListOptions holds what `owlmetry system keys list` needs.
type ListOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	Team string
}

// NewCmdList builds `owlmetry system keys list`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdList(f *cmdutil.Factory, runFunc func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a team's API keys, never their secrets",
		Long: `List the live API keys of a team (id or slug), oldest first. Only the display hint
of each key is shown: the secret is not stored anywhere, and its hash is never
printed.

` + cmdutil.DatabaseHelp,
		Example: `  # The team's keys
  owlmetry system keys list --team acme

  # Keys that never expire
  owlmetry system keys list --team acme --format json | jq '.keys[] | select(.expires_at == null) | .id'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Team == "" {
				return cmdutil.FlagErrorf("--team is required")
			}
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	shared.TeamFlag(cmd.Flags(), &opts.Team, "team id or slug (required)")
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func listRun(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.ListKeys(ctx, opts.Team)
	if err != nil {
		return shared.UsageError(err)
	}
	if len(keys) == 0 {
		cmdutil.Notef(opts.IO, p.Format, "No API keys found.")
	}
	return p.Print(struct {
		Keys []localjobs.Key `json:"keys"`
	}{keys}, shared.KeyList(keys))
}
