// Package sync implements `owlmetry ratings sync`.
package sync

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// SyncOptions holds what `owlmetry ratings sync` needs.
type SyncOptions struct {
	runs.SyncOptions
	Settings func() *cmdutil.Settings
	Project  cmdutil.ProjectFlag
}

// Spec is the ratings sync route (cli.md §8.3).
var Spec = runs.SyncSpec{
	JobType:       jobtype.AppStoreRatingsSync,
	Unit:          "app(s)",
	NothingReason: "the project has no Apple apps with a bundle id",
	Start: func(ctx context.Context, c *client.Client, projectID string) (apitype.SyncResponse, error) {
		return c.RatingsSync(ctx, projectID)
	},
}

// NewCmdSync builds `owlmetry ratings sync`.
func NewCmdSync(f *cmdutil.Factory, runFunc func(context.Context, *SyncOptions) error) *cobra.Command {
	opts := &SyncOptions{
		SyncOptions: runs.SyncOptions{IO: f.IOStreams, APIClient: f.APIClient, Printer: f.Printer, Follow: f.FollowAPI, NowFunc: f.NowFunc},
		Settings:    f.Settings,
	}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Sync App Store ratings of the project's Apple apps now",
		Long: `Start an App Store ratings sync for every Apple app of the project that has a
bundle id. The project is --project-id, else OWLMETRY_PROJECT_ID, else the
profile's default_project. A project without such apps has nothing to sync, which
is not an error.`,
		Example: `  # Sync ratings of the default project and wait for the result
  owlmetry ratings sync --wait

  # In CI, joining a sync that is already running
  owlmetry ratings sync --project-id 1a2b3c4d-0000-4000-8000-000000000001 --attach --wait --format json | jq '.job_runs[0].result'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Project.Validate(cmd.Flags()); err != nil {
				return err
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
			return syncRun(cmd.Context(), opts)
		},
	}
	opts.Project.BuildFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.Attach, "attach", false, "when a ratings sync is already pending or running, adopt that run")
	opts.Wait.BuildFlags(cmd.Flags(), cmdutil.WaitOptional)
	opts.Wait.RegisterCompletions(cmd)
	return cmd
}

func syncRun(ctx context.Context, opts *SyncOptions) error {
	project, err := opts.Settings().ProjectID(opts.Project.Value)
	if err != nil {
		return err
	}
	opts.ProjectID = project
	return runs.RunSync(ctx, &opts.SyncOptions, Spec)
}
