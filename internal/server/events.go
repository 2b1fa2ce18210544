package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
)

// streamWriteTimeout bounds each write to an event stream, so a client that stopped
// reading cannot hold a stream slot forever.
const streamWriteTimeout = 30 * time.Second

// jobEvents answers GET /v1/jobs/{runId}/events (api.md §7.5): a Server-Sent Events
// stream of one run's status and progress, fed by the engine's LISTEN/NOTIFY fan-out and
// ended by a `done` event carrying the terminal state. Errors before the stream opens
// use the JSON envelope; afterwards the stream can only end.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	rec, err := s.visibleRun(r, p)
	if err != nil {
		return err
	}
	select {
	case s.streams <- struct{}{}:
	default:
		return &apiError{Status: http.StatusServiceUnavailable, Message: msgTooManyStreams,
			Header: http.Header{"Retry-After": {"5"}}}
	}
	defer func() { <-s.streams }()
	if s.ShuttingDown() {
		return &apiError{Status: http.StatusServiceUnavailable, Message: "Server is shutting down",
			Header: http.Header{"Retry-After": {"1"}}}
	}

	// Subscribe before reading again: a change that commits between the visibility read
	// and the subscription would otherwise never be seen.
	ctx := r.Context()
	sub := s.eng.Subscribe(rec.ID)
	defer sub.Close()
	rec, err = s.eng.Get(ctx, rec.ID)
	if errors.Is(err, engine.ErrRunNotFound) {
		return errorf(http.StatusNotFound, msgRunNotFound)
	}
	if err != nil {
		return err
	}

	s.metrics.SSEStreams.Inc()
	defer s.metrics.SSEStreams.Dec()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w)}
	if err := sw.raw("retry: 2000\n\n"); err != nil {
		return nil
	}
	stream := &runStream{s: s, sw: sw, ctx: ctx, runID: rec.ID, log: stateOf(r).log}
	stream.run(rec, sub)
	return nil
}

// runStream is the state of one open event stream.
type runStream struct {
	s     *Server
	sw    *sseWriter
	ctx   context.Context
	runID string
	log   *slog.Logger

	sent         engine.RunRecord  // the last snapshot sent as run
	sentProgress *apitype.Progress // the progress the client has now
	progressAt   time.Time         // when the last progress event went out
	latest       engine.RunRecord  // newest state read, not yet sent
	pending      bool              // latest holds a progress change waiting for its window
}

// run sends the opening event and follows the run until it ends, the client leaves or
// the server shuts down.
func (st *runStream) run(rec engine.RunRecord, sub *engine.Subscription) {
	if rec.Status.Terminal() {
		st.sw.event("done", map[string]any{"job_run": rec.API()}) //nolint:errcheck // the stream ends either way
		return
	}
	if st.sw.event("run", map[string]any{"job_run": rec.API()}) != nil {
		return
	}
	st.sent, st.sentProgress = rec, rec.Progress

	fallback := time.NewTicker(st.s.deps.EventFallbackInterval)
	defer fallback.Stop()
	ping := time.NewTicker(st.s.deps.EventPingInterval)
	defer ping.Stop()
	var window *time.Timer
	var windowC <-chan time.Time
	defer func() {
		if window != nil {
			window.Stop()
		}
	}()

	for {
		reread := false
		select {
		case <-st.ctx.Done():
			return
		case <-st.s.shutdown:
			return // clients reconnect to another replica (engine.md §12.3)
		case _, ok := <-sub.C:
			if !ok {
				return
			}
			// One re-read answers every notification queued so far.
			for drained := false; !drained; {
				select {
				case _, ok := <-sub.C:
					if !ok {
						return
					}
				default:
					drained = true
				}
			}
			reread = true
		case <-fallback.C:
			reread = true
		case <-ping.C:
			if st.sw.raw(": ping\n\n") != nil {
				return
			}
		case <-windowC:
			windowC = nil
			if st.pending {
				if st.sendProgress() != nil {
					return
				}
			}
		}
		if !reread {
			continue
		}
		cur, err := st.s.eng.Get(st.ctx, st.runID)
		switch {
		case errors.Is(err, engine.ErrRunNotFound):
			st.sw.event("error", map[string]any{"error": msgRunNotFound}) //nolint:errcheck // closing anyway
			return
		case err != nil:
			if st.ctx.Err() != nil {
				return
			}
			st.log.Warn("event stream: read run", "run_id", st.runID, "error", err)
			continue // the next notification or the fallback tries again
		}
		switch {
		case cur.Status.Terminal():
			st.sw.event("done", map[string]any{"job_run": cur.API()}) //nolint:errcheck // closing anyway
			return
		case cur.Status != st.sent.Status || !sameTime(cur.CancelRequestedAt, st.sent.CancelRequestedAt):
			if st.sw.event("run", map[string]any{"job_run": cur.API()}) != nil {
				return
			}
			st.sent, st.sentProgress, st.pending = cur, cur.Progress, false
		case cur.Status == apitype.StatusRunning && !reflect.DeepEqual(cur.Progress, st.sentProgress):
			st.latest, st.pending = cur, true
			wait := st.s.deps.EventProgressInterval - time.Since(st.progressAt)
			if wait <= 0 {
				if st.sendProgress() != nil {
					return
				}
			} else if windowC == nil {
				if window == nil {
					window = time.NewTimer(wait)
				} else {
					window.Reset(wait)
				}
				windowC = window.C
			}
		}
	}
}

// sendProgress sends the newest progress as a progress event.
func (st *runStream) sendProgress() error {
	cur := st.latest
	st.pending = false
	if reflect.DeepEqual(cur.Progress, st.sentProgress) {
		return nil
	}
	st.sentProgress, st.progressAt = cur.Progress, time.Now()
	return st.sw.event("progress", map[string]any{
		"id": cur.ID, "status": cur.Status, "progress": cur.Progress,
		"cancel_requested_at": apitype.NewTime(cur.CancelRequestedAt),
	})
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// sseWriter writes the text/event-stream format, numbering events per stream.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	seq int
}

func (sw *sseWriter) event(name string, data any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return err
	}
	payload := bytes.TrimRight(buf.Bytes(), "\n") // JSON has no other newline
	sw.seq++
	return sw.raw(fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", sw.seq, name, payload))
}

func (sw *sseWriter) raw(s string) error {
	_ = sw.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := sw.w.Write([]byte(s)); err != nil {
		return err
	}
	return sw.rc.Flush()
}
