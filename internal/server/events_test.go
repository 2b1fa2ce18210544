package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
	"github.com/owlmetry/owlmetry/internal/server"
)

// sseEvent is one event or comment read from a stream.
type sseEvent struct {
	ID, Name, Data string
	Retry          string
	Comment        bool
}

// JSON decodes the event's data.
func (e sseEvent) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(e.Data), &m), "data: %s", e.Data)
	return m
}

// sseStream reads a text/event-stream in the background, so each read has a deadline.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// openStream connects to a run's event stream. A non-200 answer is returned instead.
func openStream(t testing.TB, s *owltest.Stack, runID, token string) (*sseStream, *response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v1/jobs/"+runID+"/events", nil)
	require.NoError(t, err)
	r.Header.Set("Accept", "text/event-stream")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
	st := &sseStream{resp: resp, events: make(chan sseEvent, 64), cancel: cancel}
	t.Cleanup(st.close)
	go st.read()
	return st, nil
}

func (st *sseStream) read() {
	defer close(st.events)
	br := bufio.NewReader(st.resp.Body)
	var ev sseEvent
	has := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if has {
				st.events <- ev
			}
			ev, has = sseEvent{}, false
		case strings.HasPrefix(line, ":"):
			st.events <- sseEvent{Comment: true, Data: strings.TrimSpace(line[1:])}
		default:
			field, value, _ := strings.Cut(line, ": ")
			has = true
			switch field {
			case "id":
				ev.ID = value
			case "event":
				ev.Name = value
			case "data":
				ev.Data = value
			case "retry":
				ev.Retry = value
			}
		}
	}
}

func (st *sseStream) close() {
	st.cancel()
	st.resp.Body.Close()
}

var errStreamEnded = errors.New("stream ended")

// next returns the next event that is not a comment (comments when wantComments).
func (st *sseStream) next(t testing.TB, wantComments bool) (sseEvent, error) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-st.events:
			if !ok {
				return sseEvent{}, errStreamEnded
			}
			if ev.Comment && !wantComments {
				continue
			}
			return ev, nil
		case <-deadline:
			t.Fatal("no event within 30s")
		}
	}
}

func (st *sseStream) mustNext(t testing.TB) sseEvent {
	t.Helper()
	ev, err := st.next(t, false)
	require.NoError(t, err)
	return ev
}

// requireEnd checks that the server closed the stream.
func (st *sseStream) requireEnd(t testing.TB) {
	t.Helper()
	ev, err := st.next(t, false)
	require.ErrorIs(t, err, errStreamEnded, "unexpected event %+v", ev)
}

// opening reads the retry line every stream starts with.
func (st *sseStream) opening(t testing.TB) {
	t.Helper()
	ev := st.mustNext(t)
	require.Equal(t, sseEvent{Retry: "2000"}, ev)
}

func execSQL(t testing.TB, s *owltest.Stack, sql string, args ...any) {
	t.Helper()
	_, err := s.DB.Pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync),
		owltest.WithServerDeps(func(d *server.Deps) { d.EventPingInterval = 50 * time.Millisecond }))
	team := stack.Team
	key := stack.Key.Token

	t.Run("terminal run: done only", func(t *testing.T) {
		t.Parallel()
		id := insertRun(t, stack, seedRun{teamID: &team.ID, status: "failed"})
		st, bad := openStream(t, stack, id, key)
		require.Nil(t, bad)
		require.Equal(t, "text/event-stream", st.resp.Header.Get("Content-Type"))
		require.Equal(t, "no-cache", st.resp.Header.Get("Cache-Control"))
		require.Equal(t, "no", st.resp.Header.Get("X-Accel-Buffering"))
		require.NotEmpty(t, st.resp.Header.Get("X-Request-Id"))
		st.opening(t)
		ev := st.mustNext(t)
		require.Equal(t, "done", ev.Name)
		require.Equal(t, "1", ev.ID)
		run := ev.JSON(t)["job_run"].(map[string]any)
		requireJobRunShape(t, run)
		require.Equal(t, "failed", run["status"])
		st.requireEnd(t)
	})

	t.Run("status, cancel and progress changes", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		id := insertRun(t, stack, seedRun{teamID: &team.ID, projectID: &project.ID, status: "pending"})
		st, bad := openStream(t, stack, id, key)
		require.Nil(t, bad)
		st.opening(t)
		ev := st.mustNext(t)
		require.Equal(t, "run", ev.Name)
		require.Equal(t, "pending", ev.JSON(t)["job_run"].(map[string]any)["status"])

		// The engine's transitions, written the way the engine writes them.
		execSQL(t, stack, `UPDATE job_runs SET status = 'running', started_at = now(), heartbeat_at = now(),
			owner_instance = gen_random_uuid() WHERE id = $1`, id)
		ev = st.mustNext(t)
		require.Equal(t, "run", ev.Name)
		require.Equal(t, "2", ev.ID)
		require.Equal(t, "running", ev.JSON(t)["job_run"].(map[string]any)["status"])

		execSQL(t, stack, `UPDATE job_runs SET progress = '{"processed": 4, "total": 10, "message": "4/10"}' WHERE id = $1`, id)
		ev = st.mustNext(t)
		require.Equal(t, "progress", ev.Name)
		require.Equal(t, "3", ev.ID)
		require.Equal(t, map[string]any{"id": id, "status": "running",
			"progress":            map[string]any{"processed": float64(4), "total": float64(10), "message": "4/10"},
			"cancel_requested_at": nil}, ev.JSON(t))

		// A heartbeat alone changes nothing the client sees.
		execSQL(t, stack, `UPDATE job_runs SET heartbeat_at = now() WHERE id = $1`, id)
		execSQL(t, stack, `UPDATE job_runs SET cancel_requested_at = now(), cancel_requested_by = 'x' WHERE id = $1`, id)
		ev = st.mustNext(t)
		require.Equal(t, "run", ev.Name, "a cancel request is a new snapshot")
		run := ev.JSON(t)["job_run"].(map[string]any)
		require.Regexp(t, apiTime, run["cancel_requested_at"])
		require.Equal(t, map[string]any{"processed": float64(4), "total": float64(10), "message": "4/10"}, run["progress"])

		execSQL(t, stack, `UPDATE job_runs SET status = 'cancelled', completed_at = now() WHERE id = $1`, id)
		ev = st.mustNext(t)
		require.Equal(t, "done", ev.Name)
		require.Equal(t, "5", ev.ID)
		require.Equal(t, "cancelled", ev.JSON(t)["job_run"].(map[string]any)["status"])
		st.requireEnd(t)
	})

	t.Run("a real run from trigger to cancel", func(t *testing.T) {
		t.Parallel()
		project := stack.SeedProject(t)
		created := post(t, stack, triggerPath(team.ID), key, fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, project.ID))
		require.Equal(t, http.StatusCreated, created.Status)
		id := created.JSON(t)["job_run"].(map[string]any)["id"].(string)
		run := stack.Blocker.Started(t, id)
		st, bad := openStream(t, stack, id, key)
		require.Nil(t, bad)
		st.opening(t)
		require.Equal(t, "run", st.mustNext(t).Name)
		run.Progress.Report(7, 9, "seven")
		var ev sseEvent
		for ev = st.mustNext(t); ev.Name == "run"; ev = st.mustNext(t) {
			// the opening snapshot may have been pending; its running snapshot follows
		}
		require.Equal(t, "progress", ev.Name)
		require.Equal(t, map[string]any{"processed": float64(7), "total": float64(9), "message": "seven"}, ev.JSON(t)["progress"])

		require.Equal(t, http.StatusOK, post(t, stack, "/v1/jobs/"+id+"/cancel", key, "").Status)
		for ev = st.mustNext(t); ev.Name != "done"; ev = st.mustNext(t) {
			require.Equal(t, "run", ev.Name)
			require.NotNil(t, ev.JSON(t)["job_run"].(map[string]any)["cancel_requested_at"])
		}
		done := ev.JSON(t)["job_run"].(map[string]any)
		require.Equal(t, "cancelled", done["status"])
		st.requireEnd(t)
	})

	t.Run("pings keep the stream open", func(t *testing.T) {
		t.Parallel()
		id := activeRun(t, stack, team, "pending")
		st, bad := openStream(t, stack, id, key)
		require.Nil(t, bad)
		st.opening(t)
		require.Equal(t, "run", st.mustNext(t).Name)
		ev, err := st.next(t, true)
		require.NoError(t, err)
		require.Equal(t, sseEvent{Comment: true, Data: "ping"}, ev)
	})

	t.Run("errors before the stream", func(t *testing.T) {
		t.Parallel()
		other := stack.SeedTeam(t)
		foreign := activeRun(t, stack, other, "running")
		system := insertRun(t, stack, seedRun{jobType: "retention_cleanup", status: "running"})
		for _, id := range []string{foreign, system, "00000000-0000-4000-8000-000000000000"} {
			_, bad := openStream(t, stack, id, key)
			require.NotNil(t, bad)
			requireError(t, *bad, http.StatusNotFound, "Job run not found")
		}
		_, bad := openStream(t, stack, "nope", key)
		requireError(t, *bad, http.StatusBadRequest, "Invalid runId: must be a UUID")
		_, bad = openStream(t, stack, foreign, "")
		requireError(t, *bad, http.StatusUnauthorized, "Missing authorization")
		member := stack.SeedUser(t, team, owltest.RoleMember)
		_, bad = openStream(t, stack, insertRun(t, stack, seedRun{teamID: &team.ID}), member.Token)
		requireError(t, *bad, http.StatusForbidden, "Requires admin role or higher")
		writeOnly := stack.SeedKey(t, team, []string{"jobs:write"})
		_, bad = openStream(t, stack, foreign, writeOnly.Token)
		requireError(t, *bad, http.StatusForbidden, "Missing permission: jobs:read")
	})
}

func TestEventStreamCoalescesProgress(t *testing.T) {
	t.Parallel()

	t.Run("changes inside the window wait for it", func(t *testing.T) {
		t.Parallel()
		stack := owltest.StartStack(t, owltest.WithServerDeps(func(d *server.Deps) { d.EventProgressInterval = time.Hour }))
		id := activeRun(t, stack, stack.Team, "running")
		st, bad := openStream(t, stack, id, stack.Key.Token)
		require.Nil(t, bad)
		st.opening(t)
		require.Equal(t, "run", st.mustNext(t).Name)
		execSQL(t, stack, `UPDATE job_runs SET progress = '{"processed": 1, "total": 3}' WHERE id = $1`, id)
		ev := st.mustNext(t)
		require.Equal(t, "progress", ev.Name, "the first change goes out at once")
		execSQL(t, stack, `UPDATE job_runs SET progress = '{"processed": 2, "total": 3}' WHERE id = $1`, id)
		execSQL(t, stack, `UPDATE job_runs SET progress = '{"processed": 3, "total": 3}' WHERE id = $1`, id)
		execSQL(t, stack, `UPDATE job_runs SET status = 'completed', completed_at = now() WHERE id = $1`, id)
		// Events keep their order: a progress event sent for 2 or 3 would come before done.
		ev = st.mustNext(t)
		require.Equal(t, "done", ev.Name)
		require.Equal(t, map[string]any{"processed": float64(3), "total": float64(3)}, ev.JSON(t)["job_run"].(map[string]any)["progress"])
		st.requireEnd(t)
	})

	t.Run("the newest value goes out when the window ends", func(t *testing.T) {
		t.Parallel()
		stack := owltest.StartStack(t, owltest.WithServerDeps(func(d *server.Deps) { d.EventProgressInterval = 20 * time.Millisecond }))
		id := activeRun(t, stack, stack.Team, "running")
		st, bad := openStream(t, stack, id, stack.Key.Token)
		require.Nil(t, bad)
		st.opening(t)
		require.Equal(t, "run", st.mustNext(t).Name)
		for i := 1; i <= 30; i++ {
			execSQL(t, stack, `UPDATE job_runs SET progress = jsonb_build_object('processed', $2::int, 'total', 30) WHERE id = $1`, id, i)
		}
		seen := 0
		for {
			ev := st.mustNext(t)
			require.Equal(t, "progress", ev.Name)
			seen++
			processed := ev.JSON(t)["progress"].(map[string]any)["processed"].(float64)
			if processed == 30 {
				break
			}
		}
		require.LessOrEqual(t, seen, 30)
	})
}

func TestEventStreamEnds(t *testing.T) {
	t.Parallel()

	t.Run("run disappears", func(t *testing.T) {
		t.Parallel()
		// Deletes send no notification: the periodic re-read finds out.
		stack := owltest.StartStack(t, owltest.WithServerDeps(func(d *server.Deps) { d.EventFallbackInterval = 30 * time.Millisecond }))
		id := activeRun(t, stack, stack.Team, "running")
		st, _ := openStream(t, stack, id, stack.Key.Token)
		st.opening(t)
		require.Equal(t, "run", st.mustNext(t).Name)
		execSQL(t, stack, `DELETE FROM job_runs WHERE id = $1`, id)
		ev := st.mustNext(t)
		require.Equal(t, "error", ev.Name)
		require.Equal(t, map[string]any{"error": "Job run not found"}, ev.JSON(t))
		st.requireEnd(t)
	})

	t.Run("shutdown closes streams without done", func(t *testing.T) {
		t.Parallel()
		stack := owltest.StartStack(t)
		id := activeRun(t, stack, stack.Team, "running")
		st, _ := openStream(t, stack, id, stack.Key.Token)
		st.opening(t)
		require.Equal(t, "run", st.mustNext(t).Name)
		stack.Server.BeginShutdown()
		st.requireEnd(t)
		_, bad := openStream(t, stack, id, stack.Key.Token)
		require.Equal(t, http.StatusServiceUnavailable, bad.Status)
	})

	t.Run("stream limit", func(t *testing.T) {
		t.Parallel()
		stack := owltest.StartStack(t, owltest.WithServerDeps(func(d *server.Deps) { d.SSEMaxStreams = 2 }))
		id := activeRun(t, stack, stack.Team, "running")
		var open []*sseStream
		for range 2 {
			st, bad := openStream(t, stack, id, stack.Key.Token)
			require.Nil(t, bad)
			st.opening(t)
			open = append(open, st)
		}
		requireGauge(t, stack, "owlmetry_sse_streams", 2)
		_, bad := openStream(t, stack, id, stack.Key.Token)
		require.NotNil(t, bad)
		requireError(t, *bad, http.StatusServiceUnavailable, "Too many event streams")
		require.Equal(t, "5", bad.Header.Get("Retry-After"))

		// A closed stream frees its slot once the server notices.
		open[0].close()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, bad := openStream(t, stack, id, stack.Key.Token)
			if bad == nil {
				st.opening(t)
				break
			}
			require.Equal(t, http.StatusServiceUnavailable, bad.Status)
			require.True(t, time.Now().Before(deadline), "the slot was never released")
			time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
		}
	})

	t.Run("event stream turned off", func(t *testing.T) {
		t.Parallel()
		stack := owltest.StartStack(t, owltest.WithoutEventStream())
		id := activeRun(t, stack, stack.Team, "running")
		_, bad := openStream(t, stack, id, stack.Key.Token)
		requireError(t, *bad, http.StatusNotFound, "Not found")
		require.Equal(t, http.StatusOK, get(t, stack, "/v1/jobs/"+id, stack.Key.Token).Status)
	})
}

// requireGauge reads one unlabelled metric from /metrics.
func requireGauge(t testing.TB, s *owltest.Stack, name string, want float64) {
	t.Helper()
	r := get(t, s, "/metrics", "")
	require.Equal(t, http.StatusOK, r.Status)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			got, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			require.Equal(t, want, got, name)
			return
		}
	}
	t.Fatalf("metric %s missing", name)
}
