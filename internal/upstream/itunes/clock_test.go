package itunes_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// manualClock moves only when Advance is called; WaitUntil blocks until then. Tests use
// waitWaiters to know a goroutine is parked in the pacer before acting.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*waiter]struct{}
	changed chan struct{}
}

type waiter struct {
	until time.Time
	done  chan struct{}
}

func newManualClock(t time.Time) *manualClock {
	return &manualClock{now: t, waiters: map[*waiter]struct{}{}, changed: make(chan struct{})}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) WaitUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if !t.After(c.now) {
		c.mu.Unlock()
		return ctx.Err()
	}
	w := &waiter{until: t, done: make(chan struct{})}
	c.waiters[w] = struct{}{}
	c.notifyLocked()
	c.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiters, w)
		c.notifyLocked()
		c.mu.Unlock()
		return ctx.Err()
	}
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for w := range c.waiters {
		if !w.until.After(c.now) {
			close(w.done)
			delete(c.waiters, w)
		}
	}
	c.notifyLocked()
}

func (c *manualClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitWaiters blocks until exactly n goroutines wait on the clock and returns their
// deadlines, sorted.
func (c *manualClock) waitWaiters(t *testing.T, n int) []time.Time {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		ch := c.changed
		if len(c.waiters) == n {
			out := make([]time.Time, 0, n)
			for w := range c.waiters {
				out = append(out, w.until)
			}
			c.mu.Unlock()
			slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
			return out
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			require.FailNow(t, "timed out waiting for clock waiters", "want %d", n)
		}
	}
}

// jumpClock is virtual time that runs as fast as the pacer lets it: a wait moves the
// clock straight to its deadline. Shared by the pacer and the emulator's throttle, it
// checks pacing against the token bucket without any real waiting: time only advances
// as far as the pacer's schedule says, so a pacer that sends too fast meets the bucket.
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
