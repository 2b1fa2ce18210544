package emukit

import (
	"sync"
	"time"
)

// TokenBucket limits requests per key (a client IP, an org) to a steady rate with a
// burst, on the emulator clock (upstreams.md §7.6). It is exact: it keeps the
// theoretical arrival time per key in nanoseconds, so a client that sends at exactly the
// budgeted rate is never refused, and one that sends a hair faster eventually is.
type TokenBucket struct {
	mu       sync.Mutex
	interval time.Duration // one token's worth of time
	burst    int
	tat      map[string]time.Time
}

// NewTokenBucket allows perInterval requests per interval with the given burst. Both
// counts must be positive; NewTokenBucket(1200, time.Minute, 20) is 20 requests/s with
// bursts of 20.
func NewTokenBucket(perInterval int, interval time.Duration, burst int) *TokenBucket {
	if perInterval <= 0 || interval <= 0 || burst <= 0 {
		panic("emukit: token bucket needs a positive rate and burst")
	}
	return &TokenBucket{interval: interval / time.Duration(perInterval), burst: burst, tat: map[string]time.Time{}}
}

// Take spends one token of key at now. When none is left it returns false and how long
// until one is.
func (b *TokenBucket) Take(key string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tolerance := time.Duration(b.burst-1) * b.interval
	tat, ok := b.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	if wait := tat.Sub(now) - tolerance; wait > 0 {
		return false, wait
	}
	b.tat[key] = tat.Add(b.interval)
	if len(b.tat) > 10_000 {
		b.prune(now)
	}
	return true, 0
}

// Reset forgets every key, giving each a full bucket again.
func (b *TokenBucket) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tat = map[string]time.Time{}
}

// prune drops keys whose buckets are full again; they behave exactly like unknown keys.
func (b *TokenBucket) prune(now time.Time) {
	for k, t := range b.tat {
		if !t.After(now) {
			delete(b.tat, k)
		}
	}
}

// WindowResult is a window limiter's verdict on one request, with what vendors put in
// their rate-limit headers.
type WindowResult struct {
	// Allowed is false when the request is over the limit; it is then not counted.
	Allowed bool
	// Used is how many requests the window holds, this one included when allowed.
	Used int
	// Limit is the window's limit.
	Limit int
	// RetryAfter is, for a refused request, how long until one would be allowed.
	RetryAfter time.Duration
}

// Remaining is how many more requests the window allows.
func (r WindowResult) Remaining() int { return max(r.Limit-r.Used, 0) }

// FixedWindow allows limit requests per key in windows of a fixed size aligned to the
// emulator clock (whole minutes for a minute window), as RevenueCat counts.
type FixedWindow struct {
	mu      sync.Mutex
	limit   int
	size    time.Duration
	windows map[string]fixedCount
}

type fixedCount struct {
	start time.Time
	n     int
}

// NewFixedWindow builds a fixed-window limiter; limit and size must be positive.
func NewFixedWindow(limit int, size time.Duration) *FixedWindow {
	if limit <= 0 || size <= 0 {
		panic("emukit: fixed window needs a positive limit and size")
	}
	return &FixedWindow{limit: limit, size: size, windows: map[string]fixedCount{}}
}

// Take counts one request of key at now.
func (w *FixedWindow) Take(key string, now time.Time) WindowResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := now.Truncate(w.size) // aligned to the zero time, so to whole minutes and hours
	c := w.windows[key]
	if !c.start.Equal(start) {
		c = fixedCount{start: start}
	}
	if c.n >= w.limit {
		w.windows[key] = c
		return WindowResult{Used: c.n, Limit: w.limit, RetryAfter: start.Add(w.size).Sub(now)}
	}
	c.n++
	w.windows[key] = c
	return WindowResult{Allowed: true, Used: c.n, Limit: w.limit}
}

// Reset forgets every key.
func (w *FixedWindow) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.windows = map[string]fixedCount{}
}

// RollingWindow allows limit requests per key in any window of the given size ending
// now, as App Store Connect's hourly quota does.
type RollingWindow struct {
	mu    sync.Mutex
	limit int
	size  time.Duration
	hits  map[string][]time.Time
}

// NewRollingWindow builds a rolling-window limiter; limit and size must be positive.
func NewRollingWindow(limit int, size time.Duration) *RollingWindow {
	if limit <= 0 || size <= 0 {
		panic("emukit: rolling window needs a positive limit and size")
	}
	return &RollingWindow{limit: limit, size: size, hits: map[string][]time.Time{}}
}

// Take counts one request of key at now.
func (w *RollingWindow) Take(key string, now time.Time) WindowResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	hits := w.hits[key]
	cutoff := now.Add(-w.size)
	i := 0
	for i < len(hits) && !hits[i].After(cutoff) {
		i++
	}
	hits = hits[i:]
	if len(hits) >= w.limit {
		w.hits[key] = hits
		return WindowResult{Used: len(hits), Limit: w.limit, RetryAfter: hits[0].Add(w.size).Sub(now)}
	}
	hits = append(hits, now)
	w.hits[key] = hits
	return WindowResult{Allowed: true, Used: len(hits), Limit: w.limit}
}

// Peek reports the window of key at now without counting a request.
func (w *RollingWindow) Peek(key string, now time.Time) WindowResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	cutoff := now.Add(-w.size)
	n := 0
	for _, h := range w.hits[key] {
		if h.After(cutoff) {
			n++
		}
	}
	return WindowResult{Allowed: n < w.limit, Used: n, Limit: w.limit}
}

// Reset forgets every key.
func (w *RollingWindow) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hits = map[string][]time.Time{}
}
