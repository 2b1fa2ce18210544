// Package list implements `owlmetry system jobs schedules list`, which is also what
// `owlmetry system jobs schedules` does without a subcommand.
package list

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// ListOptions holds what `owlmetry system jobs schedules list` needs.
type ListOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions
}

// Long is the help shared by `schedules` and `schedules list`.
const Long = `Show the cron schedule of every job type: its expression (always UTC), where it
comes from (the registry default, the owner's override, disabled, or manual only),
the next tick — computed in UTC whatever TZ says — the last tick and its outcome,
the run it created, and any run of the type that is active now.

`

// NewCmdList builds `owlmetry system jobs schedules list`. Tests pass runFunc to inspect
// the parsed options without connecting.
func NewCmdList(f *cmdutil.Factory, runFunc func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Printer: f.Printer}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every job type's schedule, next tick and last run",
		Long:  Long + cmdutil.DatabaseHelp,
		Example: `  # Every schedule
  owlmetry system jobs schedules list

  # When does the partition job fire next?
  owlmetry system jobs schedules --format json | jq -r '.schedules[] | select(.job_type == "partition_creation") | .next_run_at'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

// Run lists the schedules; the `schedules` group runs it when given no subcommand.
func Run(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.Schedules(ctx)
	if err != nil {
		return err
	}
	if list.FromRegistry {
		cmdutil.Notef(opts.IO, p.Format, "No server has written the schedules yet: these are the built-in production defaults.")
	}
	return p.Print(struct {
		Schedules []localjobs.Schedule `json:"schedules"`
	}{list.Schedules}, shared.ScheduleList(list.Schedules))
}
