package emukit

import (
	"sync"
	"time"
)

// Clock is the emulator's notion of now (upstreams.md §7.3). Rate windows, token
// expiry, Retry-After values and every other time-dependent vendor behaviour read it, so
// tests can move time instead of sleeping.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock, the default outside tests.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// ManualClock is a clock that moves only when told to. It is safe for concurrent use;
// the control API's POST /_emulator/clock works only with this kind of clock.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a manual clock standing at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t, forwards or backwards.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d and returns the new time.
func (c *ManualClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}
