package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestMain(m *testing.M) { testMain(m) }

var nodeSeq atomic.Int64

// testSettings are fast timers for tests; each engine gets its own node id.
func testSettings() engine.Settings {
	return engine.Settings{
		NodeID:            fmt.Sprintf("test-node-%d", nodeSeq.Add(1)),
		Workers:           10,
		InternalWorkers:   2,
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		ProgressInterval:  150 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond,
		StaleAfter:        time.Second,
		ReapInterval:      200 * time.Millisecond,
		ShutdownTimeout:   4 * time.Second,
		CronProfile:       "off",
	}
}

// newEngine starts an engine on tdb with the handlers; mod may adjust the config first.
func newEngine(t *testing.T, tdb *pgtest.DB, handlers map[string]engine.Handler, mod func(*engine.Config)) *engine.Engine {
	t.Helper()
	cfg := engine.Config{Settings: testSettings(), Handlers: handlers, TestOnly: true}
	if mod != nil {
		mod(&cfg)
	}
	e, err := engine.New(tdb.Pool, cfg)
	require.NoError(t, err)
	if !cfg.Local {
		require.NoError(t, e.Start(context.Background()))
	}
	t.Cleanup(func() { e.Close() }) //nolint:errcheck
	return e
}

// waitRun waits until the run satisfies cond, re-reading it on every notification and at
// least every 200 ms, for at most 20 s.
func waitRun(t *testing.T, e *engine.Engine, id string, cond func(engine.RunRecord) bool) engine.RunRecord {
	t.Helper()
	sub := e.Subscribe(id)
	defer sub.Close()
	deadline := time.After(20 * time.Second)
	for {
		rec, err := e.Get(context.Background(), id)
		require.NoError(t, err)
		if cond(rec) {
			return rec
		}
		select {
		case <-sub.C:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("run %s never reached the expected state; last: status=%s error=%v", id, rec.Status, rec.Error)
		}
	}
}

func statusIs(s string) func(engine.RunRecord) bool {
	return func(r engine.RunRecord) bool { return string(r.Status) == s }
}

func terminal(r engine.RunRecord) bool { return r.Status.Terminal() }

// blocker is a handler that reports it started and then waits for release or its context.
type blocker struct {
	started chan string
	release chan struct{}
	ignore  bool // keep working after the context is cancelled
	result  engine.Result
	sawStop atomic.Int32
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), release: make(chan struct{})}
}

func (b *blocker) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	b.started <- run.ID
	run.Progress.Report(1, 10, "working")
	if b.ignore {
		<-b.release
		b.sawStop.Store(int32(run.StopReason()))
		return b.result, nil
	}
	select {
	case <-b.release:
		return b.result, nil
	case <-ctx.Done():
		b.sawStop.Store(int32(run.StopReason()))
		return nil, engine.Stopped(engine.Result{"processed": 1})
	}
}

func (b *blocker) waitStarted(t *testing.T) string {
	t.Helper()
	select {
	case id := <-b.started:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("handler never started")
		return ""
	}
}

func noop() engine.Handler {
	return engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
		return engine.Result{"ok": true, "_silent": true}, nil
	})
}
