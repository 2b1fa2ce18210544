// Package follow waits for job runs to end.
//
// Follow takes a set of run ids, a Source that knows how to read them and a Reporter
// that shows progress. It fetches the initial snapshots, watches every active run,
// merges the snapshots and progress patches the source reports, applies the timeout,
// declares a run lost after two minutes without a successful answer, handles the first
// and second interrupt, and returns a Result: the last snapshot and the outcome of every
// run, and the exit code of cli.md §6.9.
//
// Sources (the API's event stream or polling, the database) and reporters (a live bar,
// plain lines, nothing) are interfaces declared here, so this package imports neither
// the client nor the terminal code.
package follow

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// Source reads runs. client.RunSource and the database source satisfy it.
type Source interface {
	// Get returns the current snapshot of a run (the initial snapshot of cli.md §6.3).
	Get(ctx context.Context, runID string) (apitype.JobRun, error)
	// Watch reports news about one run until it ends (nil), ctx ends (ctx's error), or
	// a failure that ends the wait (any other error). report receives exactly one
	// non-nil argument per call: a full snapshot, a progress patch, or an outage cause.
	Watch(ctx context.Context, runID string, report func(snapshot *apitype.JobRun, patch *apitype.ProgressEvent, outage error)) error
	// Cancel asks a run to stop (--cancel-on-interrupt).
	Cancel(ctx context.Context, runID string) error
}

// Reporter shows a wait while it lasts. tui.Bar, tui.Lines and tui.Quiet satisfy it.
type Reporter interface {
	// Start is called once, when waiting begins, with the initial snapshots in run-set
	// order.
	Start(runs []apitype.JobRun)
	// Update delivers the newest snapshot of one run.
	Update(run apitype.JobRun)
	// Outage says requests about a run have started failing and are being retried.
	Outage(runID string, cause error)
	// Note prints one line above any live display ("cancel requested for 3f2a9c1e").
	Note(line string)
	// Tick is called about once a second, for displays that refresh or flush.
	Tick()
	// Stop ends the display; the last frame stays on screen.
	Stop()
}

// Outcome is how one run's wait ended (cli.md §6.7).
type Outcome string

// The outcomes.
const (
	Succeeded   Outcome = "succeeded"
	Aborted     Outcome = "aborted"
	Failed      Outcome = "failed"
	Cancelled   Outcome = "cancelled"
	TimedOut    Outcome = "timed_out"
	Interrupted Outcome = "interrupted"
	Lost        Outcome = "lost"
)

// Bad reports outcomes that make the wait exit 1.
func (o Outcome) Bad() bool {
	return o == Aborted || o == Failed || o == Cancelled || o == Lost
}

// Code is the JSON error code of an outcome (cli.md §5.3), "" for success.
func (o Outcome) Code() string {
	switch o {
	case Aborted:
		return "job_aborted"
	case Failed:
		return "job_failed"
	case Cancelled:
		return "job_cancelled"
	case Lost:
		return "wait_lost"
	case TimedOut:
		return "wait_timeout"
	case Interrupted:
		return "interrupted"
	}
	return ""
}

// Options tune a wait.
type Options struct {
	// Timeout stops waiting after this long, counted from the call. Zero waits without
	// limit.
	Timeout time.Duration
	// CancelOnInterrupt asks every active run to stop on the first signal, then keeps
	// the display up to CancelGrace for them to end.
	CancelOnInterrupt bool
	// AnyEndIsSuccess counts every terminal status as success (jobs cancel --wait).
	AnyEndIsSuccess bool
	// Signals delivers the signals after the first; the first cancels ctx. A second
	// signal stops at once.
	Signals <-chan os.Signal
	// NowFunc is the clock. Defaults to time.Now.
	NowFunc func() time.Time
	// AfterFunc is the timer. Defaults to time.After.
	AfterFunc func(time.Duration) <-chan time.Time
	// LostAfter ends a run's wait after this long without a successful answer.
	// Defaults to 2m.
	LostAfter time.Duration
	// CancelTimeout bounds each cancel request. Defaults to 10s.
	CancelTimeout time.Duration
	// CancelGrace is how long the display stays up after cancel requests. Defaults to 30s.
	CancelGrace time.Duration
}

// Option changes Options.
type Option func(*Options)

// AnyEndIsSuccess makes every terminal status a success: the caller wanted the run
// stopped, and it has stopped.
func AnyEndIsSuccess(o *Options) { o.AnyEndIsSuccess = true }

func (o *Options) defaults() {
	if o.NowFunc == nil {
		o.NowFunc = time.Now
	}
	if o.AfterFunc == nil {
		o.AfterFunc = time.After
	}
	if o.LostAfter <= 0 {
		o.LostAfter = 2 * time.Minute
	}
	if o.CancelTimeout <= 0 {
		o.CancelTimeout = 10 * time.Second
	}
	if o.CancelGrace <= 0 {
		o.CancelGrace = 30 * time.Second
	}
}

// Result is how a wait ended.
type Result struct {
	// Runs are the last snapshots, in run-set order.
	Runs []apitype.JobRun
	// Outcomes are the outcomes, index for index with Runs. A run still active when
	// waiting stopped has TimedOut, Interrupted or Lost.
	Outcomes []Outcome
	// Interrupted is true when a signal ended the wait.
	Interrupted bool
	// CancelRequested is true when --cancel-on-interrupt asked the runs to stop.
	CancelRequested bool
	// Elapsed is how long the wait took.
	Elapsed time.Duration
	// EndedAt is when waiting stopped, by the wait's clock.
	EndedAt time.Time
}

// ExitCode aggregates the outcomes (cli.md §6.9): interrupted 130; else any failed,
// cancelled, aborted or lost run 1; else any run still active at the deadline 8; else 0.
func (r Result) ExitCode() int {
	code, _ := r.exit()
	return code
}

// Code is the JSON error code of the aggregate, "" for success.
func (r Result) Code() string {
	_, name := r.exit()
	return name
}

func (r Result) exit() (int, string) {
	if r.Interrupted {
		return 130, Interrupted.Code()
	}
	for _, o := range r.Outcomes {
		if o.Bad() {
			return 1, o.Code()
		}
	}
	for _, o := range r.Outcomes {
		if o == TimedOut {
			return 8, TimedOut.Code()
		}
	}
	return 0, ""
}

// Unfinished returns the ids of runs still active when waiting stopped, for the
// re-attach hint.
func (r Result) Unfinished() []string {
	var out []string
	for i, o := range r.Outcomes {
		if o == TimedOut || o == Interrupted || o == Lost {
			out = append(out, r.Runs[i].ID)
		}
	}
	return out
}

// IDs returns every run id in run-set order.
func (r Result) IDs() []string {
	out := make([]string, len(r.Runs))
	for i, run := range r.Runs {
		out[i] = run.ID
	}
	return out
}

// OutcomeOf classifies one final snapshot; active runs are TimedOut here and adjusted
// by the caller.
func OutcomeOf(run apitype.JobRun, anyEndIsSuccess bool) Outcome {
	switch {
	case run.Status.Terminal() && anyEndIsSuccess:
		return Succeeded
	case run.Status == apitype.StatusCompleted && run.Aborted():
		return Aborted
	case run.Status == apitype.StatusCompleted:
		return Succeeded
	case run.Status == apitype.StatusFailed:
		return Failed
	case run.Status == apitype.StatusCancelled:
		return Cancelled
	}
	return TimedOut
}

// update is one message from a watch goroutine to the loop.
type update struct {
	i        int
	snapshot *apitype.JobRun
	patch    *apitype.ProgressEvent
	outage   error
	ended    bool
	err      error
}

type runState struct {
	run         apitype.JobRun
	ended       bool
	lost        bool
	outageSince time.Time
}

// Follow waits for the runs named by ids (already validated and de-duplicated) to end.
// A failure before waiting starts (a 404 on the initial snapshot), or one that ends the
// wait at once (401, 403, a run gone), is returned as the error; every other ending is
// a Result.
func Follow(ctx context.Context, ids []string, src Source, rep Reporter, o Options) (Result, error) {
	o.defaults()
	start := o.NowFunc()
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		deadline = o.AfterFunc(o.Timeout)
	}

	runs, err := initial(ctx, ids, src)
	if err != nil {
		return Result{}, err
	}
	states := make([]*runState, len(runs))
	for i, r := range runs {
		states[i] = &runState{run: r, ended: r.Status.Terminal()}
	}
	rep.Start(runs)

	// Watches outlive the first signal: with --cancel-on-interrupt the display goes on.
	wctx, stopWatches := context.WithCancel(context.WithoutCancel(ctx))
	updates := make(chan update, 16)
	var wg sync.WaitGroup
	send := func(u update) {
		select {
		case updates <- u:
		case <-wctx.Done():
		}
	}
	for i, st := range states {
		if st.ended {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := src.Watch(wctx, st.run.ID, func(s *apitype.JobRun, p *apitype.ProgressEvent, out error) {
				send(update{i: i, snapshot: s, patch: p, outage: out})
			})
			send(update{i: i, ended: true, err: err})
		}()
	}
	finish := func() {
		stopWatches()
		wg.Wait()
		rep.Stop()
	}

	res := Result{}
	tick := o.AfterFunc(time.Second)
	interrupt := ctx.Done()
	var grace <-chan time.Time
	var signals <-chan os.Signal
	cancelDone := make(chan string, len(states))
	cancelsSent, cancelNotes := 0, 0
	stop := false
	for !stop && !allEnded(states) {
		select {
		case u := <-updates:
			st := states[u.i]
			switch {
			case u.snapshot != nil:
				st.run = *u.snapshot
				st.outageSince = time.Time{}
				if st.run.Status.Terminal() {
					st.ended = true
				}
				rep.Update(st.run)
			case u.patch != nil:
				st.run = Merge(st.run, *u.patch)
				st.outageSince = time.Time{}
				rep.Update(st.run)
			case u.outage != nil:
				if st.outageSince.IsZero() {
					st.outageSince = o.NowFunc()
					rep.Outage(st.run.ID, u.outage)
				}
			case u.ended:
				if u.err != nil && !errors.Is(u.err, context.Canceled) {
					finish()
					res.Runs, res.Outcomes = snapshots(states), nil
					return res, u.err
				}
				if u.err == nil && !st.ended {
					// The source says the run ended without a final snapshot: read it.
					if run, err := src.Get(wctx, st.run.ID); err == nil {
						st.run = run
						rep.Update(run)
					}
					st.ended = true
				}
			}
		case <-deadline:
			stop = true
		case <-tick:
			now := o.NowFunc()
			for _, st := range states {
				if !st.ended && !st.outageSince.IsZero() && now.Sub(st.outageSince) >= o.LostAfter {
					st.ended, st.lost = true, true
				}
			}
			rep.Tick()
			tick = o.AfterFunc(time.Second)
		case <-interrupt:
			interrupt = nil
			res.Interrupted = true
			if !o.CancelOnInterrupt {
				stop = true
				continue
			}
			res.CancelRequested = true
			signals = o.Signals
			grace = o.AfterFunc(o.CancelGrace)
			active := activeIDs(states)
			cancelsSent = len(active)
			go func() {
				for _, id := range active {
					cctx, cancel := context.WithTimeout(wctx, o.CancelTimeout)
					err := src.Cancel(cctx, id)
					cancel()
					if err != nil {
						cancelDone <- "warning: could not cancel " + short(id) + ": " + err.Error()
						continue
					}
					cancelDone <- "cancel requested for " + short(id)
				}
			}()
		case line := <-cancelDone:
			cancelNotes++
			rep.Note(line)
		case <-signals:
			stop = true
		case <-grace:
			stop = true
		}
	}
	// A run can end before its cancel request answers; the note still belongs above the
	// outcome lines, so wait for the requests in flight (each is bounded by CancelTimeout).
	for drain := true; drain && cancelNotes < cancelsSent; {
		select {
		case line := <-cancelDone:
			cancelNotes++
			rep.Note(line)
		case <-signals:
			drain = false
		case <-o.AfterFunc(o.CancelTimeout):
			drain = false
		}
	}
	finish()
	end := o.NowFunc()
	res.Elapsed = end.Sub(start)
	res.EndedAt = end
	res.Runs = snapshots(states)
	res.Outcomes = make([]Outcome, len(states))
	for i, st := range states {
		switch {
		case st.lost:
			res.Outcomes[i] = Lost
		case !st.ended && res.Interrupted:
			res.Outcomes[i] = Interrupted
		default:
			res.Outcomes[i] = OutcomeOf(st.run, o.AnyEndIsSuccess)
		}
	}
	return res, nil
}

// initial fetches every run in parallel; the first error in run-set order wins.
func initial(ctx context.Context, ids []string, src Source) ([]apitype.JobRun, error) {
	runs := make([]apitype.JobRun, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = src.Get(ctx, id)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return runs, nil
}

func allEnded(states []*runState) bool {
	for _, st := range states {
		if !st.ended {
			return false
		}
	}
	return true
}

func activeIDs(states []*runState) []string {
	var out []string
	for _, st := range states {
		if !st.ended {
			out = append(out, st.run.ID)
		}
	}
	return out
}

func snapshots(states []*runState) []apitype.JobRun {
	out := make([]apitype.JobRun, len(states))
	for i, st := range states {
		out[i] = st.run
	}
	return out
}

func short(id string) string {
	if len(id) >= 8 {
		return id[:8]
	}
	return id
}

// Merge applies a progress patch to the last snapshot (cli.md §6.3): status, progress and
// cancel_requested_at are replaced, in the typed fields and in the raw bytes, so JSON
// output shows the merged run with every unknown field intact.
func Merge(run apitype.JobRun, p apitype.ProgressEvent) apitype.JobRun {
	if p.Status != "" {
		run.Status = p.Status
	}
	run.Progress = p.Progress
	run.CancelRequestedAt = p.CancelRequestedAt
	if len(run.Raw) == 0 {
		return run
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(run.Raw, &doc) != nil {
		run.Raw = nil
		return run
	}
	var patch map[string]json.RawMessage
	if json.Unmarshal(p.Raw, &patch) != nil {
		patch = map[string]json.RawMessage{}
		if b, err := json.Marshal(p.Progress); err == nil {
			patch["progress"] = b
		}
	}
	for _, k := range []string{"status", "progress", "cancel_requested_at"} {
		if v, ok := patch[k]; ok {
			doc[k] = v
		}
	}
	if b, err := json.Marshal(doc); err == nil {
		run.Raw = b
	}
	return run
}
