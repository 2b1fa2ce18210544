package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

func TestEventStreamParsing(t *testing.T) {
	t.Parallel()
	in := "retry: 2000\n\n" +
		": ping\n" +
		"id: 1\r\nevent: run\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n" +
		"event: custom\ndata:no-space\nunknown: x\n\n" +
		"data: plain\n\n" +
		"id: 7\n\n" +
		"event: progress\ndata: cut off at the end"
	es := NewEventStream(io.NopCloser(strings.NewReader(in)))

	ev, err := es.Next()
	require.NoError(t, err)
	require.Equal(t, Event{Comment: true, Data: "ping"}, ev)

	ev, err = es.Next()
	require.NoError(t, err)
	require.Equal(t, Event{Name: "run", Data: "{\"a\":\n1}", ID: "1"}, ev, "CRLF lines, multi-line data")

	ev, err = es.Next()
	require.NoError(t, err)
	require.Equal(t, Event{Name: "custom", Data: "no-space", ID: "1"}, ev)

	ev, err = es.Next()
	require.NoError(t, err)
	require.Equal(t, Event{Name: "message", Data: "plain", ID: "1"}, ev)

	_, err = es.Next()
	require.ErrorIs(t, err, io.EOF, "an id-only block dispatches nothing; an event cut off by EOF is dropped")
}

// fakeRun is the state a test server serves for one run.
type fakeRun struct {
	mu       sync.Mutex
	statuses []string // served by GET /v1/jobs/{id}, last one repeated
	gets     int
	events   atomic.Int32
}

func (f *fakeRun) get() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.gets, len(f.statuses)-1)
	f.gets++
	return f.statuses[i]
}

type reports struct {
	mu        sync.Mutex
	snapshots []apitype.JobRun
	patches   []apitype.ProgressEvent
	outages   []error
}

func (r *reports) fn(s *apitype.JobRun, p *apitype.ProgressEvent, o error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case s != nil:
		r.snapshots = append(r.snapshots, *s)
	case p != nil:
		r.patches = append(r.patches, *p)
	case o != nil:
		r.outages = append(r.outages, o)
	}
}

func (r *reports) statuses() []apitype.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []apitype.Status
	for _, s := range r.snapshots {
		out = append(out, s.Status)
	}
	return out
}

func fastSource(c *Client) *RunSource {
	s := c.RunSource(time.Millisecond)
	s.Reconnect = Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond}
	s.Outage = Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond}
	return s
}

func sseWrite(w http.ResponseWriter, s string) {
	_, _ = io.WriteString(w, s)
	w.(http.Flusher).Flush()
}

func TestWatchStream(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "text/event-stream", r.Header.Get("Accept"))
		w.Header().Set("Content-Type", "text/event-stream")
		sseWrite(w, "retry: 2000\n\nid: 1\nevent: run\ndata: {\"job_run\":"+runJSON("running", "")+"}\n\n")
		sseWrite(w, ": ping\n\n")
		sseWrite(w, "id: 2\nevent: progress\ndata: {\"id\":\""+runID+"\",\"status\":\"running\",\"progress\":{\"processed\":4,\"total\":9,\"message\":\"m\",\"new\":true},\"cancel_requested_at\":null}\n\n")
		sseWrite(w, "event: unknown\ndata: {}\n\n")
		sseWrite(w, "id: 3\nevent: done\ndata: {\"job_run\":"+runJSON("completed", "")+"}\n\n")
	}))
	t.Cleanup(srv.Close)
	var rep reports
	err := fastSource(newTestClient(t, srv.URL, nil)).Watch(context.Background(), runID, rep.fn)
	require.NoError(t, err)
	require.Equal(t, []apitype.Status{apitype.StatusRunning, apitype.StatusCompleted}, rep.statuses())
	require.Len(t, rep.patches, 1)
	require.Equal(t, int64(4), rep.patches[0].Progress.Processed)
	require.Contains(t, string(rep.patches[0].Raw), `"new":true`)
	require.Empty(t, rep.outages)
}

func TestWatchFallsBackToPolling(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		ctype  string
	}{
		{"404", 404, "application/json"},
		{"405", 405, "application/json"},
		{"406", 406, "application/json"},
		{"501", 501, "application/json"},
		{"200 with another content type", 200, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fr := &fakeRun{statuses: []string{"pending", "running", "completed"}}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/events") {
					fr.events.Add(1)
					w.Header().Set("Content-Type", tc.ctype)
					w.WriteHeader(tc.status)
					_, _ = io.WriteString(w, `{"error":"Not found"}`)
					return
				}
				_, _ = io.WriteString(w, `{"job_run":`+runJSON(fr.get(), "")+`}`)
			}))
			t.Cleanup(srv.Close)
			src := fastSource(newTestClient(t, srv.URL, nil))
			var rep reports
			require.NoError(t, src.Watch(context.Background(), runID, rep.fn))
			require.Equal(t, []apitype.Status{"pending", "running", "completed"}, rep.statuses())
			require.True(t, src.Polling(), "the decision is remembered")

			// A second run on the same source never asks for a stream.
			fr.mu.Lock()
			fr.gets = 0
			fr.mu.Unlock()
			require.NoError(t, src.Watch(context.Background(), runID, (&reports{}).fn))
			require.Equal(t, int32(1), fr.events.Load())
		})
	}
}

func TestWatchReconnectsAfterEndWithoutDone(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		if n < 3 {
			sseWrite(w, "event: run\ndata: {\"job_run\":"+runJSON("running", "")+"}\n\n")
			return // the server went away without done
		}
		sseWrite(w, "event: done\ndata: {\"job_run\":"+runJSON("failed", "")+"}\n\n")
	}))
	t.Cleanup(srv.Close)
	var rep reports
	require.NoError(t, fastSource(newTestClient(t, srv.URL, nil)).Watch(context.Background(), runID, rep.fn))
	require.Equal(t, int32(3), conns.Load())
	require.Equal(t, []apitype.Status{"running", "running", "failed"}, rep.statuses(), "every reopened stream starts with a fresh snapshot")
}

func TestWatchReopensSilentStream(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 {
			sseWrite(w, "event: run\ndata: {\"job_run\":"+runJSON("running", "")+"}\n\n")
			<-r.Context().Done() // silent until the client gives up
			return
		}
		sseWrite(w, "event: done\ndata: {\"job_run\":"+runJSON("completed", "")+"}\n\n")
	}))
	t.Cleanup(srv.Close)
	src := fastSource(newTestClient(t, srv.URL, nil))
	src.IdleTimeout = 50 * time.Millisecond
	var rep reports
	require.NoError(t, src.Watch(context.Background(), runID, rep.fn))
	require.Equal(t, int32(2), conns.Load())
}

func TestWatchPingsKeepStreamAlive(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		sseWrite(w, "event: run\ndata: {\"job_run\":"+runJSON("running", "")+"}\n\n")
		// Pings at a twenty-fifth of the idle timeout, for two idle timeouts.
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			sseWrite(w, ": ping\n\n")
		}
		sseWrite(w, "event: done\ndata: {\"job_run\":"+runJSON("completed", "")+"}\n\n")
	}))
	t.Cleanup(srv.Close)
	src := fastSource(newTestClient(t, srv.URL, nil))
	src.IdleTimeout = 500 * time.Millisecond
	require.NoError(t, src.Watch(context.Background(), runID, (&reports{}).fn))
	require.Equal(t, int32(1), conns.Load(), "comments count as activity")
}

func TestWatchStreamLimitPollsThisRun(t *testing.T) {
	t.Parallel()
	fr := &fakeRun{statuses: []string{"running", "completed"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			fr.events.Add(1)
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"Too many event streams"}`)
			return
		}
		_, _ = io.WriteString(w, `{"job_run":`+runJSON(fr.get(), "")+`}`)
	}))
	t.Cleanup(srv.Close)
	src := fastSource(newTestClient(t, srv.URL, nil))
	var rep reports
	require.NoError(t, src.Watch(context.Background(), runID, rep.fn))
	require.Equal(t, []apitype.Status{"running", "completed"}, rep.statuses())
	require.False(t, src.Polling(), "only this run is polled")
	require.Empty(t, rep.outages)
}

func TestWatchOutagesAndFatalErrors(t *testing.T) {
	t.Parallel()
	t.Run("transient poll errors are outages", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/events") {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			switch n.Add(1) {
			case 1:
				w.WriteHeader(http.StatusInternalServerError)
			case 2:
				w.WriteHeader(http.StatusTooManyRequests)
			default:
				_, _ = io.WriteString(w, `{"job_run":`+runJSON("completed", "")+`}`)
			}
		}))
		t.Cleanup(srv.Close)
		var rep reports
		require.NoError(t, fastSource(newTestClient(t, srv.URL, nil)).Watch(context.Background(), runID, rep.fn))
		require.Len(t, rep.outages, 2)
		require.Equal(t, []apitype.Status{"completed"}, rep.statuses())
	})
	t.Run("404 on a poll ends the wait", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"Job run not found"}`)
		}))
		t.Cleanup(srv.Close)
		err := fastSource(newTestClient(t, srv.URL, nil)).Watch(context.Background(), runID, (&reports{}).fn)
		require.True(t, IsNotFound(err))
	})
	t.Run("401 on the stream ends the wait", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"Invalid API key"}`)
		}))
		t.Cleanup(srv.Close)
		err := fastSource(newTestClient(t, srv.URL, nil)).Watch(context.Background(), runID, (&reports{}).fn)
		require.True(t, IsUnauthorized(err))
	})
	t.Run("stream error event", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			sseWrite(w, "event: error\ndata: {\"error\":\"Job run not found\"}\n\n")
		}))
		t.Cleanup(srv.Close)
		err := fastSource(newTestClient(t, srv.URL, nil)).Watch(context.Background(), runID, (&reports{}).fn)
		var gone *RunGoneError
		require.ErrorAs(t, err, &gone)
		require.EqualError(t, err, "job run "+runID+" is gone: Job run not found")
	})
	t.Run("network errors on the stream are outages", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		src := fastSource(newTestClient(t, closedEndpoint(t), nil))
		var rep reports
		done := make(chan error, 1)
		go func() {
			done <- src.Watch(ctx, runID, func(s *apitype.JobRun, p *apitype.ProgressEvent, o error) {
				rep.fn(s, p, o)
				rep.mu.Lock()
				n := len(rep.outages)
				rep.mu.Unlock()
				if n == 3 {
					cancel()
				}
			})
		}()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not stop")
		}
		require.True(t, IsNetworkError(rep.outages[0]))
		require.False(t, errors.Is(rep.outages[0], ErrStreamUnsupported))
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: time.Second, Max: 15 * time.Second}
	var got []time.Duration
	for i := range 6 {
		got = append(got, b.Delay(i))
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}, got)
}
