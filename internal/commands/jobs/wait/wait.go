// Package wait implements `owlmetry jobs wait`.
package wait

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// maxRuns is the largest run set one wait follows (cli.md §6.2).
const maxRuns = 20

// WaitOptions holds what `owlmetry jobs wait` needs.
type WaitOptions struct {
	IO      *iostreams.IOStreams
	Printer func() (*cmdutil.Printer, error)
	Follow  cmdutil.FollowFunc

	RunIDs []string
	Wait   cmdutil.WaitOptions
}

// NewCmdWait builds `owlmetry jobs wait`.
func NewCmdWait(f *cmdutil.Factory, runFunc func(context.Context, *WaitOptions) error) *cobra.Command {
	opts := &WaitOptions{IO: f.IOStreams, Printer: f.Printer, Follow: f.FollowAPI}
	cmd := &cobra.Command{
		Use:   "wait <run-id>...",
		Short: "Follow job runs until they end; the exit code says how they ended",
		Long: `Follow one or more job runs (at most 20) until every one has ended, showing
their progress on stderr. A run that already ended returns at once, so the exit
code also answers "did it succeed?": 0 when every run completed, 1 when one
failed, was cancelled or aborted, 8 when --timeout passed first, 130 on Ctrl-C
(which leaves the runs running unless --cancel-on-interrupt is given).`,
		Example: `  # Wait for a run started elsewhere
  owlmetry jobs wait 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f

  # In CI: give up after ten minutes, plain lines for the log
  owlmetry jobs wait 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f --timeout 10m --progress lines

  # The final state of two runs, for a script
  owlmetry jobs wait 3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f 77ab01cd-0000-4000-8000-000000000002 --format json | jq -r '.job_runs[].status'`,
		ValidArgsFunction: runs.CompleteRunIDs(f, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmdutil.FlagErrorf("missing a run id")
			}
			seen := map[string]bool{}
			opts.RunIDs = nil
			for _, a := range args {
				id, err := cmdutil.ParseUUID("run id", a)
				if err != nil {
					return err
				}
				if !seen[id] {
					seen[id] = true
					opts.RunIDs = append(opts.RunIDs, id)
				}
			}
			if len(opts.RunIDs) > maxRuns {
				return cmdutil.FlagErrorf("at most %d runs can be followed at once, got %d", maxRuns, len(opts.RunIDs))
			}
			if err := opts.Wait.Validate(cmd.Flags()); err != nil {
				return err
			}
			if err := f.CheckWait(&opts.Wait); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return waitRun(cmd.Context(), opts)
		},
	}
	opts.Wait.BuildFlags(cmd.Flags(), cmdutil.WaitAlways)
	opts.Wait.RegisterCompletions(cmd)
	return cmd
}

func waitRun(ctx context.Context, opts *WaitOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	fr, err := opts.Follow(ctx, opts.RunIDs, opts.Wait)
	if err != nil {
		return err
	}
	followed := fr.Runs
	if followed == nil {
		followed = []apitype.JobRun{}
	}
	doc := map[string]any{"job_runs": followed}
	if err := p.Print(doc, runs.RunDetails(followed...)); err != nil {
		return err
	}
	return fr.Err()
}
