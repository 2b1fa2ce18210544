// Package e2e_test runs owlmetry end to end in one process: the API server and the job
// engine on a real listener and a fresh Postgres database (owltest), the real job
// handlers talking to the upstream emulators on real listeners, and the CLI driven
// through commands.Run.
package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
	"github.com/owlmetry/owlmetry/internal/pgtest"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// waitFor bounds every wait: generous for a loaded 2-core machine, never a fixed sleep.
const waitFor = 60 * time.Second

// gateClock is the handlers' clock for retry backoffs. Backoffs cost no time, except
// while the gate is closed: then a backoff reports itself on sleeping and waits until
// the test opens the gate, which holds a run active for exactly as long as a test needs.
type gateClock struct {
	closed   atomic.Bool
	sleeping chan struct{}
	open     chan struct{}
}

func newGateClock() *gateClock {
	return &gateClock{sleeping: make(chan struct{}, 1), open: make(chan struct{})}
}

func (c *gateClock) Now() time.Time { return time.Now() }

func (c *gateClock) Sleep(ctx context.Context, _ time.Duration) error {
	if !c.closed.Load() {
		return ctx.Err()
	}
	select {
	case c.sleeping <- struct{}{}:
	default:
	}
	select {
	case <-c.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jumpClock is the pacer's virtual time: a wait moves it straight to its deadline, so a
// pacer widened by an outage costs no real time. The emulator's throttle is off, so
// nothing else reads it.
type jumpClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) WaitUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// world is a stack whose iTunes jobs run the real handlers against the iTunes emulator,
// and one project with the universe's two App Store apps.
type world struct {
	stack   *owltest.Stack
	emu     *emuitunes.Server
	emuURL  string
	clock   *gateClock
	project owltest.Project
	env     owltest.Env

	snapframe, tidepool owltest.App
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{clock: newGateClock()}
	var err error
	// The emulator's own throttle is off and the pacer runs on virtual time: pacing is
	// the handler tests' subject, and here a sync of 498 lookups takes about a second.
	w.emu, err = emuitunes.New(emuitunes.Options{
		State:  universe.Default().ITunesState(),
		Limits: &emuitunes.Limits{Throttle: emuitunes.Throttle{Enabled: false, PerMinute: 1200, Burst: 20, Status: http.StatusForbidden}},
	})
	require.NoError(t, err)
	base, stop, err := emukit.Start(context.Background(), w.emu.Handler(), "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	w.emuURL = base
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	client, err := itunes.New(itunes.Options{
		BaseURL:   base,
		Pacer:     itunes.NewPacer(itunes.PacerOptions{MinInterval: 2 * time.Millisecond, Concurrency: 8, Clock: &jumpClock{now: time.Now()}}),
		Transport: tr,
	})
	require.NoError(t, err)

	handlers := jobs.All(jobs.Deps{ITunes: client, Clock: w.clock})
	w.stack = owltest.StartStack(t,
		owltest.WithHandler(jobtype.AppStoreRatingsSync, handlers[jobtype.AppStoreRatingsSync]),
		owltest.WithHandler(jobtype.AppVersionSync, handlers[jobtype.AppVersionSync]))
	w.project = w.stack.SeedProject(t)
	w.snapframe = w.stack.SeedApp(t, w.project, owltest.BundleID(universe.SnapframeBundleID))
	w.tidepool = w.stack.SeedApp(t, w.project, owltest.BundleID(universe.TidepoolBundleID))
	w.env = w.stack.Env()
	return w
}

// syncDoc is the JSON document of `ratings sync --wait --format json`.
type syncDoc struct {
	Syncing bool             `json:"syncing"`
	Total   int64            `json:"total"`
	JobRuns []apitype.JobRun `json:"job_runs"`
}

func decode(t *testing.T, res owltest.Result) syncDoc {
	t.Helper()
	var doc syncDoc
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &doc), res.Stdout.String())
	require.Len(t, doc.JobRuns, 1)
	return doc
}

func resultOf(t *testing.T, run apitype.JobRun) map[string]any {
	t.Helper()
	var r map[string]any
	require.NoError(t, json.Unmarshal(run.Result, &r))
	return r
}

func TestRatingsSyncWait(t *testing.T) {
	t.Parallel()
	w := newWorld(t)

	res := owltest.Run(t, w.env, "ratings", "sync", "--project-id", w.project.ID, "--wait", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	doc := decode(t, res)
	require.True(t, doc.Syncing)
	require.Equal(t, int64(2), doc.Total)
	run := doc.JobRuns[0]
	require.Equal(t, apitype.StatusCompleted, run.Status)
	require.Equal(t, map[string]any{
		"apps_processed": float64(2), "apps_skipped": float64(0), "apps_partial": float64(0),
		"storefronts_fetched": float64(498), "rows_upserted": float64(7), "tombstones_written": float64(0),
		"notifications_sent": float64(0), "errors": float64(0), "throttle_hits": float64(0), "transient_hits": float64(0),
		"retries": float64(0), "retries_exhausted": float64(0), "final_delay_ms": float64(2), "_silent": false,
	}, resultOf(t, run))
	require.Equal(t, &apitype.Progress{Processed: 498, Total: 498, Message: "app 2 of 2 · 0 throttled · delay 2 ms"}, run.Progress)

	var rows int
	require.NoError(t, w.stack.DB.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM app_store_ratings WHERE project_id = $1`, w.project.ID).Scan(&rows))
	require.Equal(t, 7, rows)
	require.Len(t, w.emu.Requests(emukit.Filter{Path: "/lookup"}), 498, "the sync went through the emulator")

	// Without --format json a person gets the run's details on stdout.
	res = owltest.Run(t, w.env, "ratings", "sync", "--project-id", w.project.ID, "--wait", "--progress", "none")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Contains(t, res.Stdout.String(), "completed")
}

func TestRatingsSyncWhileOneIsRunning(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// The first lookup is throttled; its backoff waits on the closed gate, holding the
	// first run active.
	w.clock.closed.Store(true)
	w.emu.Throttle(1)
	first := make(chan owltest.Result, 1)
	go func() {
		first <- owltest.Run(t, w.env, "ratings", "sync", "--project-id", w.project.ID, "--wait", "--format", "json")
	}()
	select {
	case <-w.clock.sleeping:
	case <-time.After(waitFor):
		t.Fatal("the first run never reached its backoff")
	}
	var firstID string
	require.NoError(t, w.stack.DB.Pool.QueryRow(context.Background(),
		`SELECT id::text FROM job_runs WHERE job_type = $1 AND status = 'running'`, jobtype.AppStoreRatingsSync).Scan(&firstID))

	second := owltest.Run(t, w.env, "ratings", "sync", "--project-id", w.project.ID)
	require.Equal(t, cmdutil.ExitConflict, second.ExitCode)
	require.Empty(t, second.Stdout.String())
	require.Contains(t, second.Stderr.String(), "existing run: "+firstID)

	close(w.clock.open)
	var res owltest.Result
	select {
	case res = <-first:
	case <-time.After(waitFor):
		t.Fatal("the first sync never ended")
	}
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	run := decode(t, res).JobRuns[0]
	require.Equal(t, firstID, run.ID)
	require.Equal(t, apitype.StatusCompleted, run.Status)
	r := resultOf(t, run)
	require.Equal(t, float64(1), r["throttle_hits"])
	require.Equal(t, float64(1), r["retries"])
	require.Equal(t, float64(0), r["errors"])
	require.Equal(t, float64(7), r["rows_upserted"])
}

func TestRatingsSyncUpstreamDown(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.emu.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Path: "/lookup"}, Action: emukit.FaultAction{Status: http.StatusServiceUnavailable}})

	res := owltest.Run(t, w.env, "ratings", "sync", "--project-id", w.project.ID, "--wait", "--format", "json")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	run := decode(t, res).JobRuns[0]
	require.Equal(t, apitype.StatusFailed, run.Status)
	require.NotNil(t, run.Error)
	require.True(t, strings.HasPrefix(*run.Error, "iTunes Lookup is failing: 16 storefront lookups in a row gave up after 8 attempts each"), *run.Error)

	res = owltest.Run(t, w.env, "ratings", "sync", "--project-id", w.project.ID, "--wait", "--progress", "none")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "iTunes Lookup is failing")
}

// systemRun is the part of `system jobs run --format json` these tests read.
type systemRun struct {
	Status   string         `json:"status"`
	Executor string         `json:"executor"`
	Result   map[string]any `json:"result"`
}

// The local runs of `owlmetry system jobs run --local` build their handlers from the
// environment, as owlmetry server does: the iTunes variables alone point them at the
// emulator.
func TestITunesJobsRunLocally(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	env := w.env.With(
		"OWLMETRY_ITUNES_API_URL", w.emuURL+"/",
		"OWLMETRY_ITUNES_MIN_INTERVAL", "1ms",
		"OWLMETRY_ITUNES_CONCURRENCY", "4",
	)

	res := owltest.Run(t, env, "system", "jobs", "run", "app_store_ratings_sync", "--local", "--project-id", w.project.ID, "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var run systemRun
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &run), res.Stdout.String())
	require.Equal(t, "completed", run.Status)
	require.Equal(t, "local", run.Executor)
	require.Equal(t, float64(2), run.Result["apps_processed"])
	require.Equal(t, float64(498), run.Result["storefronts_fetched"])
	require.Equal(t, float64(7), run.Result["rows_upserted"])
	require.Equal(t, float64(1), run.Result["final_delay_ms"], "the pacer of OWLMETRY_ITUNES_MIN_INTERVAL")

	res = owltest.Run(t, env, "system", "jobs", "run", "app_version_sync", "--local", "--param", "app_id="+w.tidepool.ID, "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &run), res.Stdout.String())
	require.Equal(t, "completed", run.Status)
	require.Equal(t, float64(1), run.Result["app_store_synced"])
	var version string
	var appleID int64
	require.NoError(t, w.stack.DB.Pool.QueryRow(context.Background(),
		`SELECT latest_app_version, apple_app_store_id FROM apps WHERE id = $1`, w.tidepool.ID).Scan(&version, &appleID))
	require.Equal(t, "3.1.0", version)
	require.Equal(t, universe.TidepoolAppleID, appleID, "the Apple id is learnt from iTunes")

	bad := owltest.Run(t, w.env.With("OWLMETRY_ITUNES_CONCURRENCY", "many"), "system", "jobs", "run", "app_version_sync", "--local")
	require.Equal(t, cmdutil.ExitFailure, bad.ExitCode)
	require.Contains(t, bad.Stderr.String(), `invalid OWLMETRY_ITUNES_CONCURRENCY "many"`)
}
