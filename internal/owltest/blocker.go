package owltest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/owlmetry/owlmetry/internal/engine"
)

// waitLimit bounds every wait of the harness, so a broken expectation fails the test
// instead of hanging it.
const waitLimit = 30 * time.Second

// Blocker is a handler that holds its runs until the test decides how they end. A run
// starts, becomes visible through Started, reports whatever the test reports through it
// and ends when the test calls Finish or Release, when its context is cancelled (a
// cancel request, shutdown) or when the stack stops.
type Blocker struct {
	mu      sync.Mutex
	runs    map[string]*blocked
	changed chan struct{} // closed and replaced whenever a run starts
	closed  chan struct{}
	once    sync.Once
}

type blocked struct {
	run    *engine.Run
	finish chan outcome
}

type outcome struct {
	result engine.Result
	err    error
}

// NewBlocker returns an empty blocker.
func NewBlocker() *Blocker {
	return &Blocker{runs: map[string]*blocked{}, changed: make(chan struct{}), closed: make(chan struct{})}
}

// entry returns the state of a run, creating it when the test refers to it first.
func (b *Blocker) entry(runID string) *blocked {
	r, ok := b.runs[runID]
	if !ok {
		r = &blocked{finish: make(chan outcome, 1)}
		b.runs[runID] = r
	}
	return r
}

// Run implements engine.Handler.
func (b *Blocker) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	b.mu.Lock()
	r := b.entry(run.ID)
	r.run = run
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()

	select {
	case o := <-r.finish:
		return o.result, o.err
	case <-ctx.Done():
		return nil, engine.Stopped(engine.Result{"stopped": run.StopReason().String()})
	case <-b.closed:
		return nil, engine.Stopped(nil)
	}
}

// Started waits until the run has started and returns what its handler received, so the
// test can report progress through run.Progress.
func (b *Blocker) Started(t testing.TB, runID string) *engine.Run {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		b.mu.Lock()
		r, ok := b.runs[runID]
		changed := b.changed
		b.mu.Unlock()
		if ok && r.run != nil {
			return r.run
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("owltest: run %s never started", runID)
			return nil
		}
	}
}

// Finish makes the run end with result and err, as if its handler returned them. It
// may be called before the run starts; the handler then returns at once.
func (b *Blocker) Finish(runID string, result engine.Result, err error) {
	b.mu.Lock()
	r := b.entry(runID)
	b.mu.Unlock()
	select {
	case r.finish <- outcome{result: result, err: err}:
	default: // already finished
	}
}

// Release makes the run complete with the result {"released": true}.
func (b *Blocker) Release(runID string) {
	b.Finish(runID, engine.Result{"released": true}, nil)
}

// Close stops every held run and every later one. The stack calls it on shutdown.
func (b *Blocker) Close() {
	b.once.Do(func() { close(b.closed) })
}
