package itunes

import (
	"context"
	"sync"
	"time"

	"github.com/owlmetry/owlmetry/internal/metrics"
)

// Clock is the time source of the pacer: now, and a cancellable wait until an instant.
// Tests inject a fake so pacing is checked without sleeping.
type Clock interface {
	Now() time.Time
	// WaitUntil blocks until the clock reaches t or ctx ends, returning ctx.Err() in the
	// latter case.
	WaitUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) WaitUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Feedback is what a finished request tells the pacer.
type Feedback int

// The kinds of feedback (jobs.md §3.5.2).
const (
	// FeedbackNone leaves the interval alone: the request never got an answer because
	// its caller gave up.
	FeedbackNone Feedback = iota
	// FeedbackOK is any answer that was neither throttled nor transient.
	FeedbackOK
	// FeedbackThrottled is a 403 or 429: the interval at least doubles.
	FeedbackThrottled
	// FeedbackTransient is a 5xx, network error, timeout or unparsable body.
	FeedbackTransient
)

// The pacer's interval bounds (jobs.md §3.5.2).
const (
	throttledFloor = 500 * time.Millisecond
	transientFloor = 300 * time.Millisecond
	intervalCeil   = 10 * time.Second
)

// PacerOptions configure a Pacer.
type PacerOptions struct {
	// MinInterval is the baseline interval d starts at and recovers to. Defaults to
	// 150ms (OWLMETRY_ITUNES_MIN_INTERVAL).
	MinInterval time.Duration
	// Concurrency caps requests in flight. Defaults to 8 (OWLMETRY_ITUNES_CONCURRENCY).
	Concurrency int
	// Clock defaults to the wall clock.
	Clock Clock
	// Metrics receives the interval gauge and the wait counter; nil records nothing.
	Metrics *metrics.Set
}

// Pacer spaces iTunes requests and caps how many are in flight. Apple throttles per
// client IP, so one Pacer serves the whole process: app_version_sync,
// app_store_ratings_sync and any route share it (jobs.md §3.5.2, §3.5.3).
//
// Pacing is a next-slot reservation with an adaptive interval d: a caller takes
// slot = max(next, now), sets next = slot + d and waits until slot. Throttled answers
// widen d to min(max(2d, 500ms), 10s), transient ones to min(max(1.5d, 300ms), 10s), and
// every other answer narrows it to max(0.97d, MinInterval). Because slots follow the
// schedule rather than the moment a waiter wakes, late timers never add up to a burst
// and a steady caller gets exactly one request per d.
type Pacer struct {
	min     time.Duration
	ceil    time.Duration
	clock   Clock
	metrics *metrics.Set
	slots   chan struct{}

	mu   sync.Mutex
	next time.Time
	d    time.Duration
}

// NewPacer builds a pacer.
func NewPacer(opts PacerOptions) *Pacer {
	if opts.MinInterval <= 0 {
		opts.MinInterval = DefaultConfig().MinInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConfig().Concurrency
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	p := &Pacer{
		min:     opts.MinInterval,
		ceil:    max(intervalCeil, opts.MinInterval),
		clock:   opts.Clock,
		metrics: opts.Metrics,
		slots:   make(chan struct{}, opts.Concurrency),
		d:       opts.MinInterval,
	}
	p.reportLocked() // p is not shared yet
	return p
}

// NewPacerFromConfig builds the process's pacer from the configuration.
func NewPacerFromConfig(cfg Config, m *metrics.Set) *Pacer {
	return NewPacer(PacerOptions{MinInterval: cfg.MinInterval, Concurrency: cfg.Concurrency, Metrics: m})
}

// Interval returns the current interval d; app_store_ratings_sync reports it as
// final_delay_ms.
func (p *Pacer) Interval() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.d
}

// Concurrency returns the cap on requests in flight, the natural size of a caller's
// worker pool.
func (p *Pacer) Concurrency() int { return cap(p.slots) }

// Permit is one request's right to go out. Release it exactly once with the request's
// feedback.
type Permit struct {
	p    *Pacer
	once sync.Once
	// Waited is how long the caller waited for its slot (zero when it could go at once).
	Waited time.Duration
}

// Acquire takes a concurrency slot, then reserves the next send slot and waits for it.
// Both waits end early when ctx does; then nothing is held and ctx.Err() is returned.
func (p *Pacer) Acquire(ctx context.Context) (*Permit, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	now := p.clock.Now()
	p.mu.Lock()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	d := p.d
	p.next = slot.Add(d)
	p.mu.Unlock()

	wait := slot.Sub(now)
	if wait > 0 {
		if err := p.clock.WaitUntil(ctx, slot); err != nil {
			p.giveBack(slot, d)
			<-p.slots
			return nil, err
		}
		if p.metrics != nil {
			p.metrics.UpstreamWait.WithLabelValues(upstreamName).Add(wait.Seconds())
		}
	}
	return &Permit{p: p, Waited: wait}, nil
}

// Hold keeps every caller from sending before until: a Retry-After from Apple applies to
// the whole process, since Apple throttles per client IP. Slots already handed out are
// not recalled.
func (p *Pacer) Hold(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.next) {
		p.next = until
	}
}

// giveBack returns an abandoned slot when nobody reserved after it, so a cancelled
// caller does not slow the next one down.
func (p *Pacer) giveBack(slot time.Time, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.Equal(slot.Add(d)) {
		p.next = slot
	}
}

// Release frees the concurrency slot and adapts the interval to the feedback. Calls
// after the first do nothing.
func (pm *Permit) Release(f Feedback) {
	pm.once.Do(func() {
		pm.p.observe(f)
		<-pm.p.slots
	})
}

func (p *Pacer) observe(f Feedback) {
	p.mu.Lock()
	switch f {
	case FeedbackThrottled:
		p.d = min(max(2*p.d, throttledFloor), p.ceil)
	case FeedbackTransient:
		p.d = min(max(p.d*3/2, transientFloor), p.ceil)
	case FeedbackOK:
		p.d = max(p.d*97/100, p.min)
	}
	p.reportLocked()
	p.mu.Unlock()
}

// reportLocked exports d; it runs under p.mu so the gauge never shows a stale value.
func (p *Pacer) reportLocked() {
	if p.metrics != nil {
		p.metrics.ITunesInterval.Set(p.d.Seconds())
	}
}
