package commands_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

// Every command's --format json output is exactly one JSON document on stdout, with
// nothing on stderr when it succeeds.
func TestEveryCommandJSON(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithHandler(jobtype.AppleAdsSync, instant{}), owltest.WithHandler(jobtype.RevenueCatSync, instant{}),
		owltest.WithHandler(jobtype.AppStoreRatingsSync, instant{}), owltest.WithHandler(jobtype.AppStoreConnectReviewsSync, instant{}))
	project := stack.SeedProject(t, owltest.WithAppleApps(1), owltest.WithAppUsers(2),
		owltest.WithIntegration("revenuecat"), owltest.WithIntegration("apple-search-ads"), owltest.WithIntegration("app-store-connect"))
	env := stack.Env().With("OWLMETRY_PROJECT_ID", project.ID)
	run := triggerRun(t, stack, env, "apple_ads_sync", project.ID, "--wait")

	for _, args := range [][]string{
		{"version"},
		{"jobs", "types"},
		{"jobs", "list"},
		{"jobs", "list", "--all"},
		{"jobs", "view", run.ID},
		{"jobs", "wait", run.ID},
		{"jobs", "trigger", "revenuecat_sync", "--wait"},
		{"ads", "sync", "--wait"},
		{"ads", "sync", "--wait", "--attach"},
		{"ratings", "sync", "--wait", "--attach"},
		{"integrations", "sync", "app-store-connect", "--wait", "--attach"},
		{"integrations", "sync", "apple-search-ads", "--wait", "--attach"},
		{"integrations", "sync", "revenuecat", "--attach"},
		{"whoami"},
		{"config"},
		{"config", "path"},
		{"auth", "switch"},
	} {
		res := owltest.Run(t, env, append(args, "--format", "json")...)
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, "%v: %s", args, res.Stderr.String())
		var doc any
		oneJSON(t, res, &doc)
		require.Empty(t, res.Stderr.String(), "%v", args)
	}
}

// instant is a handler whose runs complete at once with some progress.
type instant struct{}

func (instant) Run(_ context.Context, run *engine.Run) (engine.Result, error) {
	run.Progress.Report(1, 1, "done")
	return engine.Result{"processed": 1}, nil
}
