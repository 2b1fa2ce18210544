package follow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)

// fakeClock is a clock whose timers fire only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	sort.Slice(c.waiters, func(i, j int) bool { return c.waiters[i].at.Before(c.waiters[j].at) })
	var keep []waiter
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

// step is one scripted piece of news for a run.
type step struct {
	snapshot *apitype.JobRun
	patch    *apitype.ProgressEvent
	outage   error
	end      bool
	err      error
}

// scriptSource serves initial snapshots and plays the steps a test pushes per run.
type scriptSource struct {
	mu        sync.Mutex
	initial   map[string]apitype.JobRun
	getErr    map[string]error
	steps     map[string]chan step
	watched   []string
	cancelled []string
}

func newSource(runs ...apitype.JobRun) *scriptSource {
	s := &scriptSource{initial: map[string]apitype.JobRun{}, getErr: map[string]error{}, steps: map[string]chan step{}}
	for _, r := range runs {
		s.initial[r.ID] = r
		s.steps[r.ID] = make(chan step, 16)
	}
	return s
}

func (s *scriptSource) Get(_ context.Context, id string) (apitype.JobRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.getErr[id]; err != nil {
		return apitype.JobRun{}, err
	}
	return s.initial[id], nil
}

func (s *scriptSource) Watch(ctx context.Context, id string, report func(*apitype.JobRun, *apitype.ProgressEvent, error)) error {
	s.mu.Lock()
	s.watched = append(s.watched, id)
	ch := s.steps[id]
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case st := <-ch:
			switch {
			case st.end:
				return st.err
			default:
				report(st.snapshot, st.patch, st.outage)
			}
		}
	}
}

func (s *scriptSource) Cancel(_ context.Context, id string) error {
	s.mu.Lock()
	s.cancelled = append(s.cancelled, id)
	ch := s.steps[id]
	run := s.initial[id]
	s.mu.Unlock()
	run.Status = apitype.StatusCancelled
	ch <- step{snapshot: &run}
	return nil
}

func (s *scriptSource) push(id string, st step) { s.steps[id] <- st }

// recorder is a Reporter that records calls and signals the test.
type recorder struct {
	mu      sync.Mutex
	calls   []string
	started chan struct{}
	event   chan string
}

func newRecorder() *recorder {
	return &recorder{started: make(chan struct{}), event: make(chan string, 64)}
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
	r.event <- s
}

func (r *recorder) Start(runs []apitype.JobRun) {
	r.add(fmt.Sprintf("start %d", len(runs)))
	close(r.started)
}
func (r *recorder) Update(run apitype.JobRun) {
	r.add("update " + short(run.ID) + " " + string(run.Status))
}
func (r *recorder) Outage(id string, cause error) { r.add("outage " + short(id) + " " + cause.Error()) }
func (r *recorder) Note(line string)              { r.add("note " + line) }
func (r *recorder) Tick()                         {}
func (r *recorder) Stop()                         { r.add("stop") }
func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// waitFor blocks until the reporter records want.
func (r *recorder) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-r.event:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("reporter never saw %q; calls: %v", want, r.all())
		}
	}
}

func run(id string, status apitype.Status, result string) apitype.JobRun {
	raw := fmt.Sprintf(`{"id":%q,"job_type":"apple_ads_sync","status":%q,"result":%s,"created_at":"2026-11-29T16:00:00.000Z","unknown":"kept"}`, id, status, result)
	var r apitype.JobRun
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		panic(err)
	}
	return r
}

const (
	idA = "aaaaaaaa-0000-4000-8000-000000000001"
	idB = "bbbbbbbb-0000-4000-8000-000000000002"
)

type harness struct {
	clock *fakeClock
	src   *scriptSource
	rep   *recorder
	done  chan struct{}
	res   Result
	err   error
}

func start(t *testing.T, ctx context.Context, o Options, runs ...apitype.JobRun) *harness {
	t.Helper()
	h := &harness{clock: newClock(), src: newSource(runs...), rep: newRecorder(), done: make(chan struct{})}
	o.NowFunc, o.AfterFunc = h.clock.Now, h.clock.After
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	go func() {
		defer close(h.done)
		h.res, h.err = Follow(ctx, ids, h.src, h.rep, o)
	}()
	return h
}

func (h *harness) wait(t *testing.T) (Result, error) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Follow did not return; calls: %v", h.rep.all())
	}
	return h.res, h.err
}

func ptr(r apitype.JobRun) *apitype.JobRun { return &r }

func TestFollowRunsToTheirEnd(t *testing.T) {
	t.Parallel()
	h := start(t, context.Background(), Options{}, run(idA, "running", "null"), run(idB, "pending", "null"))
	h.rep.waitFor(t, "start 2")
	h.src.push(idA, step{patch: &apitype.ProgressEvent{ID: idA, Status: "running", Progress: &apitype.Progress{Processed: 3, Total: 9}, Raw: json.RawMessage(`{"id":"` + idA + `","status":"running","progress":{"processed":3,"total":9}}`)}})
	h.src.push(idA, step{snapshot: ptr(run(idA, "completed", `{"errors":0}`))})
	h.src.push(idA, step{end: true})
	h.src.push(idB, step{snapshot: ptr(run(idB, "failed", "null"))})
	h.src.push(idB, step{end: true})
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []Outcome{Succeeded, Failed}, res.Outcomes)
	require.Equal(t, 1, res.ExitCode())
	require.Equal(t, "job_failed", res.Code())
	require.Equal(t, []string{idA, idB}, res.IDs(), "run-set order")
	require.Empty(t, res.Unfinished())
	require.Equal(t, "stop", h.rep.all()[len(h.rep.all())-1])
}

func TestFollowAbortedIsAFailure(t *testing.T) {
	t.Parallel()
	h := start(t, context.Background(), Options{}, run(idA, "completed", `{"aborted":true,"abort_reason":"quota"}`))
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []Outcome{Aborted}, res.Outcomes)
	require.Equal(t, 1, res.ExitCode())
	require.Equal(t, "job_aborted", res.Code())
	require.Empty(t, h.src.watched, "an ended run is not watched")
}

func TestFollowTimeout(t *testing.T) {
	t.Parallel()
	h := start(t, context.Background(), Options{Timeout: time.Minute}, run(idA, "running", "null"), run(idB, "completed", "null"))
	h.rep.waitFor(t, "start 2")
	h.clock.Advance(time.Minute)
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []Outcome{TimedOut, Succeeded}, res.Outcomes)
	require.Equal(t, 8, res.ExitCode())
	require.Equal(t, "wait_timeout", res.Code())
	require.Equal(t, []string{idA}, res.Unfinished())
	require.Equal(t, time.Minute, res.Elapsed)
}

func TestFollowInterruptLeavesRunsAlone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	h := start(t, ctx, Options{}, run(idA, "running", "null"))
	h.rep.waitFor(t, "start 1")
	cancel()
	res, err := h.wait(t)
	require.NoError(t, err)
	require.True(t, res.Interrupted)
	require.False(t, res.CancelRequested)
	require.Equal(t, []Outcome{Interrupted}, res.Outcomes)
	require.Equal(t, 130, res.ExitCode())
	require.Empty(t, h.src.cancelled)
	require.Equal(t, []string{idA}, res.Unfinished())
}

func TestFollowCancelOnInterrupt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	h := start(t, ctx, Options{CancelOnInterrupt: true}, run(idA, "running", "null"), run(idB, "completed", "null"))
	h.rep.waitFor(t, "start 2")
	cancel()
	h.rep.waitFor(t, "note cancel requested for aaaaaaaa")
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []string{idA}, h.src.cancelled, "only active runs are cancelled")
	require.True(t, res.CancelRequested)
	require.Equal(t, []Outcome{Cancelled, Succeeded}, res.Outcomes, "the display stayed up until the run stopped")
	require.Equal(t, 130, res.ExitCode(), "an interrupt wins")
}

func TestFollowSecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	h := &harness{clock: newClock(), src: newSource(run(idA, "running", "null")), rep: newRecorder(), done: make(chan struct{})}
	// This source acknowledges the cancel but the run never stops.
	h.src.steps[idA] = make(chan step, 16)
	go func() {
		defer close(h.done)
		h.res, h.err = Follow(ctx, []string{idA}, noStopSource{h.src}, h.rep, Options{CancelOnInterrupt: true, Signals: sigs, NowFunc: h.clock.Now, AfterFunc: h.clock.After})
	}()
	h.rep.waitFor(t, "start 1")
	cancel()
	h.rep.waitFor(t, "note cancel requested for aaaaaaaa")
	sigs <- syscall.SIGINT
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []Outcome{Interrupted}, res.Outcomes)
	require.Equal(t, 130, res.ExitCode())
}

func TestFollowCancelGraceRunsOut(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{clock: newClock(), src: newSource(run(idA, "running", "null")), rep: newRecorder(), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.res, h.err = Follow(ctx, []string{idA}, noStopSource{h.src}, h.rep, Options{CancelOnInterrupt: true, NowFunc: h.clock.Now, AfterFunc: h.clock.After})
	}()
	h.rep.waitFor(t, "start 1")
	cancel()
	h.rep.waitFor(t, "note cancel requested for aaaaaaaa")
	h.clock.Advance(30 * time.Second)
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []Outcome{Interrupted}, res.Outcomes)
}

type noStopSource struct{ *scriptSource }

func (s noStopSource) Cancel(context.Context, string) error { return nil }

func TestFollowLostAfterTwoMinutes(t *testing.T) {
	t.Parallel()
	h := start(t, context.Background(), Options{}, run(idA, "running", "null"), run(idB, "running", "null"))
	h.rep.waitFor(t, "start 2")
	cause := errors.New("cannot reach http://127.0.0.1:4114: connection refused")
	h.src.push(idA, step{outage: cause})
	h.rep.waitFor(t, "outage aaaaaaaa "+cause.Error())
	h.src.push(idA, step{outage: cause}) // the same outage goes on: reported once
	h.src.push(idB, step{outage: cause})
	h.rep.waitFor(t, "outage bbbbbbbb "+cause.Error())
	h.src.push(idB, step{snapshot: ptr(run(idB, "running", "null"))}) // B recovers
	h.rep.waitFor(t, "update bbbbbbbb running")
	h.clock.Advance(2*time.Minute + time.Second)
	h.src.push(idB, step{snapshot: ptr(run(idB, "completed", "null"))})
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []Outcome{Lost, Succeeded}, res.Outcomes)
	require.Equal(t, 1, res.ExitCode())
	require.Equal(t, "wait_lost", res.Code())
	require.Equal(t, []string{idA}, res.Unfinished())
	n := 0
	for _, c := range h.rep.all() {
		if c == "outage aaaaaaaa "+cause.Error() {
			n++
		}
	}
	require.Equal(t, 1, n, "one outage line per outage")
}

func TestFollowFatalErrorEndsAtOnce(t *testing.T) {
	t.Parallel()
	h := start(t, context.Background(), Options{}, run(idA, "running", "null"))
	h.rep.waitFor(t, "start 1")
	gone := errors.New("job run gone")
	h.src.push(idA, step{end: true, err: gone})
	_, err := h.wait(t)
	require.ErrorIs(t, err, gone)
}

func TestFollowInitialErrorBeforeWaiting(t *testing.T) {
	t.Parallel()
	clock := newClock()
	src := newSource(run(idA, "running", "null"), run(idB, "running", "null"))
	notFound := errors.New("Job run not found (HTTP 404)")
	src.getErr[idB] = notFound
	rep := newRecorder()
	_, err := Follow(context.Background(), []string{idA, idB}, src, rep, Options{NowFunc: clock.Now, AfterFunc: clock.After})
	require.ErrorIs(t, err, notFound)
	require.Empty(t, rep.all(), "waiting never started")
}

func TestFollowAnyEndIsSuccess(t *testing.T) {
	t.Parallel()
	o := Options{}
	AnyEndIsSuccess(&o)
	h := start(t, context.Background(), o, run(idA, "running", "null"))
	h.rep.waitFor(t, "start 1")
	h.src.push(idA, step{snapshot: ptr(run(idA, "cancelled", "null"))})
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []Outcome{Succeeded}, res.Outcomes)
	require.Equal(t, 0, res.ExitCode())
}

func TestExitAggregation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		outcomes    []Outcome
		interrupted bool
		code        int
		name        string
	}{
		{[]Outcome{Succeeded, Succeeded}, false, 0, ""},
		{[]Outcome{Succeeded, TimedOut}, false, 8, "wait_timeout"},
		{[]Outcome{TimedOut, Failed}, false, 1, "job_failed"},
		{[]Outcome{Cancelled, Failed}, false, 1, "job_cancelled"},
		{[]Outcome{Lost, TimedOut}, false, 1, "wait_lost"},
		{[]Outcome{Failed, Interrupted}, true, 130, "interrupted"},
		{[]Outcome{}, false, 0, ""},
	}
	for _, tt := range tests {
		r := Result{Outcomes: tt.outcomes, Interrupted: tt.interrupted}
		require.Equal(t, tt.code, r.ExitCode(), "%v", tt.outcomes)
		require.Equal(t, tt.name, r.Code(), "%v", tt.outcomes)
	}
}

func TestMergeKeepsUnknownFields(t *testing.T) {
	t.Parallel()
	base := run(idA, "running", "null")
	patch := apitype.ProgressEvent{}
	require.NoError(t, json.Unmarshal([]byte(`{"id":"`+idA+`","status":"running","progress":{"processed":5,"total":10,"message":"m","inner":{"processed":1,"total":2,"project_id":"p"},"future":1},"cancel_requested_at":"2026-11-29T16:01:00.000Z"}`), &patch))
	got := Merge(base, patch)
	require.Equal(t, int64(5), got.Progress.Processed)
	require.NotNil(t, got.CancelRequestedAt)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(got.Raw, &doc))
	require.Equal(t, "kept", doc["unknown"])
	require.Equal(t, float64(1), doc["progress"].(map[string]any)["future"])
	require.Equal(t, "2026-11-29T16:01:00.000Z", doc["cancel_requested_at"])
	require.Nil(t, base.Progress, "the snapshot passed in is not changed")
	require.NotContains(t, string(base.Raw), "future")
}

// lateAckSource ends the run first and answers the cancel request only once the display
// has shown the end, as a fast server does.
type lateAckSource struct {
	*scriptSource
	rep *recorder
}

func (s lateAckSource) Cancel(ctx context.Context, id string) error {
	s.mu.Lock()
	run := s.initial[id]
	ch := s.steps[id]
	s.mu.Unlock()
	run.Status = apitype.StatusCancelled
	ch <- step{snapshot: &run}
	for {
		for _, c := range s.rep.all() {
			if c == "update "+short(id)+" cancelled" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// The note of a cancel request is printed even when the run ends before the request
// answers, and before the display stops.
func TestFollowCancelNoteAfterTheRunEnded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{clock: newClock(), src: newSource(run(idA, "running", "null")), rep: newRecorder(), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.res, h.err = Follow(ctx, []string{idA}, lateAckSource{h.src, h.rep}, h.rep, Options{CancelOnInterrupt: true, NowFunc: h.clock.Now, AfterFunc: h.clock.After})
	}()
	h.rep.waitFor(t, "start 1")
	cancel()
	res, err := h.wait(t)
	require.NoError(t, err)
	require.Equal(t, []Outcome{Cancelled}, res.Outcomes)
	calls := h.rep.all()
	require.Equal(t, "stop", calls[len(calls)-1])
	require.Equal(t, "note cancel requested for aaaaaaaa", calls[len(calls)-2])
}
