package localjobs

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// RunSource reads runs straight from job_runs for a wait (cli.md §6.3, DB commands):
// every poll interval, and at once whenever this process's engine hears of a change —
// which it does for the run a --local command executes. It satisfies follow.Source.
type RunSource struct {
	store *Store
	poll  time.Duration
	// after is the timer; tests replace it.
	after func(time.Duration) <-chan time.Time
}

// RunSource returns a source that polls every interval (at least 10 ms).
func (s *Store) RunSource(interval time.Duration) *RunSource {
	return &RunSource{store: s, poll: max(interval, 10*time.Millisecond), after: time.After}
}

// Get returns the run as a system run object; a run that does not exist is a
// *RunNotFoundError.
func (r *RunSource) Get(ctx context.Context, id string) (apitype.JobRun, error) {
	run, err := r.store.snapshot(ctx, id)
	if err != nil {
		return apitype.JobRun{}, err
	}
	return run.JobRun(), nil
}

// outageBackoff spaces retries after a failed read: 1 s, 2 s, 4 s … capped at 30 s
// (cli.md §6.12).
func outageBackoff(failures int) time.Duration {
	d := time.Second << min(failures-1, 5)
	return min(d, 30*time.Second)
}

// Watch reports every new snapshot of the run until it ends (nil), ctx ends, or the run
// disappears. A failed read is reported as an outage and retried with backoff.
func (r *RunSource) Watch(ctx context.Context, id string, report func(*apitype.JobRun, *apitype.ProgressEvent, error)) error {
	wake, stop := r.store.SubscribeRun(id)
	defer stop()
	var last []byte
	failures := 0
	for {
		run, err := r.store.snapshot(ctx, id)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := r.poll
		var gone *RunNotFoundError
		switch {
		case errors.As(err, &gone):
			return err
		case err != nil:
			failures++
			report(nil, nil, err)
			wait = outageBackoff(failures)
		default:
			failures = 0
			jr := run.JobRun()
			if !bytes.Equal(jr.Raw, last) {
				last = jr.Raw
				report(&jr, nil, nil)
			}
			if run.Status.Terminal() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-r.after(wait):
		}
	}
}

// Cancel asks the run to stop through the engine (--cancel-on-interrupt). A run that has
// already ended needs nothing.
func (r *RunSource) Cancel(ctx context.Context, id string) error {
	_, _, err := r.store.Cancel(ctx, id)
	var ended *AlreadyEndedError
	if errors.As(err, &ended) {
		return nil
	}
	return err
}
