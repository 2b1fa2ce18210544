// Package create implements `owlmetry system users create`.
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

// CreateOptions holds what `owlmetry system users create` needs.
type CreateOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	Email string
	Name  string
	Team  string
	Role  string
}

// NewCmdCreate builds `owlmetry system users create`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdCreate(f *cmdutil.Factory, runFunc func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a user, and optionally its team membership, in the database",
		Long: `Create a user on a fresh install. The name defaults to the part of the e-mail
before @. With --team the user also joins that team (id or slug) with --role,
member unless told otherwise, in the same transaction. An e-mail that is taken
exits 5.

` + cmdutil.DatabaseHelp,
		Example: `  # The owner of the first team
  owlmetry system users create --email ada@example.com --team acme --role owner

  # A user without a team yet
  owlmetry system users create --email bob@example.com --name "Bob Stone" --format json`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Email = strings.TrimSpace(opts.Email)
			if opts.Email == "" {
				return cmdutil.FlagErrorf("--email is required")
			}
			if err := localjobs.CheckEmail(opts.Email); err != nil {
				return cmdutil.FlagErrorWrap(err)
			}
			if cmd.Flags().Changed("role") && opts.Team == "" {
				return cmdutil.FlagErrorf("--role requires --team")
			}
			if !validRole(opts.Role) {
				return cmdutil.FlagErrorf("invalid --role %q: valid roles are %s", opts.Role, strings.Join(localjobs.Roles, ", "))
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
	fl.StringVar(&opts.Email, "email", "", "e-mail address (required)")
	fl.StringVar(&opts.Name, "name", "", "display name (default: the part of the e-mail before @)")
	shared.TeamFlag(fl, &opts.Team, "team id or slug the user joins")
	fl.StringVar(&opts.Role, "role", "member", "role in --team: owner, admin or member")
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func validRole(r string) bool {
	for _, x := range localjobs.Roles {
		if r == x {
			return true
		}
	}
	return false
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
	in := localjobs.NewUser{Email: opts.Email, Name: opts.Name, Team: opts.Team}
	if opts.Team != "" {
		in.Role = opts.Role
	}
	u, err := st.CreateUser(ctx, in)
	if err != nil {
		return shared.UsageError(err)
	}
	return p.Print(u, shared.UserDetail(u))
}
