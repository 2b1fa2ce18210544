package jobs

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

// Attempts per lookup for rate-limited and transient outcomes: app_version_sync makes up
// to 3 (jobs.md §11.3), app_store_ratings_sync up to 8 (jobs.md §12.3).
const (
	versionLookupAttempts = 3
	ratingsLookupAttempts = 8
)

// The backoff between attempts: 1 s × 2^(attempt−1), ±25 % jitter, never above 60 s
// (jobs.md §12.3).
const (
	backoffBase = time.Second
	backoffCap  = 60 * time.Second
)

// retryBackoff is the wait after the given failed attempt (1-based). jitter is a number
// in [0, 1) that spreads the wait over ±25 %.
func retryBackoff(attempt int, jitter float64) time.Duration {
	base := backoffCap
	if attempt <= 6 { // 2^6 s = 64 s is past the cap already
		base = backoffBase << (attempt - 1)
	}
	d := time.Duration(float64(base) * (0.75 + 0.5*jitter))
	return min(d, backoffCap)
}

// lookupStats counts what one lookup went through, for the result counters.
type lookupStats struct {
	// Throttled counts rate_limited outcomes, Transient the transient ones.
	Throttled, Transient int
	// Retries counts the waits before another attempt.
	Retries int
	// Exhausted is set when every attempt ended rate-limited or transient.
	Exhausted bool
}

// lookupWithRetry makes up to attempts lookups of p while the outcome is rate-limited or
// transient, waiting retryBackoff between them on the injected clock (cancellable), or
// longer when the answer's Retry-After asks for more. An answer asking for more than
// itunes.MaxRetryAfter is not waited for: the lookup gives up as if its attempts were
// spent (upstreams.md §2.4). It returns the last outcome and what it went through; the
// error is non-nil only when ctx ended, and then the lookup is abandoned.
func (d *Deps) lookupWithRetry(ctx context.Context, p itunes.LookupParams, attempts int) (itunes.LookupResult, lookupStats, error) {
	var st lookupStats
	for attempt := 1; ; attempt++ {
		p.Attempt = attempt
		res, err := d.ITunes.Lookup(ctx, p)
		if err != nil {
			return res, st, err
		}
		switch {
		case res.Outcome == itunes.OutcomeRateLimited:
			st.Throttled++
		case res.Transient:
			st.Transient++
		default:
			return res, st, nil
		}
		if attempt >= attempts || res.RetryAfter > itunes.MaxRetryAfter {
			st.Exhausted = true
			return res, st, nil
		}
		st.Retries++
		wait := max(retryBackoff(attempt, rand.Float64()), res.RetryAfter)
		if err := d.Clock.Sleep(ctx, wait); err != nil {
			return res, st, err
		}
	}
}
