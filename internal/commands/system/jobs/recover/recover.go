// Package recover implements `owlmetry system jobs recover`.
package recover

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// RecoverOptions holds what `owlmetry system jobs recover` needs.
type RecoverOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions

	DryRun bool
}

// NewCmdRecover builds `owlmetry system jobs recover`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdRecover(f *cmdutil.Factory, runFunc func(context.Context, *RecoverOptions) error) *cobra.Command {
	opts := &RecoverOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Fail the running runs whose owner is gone, now",
		Long: `Apply the engine's stale-run rule at once, the rule every server applies on its
own: each running run whose lease has expired — no heartbeat for
OWLMETRY_STALE_AFTER, 60s by default — becomes failed with "Server restarted during
execution", and its notifications are queued. Runs of live owners and pending runs
are never touched. --dry-run lists what would change and changes nothing.

The stale-after setting is read from the same environment variables as
owlmetry server.

` + cmdutil.DatabaseHelp,
		Example: `  # What would be recovered?
  owlmetry system jobs recover --dry-run

  # Recover, and count the runs for a script
  owlmetry system jobs recover --format json | jq '.recovered | length'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return recoverRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "list the runs that would be failed; change nothing")
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func recoverRun(ctx context.Context, opts *RecoverOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, !opts.DryRun)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.Recover(ctx, opts.DryRun)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []localjobs.Run{}
	}
	doc := struct {
		DryRun    bool            `json:"dry_run"`
		Recovered []localjobs.Run `json:"recovered"`
	}{opts.DryRun, runs}
	if len(runs) == 0 {
		cmdutil.Notef(opts.IO, p.Format, "No stale runs.")
		return p.Print(doc, nil)
	}
	if err := p.Print(doc, shared.RunList(runs)); err != nil {
		return err
	}
	n := shared.Plural(int64(len(runs)), "run")
	if opts.DryRun {
		cmdutil.Notef(opts.IO, p.Format, "Would recover %s (dry run: nothing changed).", n)
	} else {
		cmdutil.Notef(opts.IO, p.Format, "Recovered %s.", n)
	}
	return nil
}
