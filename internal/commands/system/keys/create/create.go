// Package create implements `owlmetry system keys create`.
package create

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// CreateOptions holds what `owlmetry system keys create` needs.
type CreateOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	Team        string
	CreatedBy   string
	Name        string
	Permissions []string
	ExpiresIn   time.Duration

	rawPermissions string
	rawExpires     string
}

// NewCmdCreate builds `owlmetry system keys create`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdCreate(f *cmdutil.Factory, runFunc func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an agent API key and print its secret once",
		Long: `Create an agent key for a team (id or slug), on behalf of a member of that team
(--created-by, a user id or e-mail). The secret is printed exactly once — on a
terminal in a sentence, piped as the only thing on stdout, in JSON as "secret" —
and is never stored: the database keeps its SHA-256 and a short hint.

Permissions default to every agent permission (` + strings.Join(localjobs.AgentPermissions, ", ") + `).

` + cmdutil.DatabaseHelp,
		Example: `  # A key for the CLI of the team's owner
  owlmetry system keys create --team acme --created-by ada@example.com

  # A read-only key that expires in 90 days, straight into a secret store
  owlmetry system keys create --team acme --created-by ada@example.com --permissions jobs:read --expires-in 90d | vault kv put secret/owlmetry key=-`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Team == "" {
				return cmdutil.FlagErrorf("--team is required")
			}
			opts.CreatedBy = strings.TrimSpace(opts.CreatedBy)
			if opts.CreatedBy == "" {
				return cmdutil.FlagErrorf("--created-by is required")
			}
			if opts.Name = strings.TrimSpace(opts.Name); opts.Name == "" {
				return cmdutil.FlagErrorf("--name must not be empty")
			}
			opts.Permissions = nil
			if cmd.Flags().Changed("permissions") {
				perms, err := localjobs.CheckPermissions(strings.Split(opts.rawPermissions, ","))
				if err != nil {
					return cmdutil.FlagErrorWrap(err)
				}
				opts.Permissions = perms
			}
			opts.ExpiresIn = 0
			if cmd.Flags().Changed("expires-in") {
				d, err := shared.ParseAge("--expires-in", opts.rawExpires)
				if err != nil {
					return err
				}
				if d <= 0 {
					return cmdutil.FlagErrorf("--expires-in must be positive")
				}
				opts.ExpiresIn = d
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
	fl.StringVar(&opts.CreatedBy, "created-by", "", "user id or e-mail of a team member (required)")
	fl.StringVar(&opts.Name, "name", "owlmetry CLI key", "key name")
	fl.StringVar(&opts.rawPermissions, "permissions", "", "comma-separated permissions (default: every agent permission)")
	fl.StringVar(&opts.rawExpires, "expires-in", "", "expire the key after this age (90d, 2w, 36h); default never")
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
	key, secret, err := st.CreateKey(ctx, localjobs.NewKey{
		Team: opts.Team, CreatedBy: opts.CreatedBy, Name: opts.Name, Permissions: opts.Permissions, ExpiresIn: opts.ExpiresIn,
	})
	if err != nil {
		return shared.UsageError(err)
	}
	doc, err := withSecret(key, secret)
	if err != nil {
		return err
	}
	return p.Print(doc, shared.KeyCreated(key, secret))
}

// withSecret is the key object plus "secret", the only time the plaintext is shown.
func withSecret(k localjobs.Key, secret string) (json.RawMessage, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	s, _ := json.Marshal(secret)
	doc["secret"] = s
	return json.Marshal(doc)
}
