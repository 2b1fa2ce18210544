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
