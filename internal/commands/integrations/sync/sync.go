// Package sync implements `owlmetry integrations sync`.
package sync

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// SyncOptions holds what `owlmetry integrations sync` needs.
type SyncOptions struct {
	runs.SyncOptions
	Settings func() *cmdutil.Settings
	Project  cmdutil.ProjectFlag

	Provider runs.Provider
	// User is --user: sync this one user synchronously instead of starting a run.
	User string
}

// NewCmdSync builds `owlmetry integrations sync`.
func NewCmdSync(f *cmdutil.Factory, runFunc func(context.Context, *SyncOptions) error) *cobra.Command {
	opts := &SyncOptions{
		SyncOptions: runs.SyncOptions{IO: f.IOStreams, APIClient: f.APIClient, Printer: f.Printer, Follow: f.FollowAPI, NowFunc: f.NowFunc},
		Settings:    f.Settings,
	}
	cmd := &cobra.Command{
		Use:   "sync <revenuecat|apple-search-ads|app-store-connect>",
		Short: "Sync one integration of the project now, or one of its users",
		Long: `Start the bulk sync of one integration of the project: RevenueCat subscribers,
Apple Search Ads attribution, or App Store Connect reviews. With --user, sync one
app user right away instead (RevenueCat and Apple Search Ads only); that creates no
run. The project is --project-id, else OWLMETRY_PROJECT_ID, else the profile's
default_project.`,
		Example: `  # Sync App Store Connect reviews and wait
  owlmetry integrations sync app-store-connect --wait

  # Refresh one user's RevenueCat properties now
  owlmetry integrations sync revenuecat --user user_812

  # In CI, joining a sync that is already running
  owlmetry integrations sync revenuecat --attach --wait --timeout 1h --format json | jq -r '.job_runs[0].status'`,
		Args:      cmdutil.ExactArgs(1, "a provider (revenuecat, apple-search-ads or app-store-connect)"),
		ValidArgs: runs.ProviderIDs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.parse(cmd, args[0]); err != nil {
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
	fl := cmd.Flags()
	opts.Project.BuildFlags(fl)
	fl.StringVar(&opts.User, "user", "", "sync this one app user now instead of starting a run")
	fl.BoolVar(&opts.Attach, "attach", false, "when this sync is already pending or running, adopt that run")
	opts.Wait.BuildFlags(fl, cmdutil.WaitOptional)
	opts.Wait.RegisterCompletions(cmd)
	return cmd
}

func (o *SyncOptions) parse(cmd *cobra.Command, arg string) error {
	p, err := runs.ParseProvider(arg)
	if err != nil {
		return err
	}
	o.Provider = p
	fl := cmd.Flags()
	if err := o.Project.Validate(fl); err != nil {
		return err
	}
	if fl.Changed("user") {
		switch {
		case !p.UserSync:
			return cmdutil.FlagErrorf("%s has no per-user sync", p.ID)
		case strings.TrimSpace(o.User) == "":
			return cmdutil.FlagErrorf("--user must not be empty")
		case p.ID == "revenuecat" && strings.HasPrefix(o.User, "$RCAnonymousID:"):
			return cmdutil.FlagErrorf("anonymous RevenueCat ids ($RCAnonymousID:…) cannot be synced")
		case o.Wait.Enabled:
			return cmdutil.FlagErrorf("--user cannot be used with --wait: a user sync finishes before it answers")
		case o.Attach:
			return cmdutil.FlagErrorf("--user cannot be used with --attach")
		}
	}
	return o.Wait.Validate(fl)
}

func syncRun(ctx context.Context, opts *SyncOptions) error {
	project, err := opts.Settings().ProjectID(opts.Project.Value)
	if err != nil {
		return err
	}
	opts.ProjectID = project
	if opts.User != "" {
		return userSyncRun(ctx, opts)
	}
	provider := opts.Provider
	return runs.RunSync(ctx, &opts.SyncOptions, runs.SyncSpec{
		JobType:       provider.JobType,
		Unit:          provider.Unit,
		NothingReason: provider.NothingReason,
		Start: func(ctx context.Context, c *client.Client, projectID string) (apitype.SyncResponse, error) {
			return c.IntegrationSync(ctx, projectID, provider.ID)
		},
	})
}

func userSyncRun(ctx context.Context, opts *SyncOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	res, err := c.IntegrationUserSync(ctx, client.IntegrationUserSyncParams{ProjectID: opts.ProjectID, Provider: opts.Provider.ID, UserID: opts.User})
	if err != nil {
		if client.IsNotFound(err) {
			return cmdutil.WithHint(err, runs.NotFoundHint)
		}
		return err
	}
	if err := p.Print(res, userSynced(opts.User, res)); err != nil {
		return err
	}
	for _, fe := range res.FieldErrors {
		cmdutil.Warnf(opts.IO, "could not resolve the %s name (upstream HTTP %d)", strings.ReplaceAll(fe.Field, "_", " "), fe.StatusCode)
	}
	return nil
}

func userSynced(user string, res apitype.UserSyncResponse) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		keys := make([]string, 0, len(res.Properties))
		w := 0
		for k := range res.Properties {
			keys = append(keys, k)
			w = max(w, len(k))
		}
		sort.Strings(keys)
		var b strings.Builder
		if rc.TTY {
			fmt.Fprintf(&b, "Synced user %s: updated in %d app(s)\n", user, res.Updated)
		}
		for _, k := range keys {
			if rc.TTY {
				fmt.Fprintf(&b, "  %s%s  %s\n", rc.CS.Bold(k), strings.Repeat(" ", w-len(k)), res.Properties[k])
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", tui.Escape(k), tui.Escape(res.Properties[k]))
			}
		}
		return b.String()
	}
}
