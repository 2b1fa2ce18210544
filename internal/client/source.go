package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// Backoff is a doubling delay: Base, 2×Base, 4×Base … capped at Max.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// Delay returns the delay before retry number n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// ReportFunc receives news about a followed run: a full snapshot, a progress patch to
// merge into the last snapshot, or an outage (requests are failing and are being
// retried). Exactly one argument is non-nil per call.
// It is an alias, so RunSource satisfies interfaces that spell the function type out.
type ReportFunc = func(snapshot *apitype.JobRun, patch *apitype.ProgressEvent, outage error)

// RunSource follows runs through the API (cli.md §6.3): the event stream of each run,
// reopened when it ends without `done` or falls silent, and polling of GET /v1/jobs/{id}
// when the server has no stream. Once the server is found to lack the stream, every
// later run is polled too. It satisfies follow.Source.
type RunSource struct {
	c *Client

	// PollInterval is the time between polls. Defaults to 2s.
	PollInterval time.Duration
	// IdleTimeout reopens a stream that sent nothing, not even a ping, for this long.
	// Defaults to 45s.
	IdleTimeout time.Duration
	// Reconnect is the delay before reopening a stream that ended without `done`.
	// Defaults to 1s doubling up to 15s.
	Reconnect Backoff
	// Outage is the delay after a network error, 429 or 5xx. Defaults to 1s doubling up
	// to 30s; a Retry-After from the server wins.
	Outage Backoff

	polling atomic.Bool
}

// RunSource returns a source that follows runs through this client.
func (c *Client) RunSource(pollInterval time.Duration) *RunSource {
	if pollInterval <= 0 {
		pollInterval = 2 * time.Second
	}
	return &RunSource{
		c:            c,
		PollInterval: pollInterval,
		IdleTimeout:  45 * time.Second,
		Reconnect:    Backoff{Base: time.Second, Max: 15 * time.Second},
		Outage:       Backoff{Base: time.Second, Max: 30 * time.Second},
	}
}

// Polling reports whether the source has fallen back to polling for good.
func (s *RunSource) Polling() bool { return s.polling.Load() }

// Get returns the current snapshot of a run, with the client's usual retries.
func (s *RunSource) Get(ctx context.Context, runID string) (apitype.JobRun, error) {
	run, err := s.c.JobRunGet(ctx, runID)
	if err != nil && ctx.Err() == nil {
		return run, &RunError{RunID: runID, Err: err}
	}
	return run, err
}

// RunError names the run a failure while following it was about.
type RunError struct {
	RunID string
	Err   error
}

func (e *RunError) Error() string { return "job run " + e.RunID + ": " + e.Err.Error() }

// Unwrap returns the failure.
func (e *RunError) Unwrap() error { return e.Err }

// Cancel asks a run to stop.
func (s *RunSource) Cancel(ctx context.Context, runID string) error {
	_, err := s.c.JobRunCancel(ctx, runID)
	return err
}

// RunGoneError is the stream's `error` event: the run disappeared while followed.
type RunGoneError struct {
	RunID   string
	Message string
}

func (e *RunGoneError) Error() string {
	return fmt.Sprintf("job run %s is gone: %s", e.RunID, e.Message)
}

// Watch follows one run until it ends (nil), ctx ends (ctx's error), or a failure that
// ends the wait: 401, 403, 404 on a poll, a stream `error` event, or another 4xx.
func (s *RunSource) Watch(ctx context.Context, runID string, report ReportFunc) error {
	err := s.watch(ctx, runID, report)
	if err != nil && ctx.Err() == nil {
		var gone *RunGoneError
		if !errors.As(err, &gone) {
			return &RunError{RunID: runID, Err: err}
		}
	}
	return err
}

func (s *RunSource) watch(ctx context.Context, runID string, report ReportFunc) error {
	pollThis := false
	reconnects, outages := 0, 0
	for {
		if s.polling.Load() || pollThis {
			return s.poll(ctx, runID, report)
		}
		ended, delivered, err := s.stream(ctx, runID, report)
		switch {
		case ended:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrStreamUnsupported):
			s.polling.Store(true)
			continue
		case StatusOf(err) == http.StatusServiceUnavailable && !delivered:
			// The stream limit: this run is polled instead (cli.md §6.3).
			pollThis = true
			continue
		case err != nil && !isTransient(err):
			return err
		case err != nil:
			report(nil, nil, err)
			if sleepCtx(ctx, s.outageDelay(err, outages)) != nil {
				return ctx.Err()
			}
			outages++
			continue
		}
		// The stream ended without done, or fell silent: reopen it.
		outages = 0
		if delivered {
			reconnects = 0
		}
		if sleepCtx(ctx, s.Reconnect.Delay(reconnects)) != nil {
			return ctx.Err()
		}
		reconnects++
	}
}

// stream reads one connection of the event stream. ended is true after `done` or a
// terminal snapshot; delivered is true when at least one event arrived.
func (s *RunSource) stream(ctx context.Context, runID string, report ReportFunc) (ended, delivered bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(s.IdleTimeout, cancel)
	defer idle.Stop()

	es, err := s.c.JobRunEvents(sctx, runID)
	if err != nil {
		if ctx.Err() == nil && sctx.Err() != nil {
			return false, false, nil // silent before the headers: reopen
		}
		return false, false, err
	}
	defer func() { _ = es.Close() }()
	for {
		ev, err := es.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || sctx.Err() != nil {
				return false, delivered, nil
			}
			return false, delivered, nil // a broken connection is a reconnect, not an outage
		}
		idle.Reset(s.IdleTimeout)
		if ev.Comment {
			continue
		}
		switch ev.Name {
		case "run", "done":
			var env apitype.JobRunEnvelope
			if json.Unmarshal([]byte(ev.Data), &env) != nil || env.JobRun.ID == "" {
				continue
			}
			delivered = true
			run := env.JobRun
			report(&run, nil, nil)
			if ev.Name == "done" || run.Status.Terminal() {
				return true, true, nil
			}
		case "progress":
			var pe apitype.ProgressEvent
			if json.Unmarshal([]byte(ev.Data), &pe) != nil {
				continue
			}
			if pe.ID == "" {
				pe.ID = runID
			}
			delivered = true
			report(nil, &pe, nil)
		case "error":
			var body struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal([]byte(ev.Data), &body)
			if body.Error == "" {
				body.Error = "the server ended the stream"
			}
			return false, delivered, &RunGoneError{RunID: runID, Message: body.Error}
		}
	}
}

// poll reads the run every PollInterval, the first poll one interval after the initial
// snapshot.
func (s *RunSource) poll(ctx context.Context, runID string, report ReportFunc) error {
	outages := 0
	wait := s.PollInterval
	for {
		if sleepCtx(ctx, wait) != nil {
			return ctx.Err()
		}
		run, err := s.c.jobRunGet(ctx, runID, true)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !isTransient(err) {
				return err
			}
			report(nil, nil, err)
			wait = s.outageDelay(err, outages)
			outages++
			continue
		}
		outages = 0
		report(&run, nil, nil)
		if run.Status.Terminal() {
			return nil
		}
		wait = s.PollInterval
	}
}

// outageDelay honours Retry-After (capped at the backoff's maximum) and otherwise backs
// off.
func (s *RunSource) outageDelay(err error, n int) time.Duration {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.retryAfterSet {
		return min(apiErr.RetryAfter, max(s.Outage.Max, time.Second))
	}
	return s.Outage.Delay(n)
}

// isTransient reports failures a wait rides out (cli.md §6.12): network errors, 429
// and 5xx. 401, 403, 404 and other 4xx end the wait.
func isTransient(err error) bool {
	if IsNetworkError(err) {
		return true
	}
	st := StatusOf(err)
	return st == http.StatusTooManyRequests || st >= 500
}
