package commands_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

// BenchmarkWaitLag measures how long `jobs wait` takes to exit after the run it follows
// completes: from the run's completed_at (the database clock, same machine) and from the
// moment its handler returned, through the event stream and through polling. Run it with
// -benchtime 10x or a multiple, so completions cover the poll interval evenly.
func BenchmarkWaitLag(b *testing.B) {
	for _, tc := range []struct {
		name     string
		opts     []owltest.Option
		args     []string
		interval time.Duration
	}{
		{name: "sse", interval: 2 * time.Second},
		{name: "polling-2s", opts: []owltest.Option{owltest.WithoutEventStream()}, interval: 2 * time.Second},
		{name: "polling-500ms", opts: []owltest.Option{owltest.WithoutEventStream()}, args: []string{"--poll-interval", "500ms"}, interval: 500 * time.Millisecond},
	} {
		b.Run(tc.name, func(b *testing.B) {
			stack := owltest.StartStack(b, append(tc.opts, owltest.WithBlockingHandler(jobtype.AppleAdsSync))...)
			project := stack.SeedProject(b)
			env := stack.Env()
			var fromCompleted, fromRelease time.Duration
			i := 0
			for b.Loop() {
				i++
				res := owltest.Run(b, env, "jobs", "trigger", "apple_ads_sync", "--project-id", project.ID, "--format", "json")
				var run apitype.JobRun
				if res.ExitCode != cmdutil.ExitOK || json.Unmarshal(res.Stdout.Bytes(), &run) != nil {
					b.Fatalf("trigger failed: %s", res.Stderr)
				}
				stack.Blocker.Started(b, run.ID)
				r := owltest.Start(b, env, owltest.StartOptions{}, append([]string{"jobs", "wait", run.ID, "--progress", "lines", "--format", "table"}, tc.args...)...)
				r.Stderr.WaitFor(b, "waiting for apple_ads_sync run")
				// Completions land at evenly spread points of the poll interval, so the
				// polling figures are averages rather than the worst case.
				time.Sleep(tc.interval * time.Duration(i%10) / 10)
				released := time.Now()
				stack.Blocker.Release(run.ID)
				end := r.Wait(b)
				exited := time.Now()
				if end.ExitCode != cmdutil.ExitOK {
					b.Fatalf("wait exited %d", end.ExitCode)
				}
				view := owltest.Run(b, env, "jobs", "view", run.ID, "--format", "json")
				var final apitype.JobRun
				if json.Unmarshal(view.Stdout.Bytes(), &final) != nil || final.CompletedAt == nil {
					b.Fatal("no completed_at")
				}
				fromCompleted += exited.Sub(final.CompletedAt.Time)
				fromRelease += exited.Sub(released)
			}
			b.ReportMetric(float64(fromCompleted.Milliseconds())/float64(b.N), "ms-after-completed_at")
			b.ReportMetric(float64(fromRelease.Milliseconds())/float64(b.N), "ms-after-handler-return")
		})
	}
}
