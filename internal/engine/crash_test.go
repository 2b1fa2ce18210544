package engine_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

const (
	envCrashChild = "OWLMETRY_ENGINE_CRASH_CHILD"
	envCrashURL   = "OWLMETRY_ENGINE_CRASH_URL"
	envCrashNode  = "OWLMETRY_ENGINE_CRASH_NODE"
)

// crashChild runs when the test binary is re-executed as a worker process: it serves
// partition_creation with a handler that never ends, until it is killed.
func crashChild() bool {
	if os.Getenv(envCrashChild) != "1" {
		return false
	}
	ctx := context.Background()
	pool, err := db.OpenPool(ctx, os.Getenv(envCrashURL), db.PoolOptions{MaxConns: 10})
	if err != nil {
		panic(err)
	}
	settings := testSettings()
	settings.NodeID = os.Getenv(envCrashNode)
	e, err := engine.New(pool, engine.Config{Settings: settings, TestOnly: true, Handlers: map[string]engine.Handler{
		jobtype.PartitionCreation: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			run.Progress.Report(1, 3, "holding")
			select {} // until SIGKILL
		}),
	}})
	if err != nil {
		panic(err)
	}
	if err := e.Start(ctx); err != nil {
		panic(err)
	}
	select {}
}

// startCrashChild starts a worker process with the node id and returns it.
func startCrashChild(t *testing.T, tdb *pgtest.DB, node string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashURL+"="+tdb.URL, envCrashNode+"="+node)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
	return cmd
}

func killChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait() //nolint:errcheck // killed on purpose
}

// A worker killed with SIGKILL mid-run: after a restart on the same node the run is
// failed at once with the exact message, and a run that was still queued runs to its end.
func TestCrashRecoveredBySameNodeRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	node := "crash-node-" + tdb.Name
	handlers := map[string]engine.Handler{jobtype.PartitionCreation: noop(), jobtype.AttachmentCleanup: noop()}
	inserter := newEngine(t, tdb, handlers, func(c *engine.Config) { c.Workers = 0 })

	child := startCrashChild(t, tdb, node)
	running := enqueueSystem(t, inserter, jobtype.PartitionCreation)
	waitRun(t, inserter, running.ID, func(r engine.RunRecord) bool { return r.Status == apitype.StatusRunning && r.Progress != nil })
	queued := enqueueSystem(t, inserter, jobtype.AttachmentCleanup) // the child cannot run this kind
	killChild(t, child)

	st, err := inserter.Get(ctx, running.ID)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusRunning, st.Status, "nothing else has touched it yet")

	restarted := newEngine(t, tdb, handlers, func(c *engine.Config) {
		c.NodeID = node
		c.StaleAfter = time.Hour // only same-node recovery can explain the failure
		c.ReapInterval = time.Hour
	})
	failed, err := restarted.Get(ctx, running.ID)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusFailed, failed.Status, "failed during Start, before any lease could expire")
	require.Equal(t, engine.ErrTextRestarted, *failed.Error)
	require.Equal(t, &apitype.Progress{Processed: 1, Total: 3, Message: "holding"}, failed.Progress, "the last persisted progress is kept")

	done := waitRun(t, restarted, queued.ID, terminal)
	require.Equal(t, apitype.StatusCompleted, done.Status)
}

// A worker killed with SIGKILL while another replica lives: the other's reaper fails the
// orphan once its lease expires, and leaves the live replica's own run alone.
func TestCrashRecoveredByLeaseExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	b := newBlocker()
	live := newEngine(t, tdb, map[string]engine.Handler{jobtype.AttachmentCleanup: b}, func(c *engine.Config) {
		c.StaleAfter = 1500 * time.Millisecond
	})
	// An API-only replica of the same build knows every type, so it can enqueue the kind
	// only the child executes.
	inserter := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: noop()}, func(c *engine.Config) {
		c.Workers = 0
		c.StaleAfter = 1500 * time.Millisecond
	})
	child := startCrashChild(t, tdb, "crash-lease-"+tdb.Name)

	mine := enqueueSystem(t, live, jobtype.AttachmentCleanup)
	b.waitStarted(t)
	orphan := enqueueSystem(t, inserter, jobtype.PartitionCreation)
	waitRun(t, live, orphan.ID, func(r engine.RunRecord) bool { return r.Status == apitype.StatusRunning && r.Progress != nil })
	killChild(t, child)

	failed := waitRun(t, live, orphan.ID, terminal)
	require.Equal(t, apitype.StatusFailed, failed.Status)
	require.Equal(t, engine.ErrTextRestarted, *failed.Error)
	require.True(t, failed.CompletedAt.Sub(*failed.HeartbeatAt) >= 1500*time.Millisecond, "reaped only after the lease expired")

	still, err := live.Get(ctx, mine.ID)
	require.NoError(t, err)
	require.Equal(t, apitype.StatusRunning, still.Status, "a live owner's run is never reaped")
	close(b.release)
	require.Equal(t, apitype.StatusCompleted, waitRun(t, live, mine.ID, terminal).Status)
}
