package jobs

import (
	"context"
	"time"
)

// Clock is the process clock handlers use for durations and waits (jobs.md §3.1 rule 4):
// batch timings, retry backoffs. Instants compared in SQL come from the database instead.
// Tests inject a fake so that waits cost nothing and can be inspected.
type Clock interface {
	// Now returns the current process time.
	Now() time.Time
	// Sleep waits for d or until ctx is done, whichever comes first, and returns
	// ctx's error in the latter case.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock returns the real clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
