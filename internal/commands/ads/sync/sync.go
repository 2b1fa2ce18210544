// Package sync implements `owlmetry ads sync`.
package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// nothingReason explains an ads sync with nothing to do (cli.md §8.2).
const nothingReason = "the project has no active RevenueCat or Apple Search Ads integration"

// slots are the two runs of an ads sync in run-set order, with their response keys.
var slots = []struct {
	jobType  string
	key      string
	provider string
}{
	{jobtype.RevenueCatSync, "revenuecat_job_run_id", "revenuecat"},
	{jobtype.AppleAdsSync, "apple_ads_job_run_id", "apple-search-ads"},
}

// SyncOptions holds what `owlmetry ads sync` needs.
type SyncOptions struct {
	runs.SyncOptions
	Settings func() *cmdutil.Settings
	Project  cmdutil.ProjectFlag
}

// NewCmdSync builds `owlmetry ads sync`.
func NewCmdSync(f *cmdutil.Factory, runFunc func(context.Context, *SyncOptions) error) *cobra.Command {
	opts := &SyncOptions{
		SyncOptions: runs.SyncOptions{IO: f.IOStreams, APIClient: f.APIClient, Printer: f.Printer, Follow: f.FollowAPI, NowFunc: f.NowFunc},
		Settings:    f.Settings,
	}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Sync RevenueCat and Apple Search Ads data of the project now",
		Long: `Start the RevenueCat sync and the Apple Ads sync of the project, each only when
its integration is active. With --wait both runs are followed in one display and
the worse outcome decides the exit code. When either sync is already pending or
running nothing is started (exit 5); --attach adopts the running one and starts
the other. The project is --project-id, else OWLMETRY_PROJECT_ID, else the
profile's default_project.`,
		Example: `  # Sync both and wait
  owlmetry ads sync --wait

  # Nightly CI job: join what is running, keep the final runs
  owlmetry ads sync --project-id 1a2b3c4d-0000-4000-8000-000000000001 --attach --wait --format json | jq -r '.job_runs[].status'`,
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
	cmd.Flags().BoolVar(&opts.Attach, "attach", false, "adopt a sync that is already pending or running and start the other")
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
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	ids := map[string]string{} // job type → run id
	resp, err := c.AdsSync(ctx, project)
	doc := json.RawMessage(resp.Raw)
	var conflict *apitype.ConflictError
	switch {
	case err == nil:
		if resp.RevenueCatJobRunID != nil {
			ids[jobtype.RevenueCatSync] = *resp.RevenueCatJobRunID
		}
		if resp.AppleAdsJobRunID != nil {
			ids[jobtype.AppleAdsSync] = *resp.AppleAdsJobRunID
		}
	case errors.As(err, &conflict) && opts.Attach:
		if err := attachAll(ctx, opts, c, p.Format, conflict, ids); err != nil {
			return err
		}
		out := map[string]any{"syncing": true, "attached": true}
		for _, s := range slots {
			if id, ok := ids[s.jobType]; ok {
				out[s.key] = id
			} else {
				out[s.key] = nil
			}
		}
		if doc, err = json.Marshal(out); err != nil {
			return err
		}
	case client.IsNotFound(err):
		return cmdutil.WithHint(err, runs.NotFoundHint)
	default:
		return err
	}

	var order []string
	for _, s := range slots {
		if id, ok := ids[s.jobType]; ok {
			order = append(order, id)
		}
	}
	if len(order) == 0 {
		cmdutil.Notef(opts.IO, p.Format, "Nothing to sync: %s", nothingReason)
		if opts.Wait.Enabled {
			if doc, err = runs.WithKey(doc, "job_runs", []apitype.JobRun{}); err != nil {
				return err
			}
		}
		return p.Print(doc, nil)
	}
	if !opts.Wait.Enabled {
		if err := p.Print(doc, started(project, ids)); err != nil {
			return err
		}
		cmdutil.Hintf(opts.IO, p.Format, "%s", runs.FollowHint(order...))
		return nil
	}
	fr, err := opts.Follow(ctx, order, opts.Wait)
	if err != nil {
		return err
	}
	if doc, err = runs.WithKey(doc, "job_runs", fr.Runs); err != nil {
		return err
	}
	if err := p.Print(doc, runs.RunDetails(fr.Runs...)); err != nil {
		return err
	}
	return fr.Err()
}

// attachAll adopts every run the conflict names and starts each remaining sync through
// its integration route (cli.md §8.2). A 404 or zero-work answer there is a note.
func attachAll(ctx context.Context, opts *SyncOptions, c *client.Client, format cmdutil.Format, conflict *apitype.ConflictError, ids map[string]string) error {
	named := conflict.ExistingRunIDs
	if len(named) == 0 && conflict.ExistingRunID != "" {
		named = map[string]string{"": conflict.ExistingRunID}
	}
	if len(named) == 0 {
		return conflict // nothing to attach to: exit 5 as without --attach
	}
	for _, id := range named {
		run, err := runs.Attach(ctx, c, opts.IO, format, opts.NowFunc(), id)
		if err != nil {
			return err
		}
		ids[run.JobType] = run.ID
	}
	for _, s := range slots {
		if _, ok := ids[s.jobType]; ok {
			continue
		}
		provider, _ := runs.ProviderOf(s.jobType)
		resp, err := c.IntegrationSync(ctx, opts.ProjectID, s.provider)
		var again *apitype.ConflictError
		switch {
		case err == nil && resp.Started() && resp.JobRunID != nil:
			ids[s.jobType] = *resp.JobRunID
		case err == nil:
			cmdutil.Notef(opts.IO, format, "%s: nothing to sync: %s", s.jobType, provider.NothingReason)
		case errors.As(err, &again) && again.ExistingRunID != "":
			run, err := runs.Attach(ctx, c, opts.IO, format, opts.NowFunc(), again.ExistingRunID)
			if err != nil {
				return err
			}
			ids[run.JobType] = run.ID
		case client.IsNotFound(err):
			var apiErr *client.APIError
			errors.As(err, &apiErr)
			cmdutil.Notef(opts.IO, format, "%s not started: %s", s.jobType, apiErr.Message())
		default:
			return err
		}
	}
	return nil
}

func started(project string, ids map[string]string) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		var b strings.Builder
		if rc.TTY {
			fmt.Fprintf(&b, "Started ads sync for project %s:\n", tui.ShortID(project))
		}
		for _, s := range slots {
			id, ok := ids[s.jobType]
			switch {
			case !rc.TTY && ok:
				fmt.Fprintf(&b, "%s\t%s\n", id, s.jobType)
			case rc.TTY && ok:
				fmt.Fprintf(&b, "  %-16s %s\n", s.jobType, id)
			case rc.TTY:
				fmt.Fprintf(&b, "  %-16s %s\n", s.jobType, rc.CS.Dim("not started: no active integration"))
			}
		}
		return b.String()
	}
}
