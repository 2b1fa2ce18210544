package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/notify"
)

// Error texts the engine writes (engine.md §6.4, §11).
const (
	ErrTextRestarted     = "Server restarted during execution"
	ErrTextNoStopRequest = "handler stopped without a stop request"
	ErrTextLostFromQueue = "Job was lost from the queue"
	ErrTextInterrupted   = "interrupted by operator"
)

// maxResultBytes caps a stored result (engine.md §6.5).
const maxResultBytes = 1 << 20

// activeRun is a run this process owns and executes.
type activeRun struct {
	run       *Run
	rec       RunRecord
	hctx      context.Context
	cancel    context.CancelCauseFunc
	progress  *progressReporter
	leaseLost atomic.Bool
	// claimed is false while a queue run is registered but its claim has not committed;
	// heartbeats leave such runs alone.
	claimed atomic.Bool
}

// stop cancels the handler's context with a reason. The first reason is the one that
// decides the final status.
func (a *activeRun) stop(reason StopReason) {
	a.run.setStop(reason)
	a.cancel(fmt.Errorf("run stopped: %s", reason))
}

func (a *activeRun) loseLease() {
	a.leaseLost.Store(true)
	a.stop(StopLeaseLost)
}

func (e *Engine) register(a *activeRun) {
	e.mu.Lock()
	e.active[a.run.ID] = a
	e.mu.Unlock()
}

func (e *Engine) unregister(a *activeRun) {
	e.mu.Lock()
	delete(e.active, a.run.ID)
	e.mu.Unlock()
}

// ownedIDs lists the runs this process has claimed and not yet released.
func (e *Engine) ownedIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, 0, len(e.active))
	for id, a := range e.active {
		if a.claimed.Load() {
			ids = append(ids, id)
		}
	}
	return ids
}

func (e *Engine) lookupActive(id string) *activeRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.active[id]
}

func (e *Engine) deliverCancel(id string) {
	if a := e.lookupActive(id); a != nil {
		a.stop(StopCancelRequested)
	}
}

var errNotClaimable = errors.New("run is no longer pending")

// claim moves a pending run to running for this instance (T3, engine.md §6.1), retrying
// database errors after 100 ms, 500 ms and 2 s.
func (e *Engine) claim(ctx context.Context, runID string) (RunRecord, error) {
	waits := []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}
	for attempt := 0; ; attempt++ {
		rec, err := ScanRun(e.pool.QueryRow(ctx, `
			UPDATE job_runs
			   SET status = 'running', started_at = now(), heartbeat_at = now(),
			       owner_node = $2, owner_instance = $3
			 WHERE id = $1 AND status = 'pending' AND cancel_requested_at IS NULL
			RETURNING `+RunColumns, runID, e.nodeID, e.instance))
		if errors.Is(err, pgx.ErrNoRows) {
			return rec, errNotClaimable
		}
		if err == nil || attempt >= len(waits) {
			return rec, err
		}
		select {
		case <-ctx.Done():
			return rec, err
		case <-time.After(waits[attempt]):
		}
	}
}

// runWorker is the River worker of every handler kind.
type runWorker struct {
	river.WorkerDefaults[runArgs]
	e *Engine
}

func (w *runWorker) Work(ctx context.Context, job *river.Job[runArgs]) error {
	e := w.e
	// Registered before the claim, so a cancel that commits right after the claim finds
	// the run whichever way it arrives; the claim's guard covers anything earlier.
	a := e.newActiveRun(ctx, job.Args.RunID)
	e.register(a)
	defer e.unregister(a)
	rec, err := e.claim(ctx, job.Args.RunID)
	if err != nil {
		a.cancel(nil)
		if errors.Is(err, errNotClaimable) {
			return river.JobCancel(err)
		}
		return fmt.Errorf("claim run %s: %w", job.Args.RunID, err)
	}
	a.adopt(rec)
	out := e.execute(ctx, a)
	switch {
	case !out.written:
		return river.JobCancel(errors.New("run finalized elsewhere"))
	case out.rec.Status == apitype.StatusCompleted:
		return nil
	case out.rec.Status == apitype.StatusCancelled, out.stop == StopShutdown:
		return river.JobCancel(errors.New(strOr(out.rec.Error, "cancelled")))
	default:
		// A plain error: with MaxAttempts 1 River discards the job. Never ctx.Err(),
		// which would put the job back to available on StopAndCancel (§18.7 #8).
		return errors.New(strOr(out.rec.Error, "failed"))
	}
}

// newActiveRun prepares the bookkeeping of a run this process is about to own. parent is
// River's work context for queue runs: its cancellation means a remote cancel or a
// forced shutdown, never a direct cancellation of the handler, so the handler's context
// is detached from it and the stop reason is always known.
func (e *Engine) newActiveRun(parent context.Context, runID string) *activeRun {
	hctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	a := &activeRun{hctx: hctx, cancel: cancel, run: &Run{ID: runID, DB: e.pool, Now: e.now}}
	a.progress = newProgressReporter(e.cfg.ProgressInterval, func(ctx context.Context, p *apitype.Progress) error {
		return e.writeProgress(ctx, a, p)
	})
	a.run.Progress = a.progress
	return a
}

// adopt fills in the claimed record.
func (a *activeRun) adopt(rec RunRecord) {
	a.rec = rec
	r := a.run
	r.JobType, r.TeamID, r.ProjectID, r.TriggeredBy = rec.JobType, rec.TeamID, rec.ProjectID, rec.TriggeredBy
	a.claimed.Store(true)
}

func strOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// execOutcome is how execute ended.
type execOutcome struct {
	rec     RunRecord
	written bool
	stop    StopReason
}

// execute runs the handler of a claimed run and finalises it (engine.md §6).
func (e *Engine) execute(parent context.Context, a *activeRun) execOutcome {
	rec, run := a.rec, a.run
	start := e.now()
	log := e.runLogger(rec)
	run.Log = log
	log.Info("run started", "owner_node", e.nodeID)
	defer a.cancel(nil)

	stopWatch := context.AfterFunc(parent, func() {
		if errors.Is(context.Cause(parent), river.ErrJobCancelledRemotely) {
			a.stop(StopCancelRequested)
		} else {
			a.stop(StopShutdown)
		}
	})
	defer stopWatch()
	maxRun := e.cfg.MaxRunTimeOf(rec.JobType)
	deadline := time.AfterFunc(maxRun, func() { a.stop(StopDeadline) })
	defer deadline.Stop()

	var (
		res     Result
		herr    error
		panicky bool
	)
	t := jobtype.MustLookup(rec.JobType)
	params, perr := jobtype.CoerceStoredParams(t, rec.Params)
	h, hasHandler := e.cfg.Handlers[rec.JobType]
	switch {
	case perr != nil:
		herr = fmt.Errorf("invalid params: %w", perr)
	case !hasHandler:
		herr = &NoHandlerError{JobType: rec.JobType}
	default:
		run.Params = params
		res, herr, panicky = safeRun(a.hctx, h, run, log)
	}
	last := a.progress.close()
	reason := run.StopReason()

	out := execOutcome{stop: reason}
	if a.leaseLost.Load() {
		log.Warn("run lease lost; leaving its record to whoever took it over")
		return out
	}
	fin := decide(res, herr, panicky, reason, maxRun)
	fin.progress = finalProgress(last, fin.status)
	out.rec, out.written = e.finalize(parent, a, fin)
	if out.written {
		e.observeFinished(out.rec, start, log)
	}
	return out
}

func (e *Engine) runLogger(rec RunRecord) *slog.Logger {
	attrs := []any{"run_id", rec.ID, "job_type", rec.JobType}
	if rec.TeamID != nil {
		attrs = append(attrs, "team_id", *rec.TeamID)
	}
	if rec.ProjectID != nil {
		attrs = append(attrs, "project_id", *rec.ProjectID)
	}
	return e.log.With(attrs...)
}

// safeRun calls the handler, turning a panic into a failure (stack logged, never stored).
func safeRun(ctx context.Context, h Handler, run *Run, log *slog.Logger) (res Result, err error, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			res, err, panicked = nil, &panicError{value: v}, true
		}
	}()
	res, err = h.Run(ctx, run)
	return res, err, false
}

// finalState is what a finished handler leads to.
type finalState struct {
	status   apitype.Status
	result   Result
	errText  *string
	progress *apitype.Progress
}

// decide applies the final-status table of engine.md §6.4.
func decide(res Result, err error, panicked bool, reason StopReason, maxRun time.Duration) finalState {
	failed := func(msg string, partial Result) finalState {
		m := truncateError(msg)
		return finalState{status: apitype.StatusFailed, errText: &m, result: partial}
	}
	if err == nil {
		return finalState{status: apitype.StatusCompleted, result: res}
	}
	if panicked {
		return failed(err.Error(), nil)
	}
	partial, stopped := IsStopped(err)
	if reason == StopDeadline {
		return failed(fmt.Sprintf("Job exceeded its maximum run time of %s", maxRun), partial)
	}
	if !stopped {
		return failed(err.Error(), nil)
	}
	switch reason {
	case StopCancelRequested:
		return finalState{status: apitype.StatusCancelled, result: partial}
	case StopShutdown:
		return failed(ErrTextRestarted, partial)
	case StopInterrupted:
		return failed(ErrTextInterrupted, partial)
	default:
		return failed(ErrTextNoStopRequest, partial)
	}
}

// truncateError cuts an error text to 1,000 characters with a trailing ellipsis.
func truncateError(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= 1000 {
		return s
	}
	r := []rune(s)
	return string(r[:999]) + "…"
}

// finalize writes the terminal transition (T5/T6/T7) guarded by the lease and enqueues
// the notifications in one transaction (engine.md §6.6). Transient database errors retry
// with backoff for up to StaleAfter; the outcome never changes between attempts.
//
// The River job of a completed run is completed by River's batch completer when the
// worker returns nil, not by JobCompleteTx inside this transaction: one batched
// statement for many runs instead of one per run, which is a sizeable share of the
// database's work per run. job_runs stays the record either way. If the process dies
// between this commit and the batch, River's rescuer finds the job still running and
// discards it (MaxAttempts 1); a redelivery could not run it twice, because the claim
// only takes pending runs.
func (e *Engine) finalize(parent context.Context, a *activeRun, fin finalState) (RunRecord, bool) {
	resultJSON, err := marshalResult(fin.result)
	if err != nil {
		m := truncateError(err.Error())
		fin = finalState{status: apitype.StatusFailed, errText: &m, progress: fin.progress}
		resultJSON = nil
	}
	progressJSON, _ := marshalNullable(fin.progress)
	base := context.WithoutCancel(parent)
	backoff := 500 * time.Millisecond
	deadline := time.Now().Add(e.cfg.StaleAfter)
	for {
		if a.leaseLost.Load() {
			return RunRecord{}, false
		}
		ctx, cancel := context.WithTimeout(base, 30*time.Second)
		rec, written, err := e.finalizeTx(ctx, a, fin, resultJSON, progressJSON)
		cancel()
		if err == nil {
			return rec, written
		}
		if !isTransient(err) || time.Now().After(deadline) {
			e.log.Error("finalize run", "run_id", a.rec.ID, "error", err)
			return RunRecord{}, false
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (e *Engine) finalizeTx(ctx context.Context, a *activeRun, fin finalState, resultJSON, progressJSON []byte) (RunRecord, bool, error) {
	const update = `
			UPDATE job_runs
			   SET status = $3, result = $4, error = $5, progress = $6, completed_at = now()
			 WHERE id = $1 AND status = 'running' AND owner_instance = $2
			RETURNING ` + RunColumns
	args := []any{a.rec.ID, e.instance, string(fin.status), resultJSON, fin.errText, progressJSON}
	if !e.notifierInterested(a.rec, fin) {
		// Nobody is told about this run: the guarded update alone is the transition.
		rec, err := ScanRun(e.pool.QueryRow(ctx, update, args...))
		if errors.Is(err, pgx.ErrNoRows) {
			e.log.Warn("run finalized elsewhere", "run_id", a.rec.ID)
			return rec, false, nil
		}
		return rec, err == nil, err
	}
	var rec RunRecord
	written := false
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		rec, err = ScanRun(tx.QueryRow(ctx, update, args...))
		if errors.Is(err, pgx.ErrNoRows) {
			e.log.Warn("run finalized elsewhere", "run_id", a.rec.ID)
			return nil
		}
		if err != nil {
			return err
		}
		if err := e.notifyFinished(ctx, tx, rec); err != nil {
			return err
		}
		written = true
		return nil
	})
	return rec, written, err
}

// notifierInterested asks the notifier, when it can say, whether finishing the run
// this way enqueues anything; a notifier that cannot say always gets its transaction.
func (e *Engine) notifierInterested(rec RunRecord, fin finalState) bool {
	if e.cfg.Notifier == nil {
		return false
	}
	in, ok := e.cfg.Notifier.(notify.Interest)
	if !ok {
		return true
	}
	return in.Interested(notify.FinishedRun{ID: rec.ID, JobType: rec.JobType, Status: string(fin.status), TeamID: rec.TeamID,
		ProjectID: rec.ProjectID, TriggeredBy: rec.TriggeredBy, Notify: rec.Notify, Result: fin.result, Error: fin.errText})
}

// notifyFinished hands a terminal run to the notifier inside its transaction (§14.1).
func (e *Engine) notifyFinished(ctx context.Context, tx pgx.Tx, rec RunRecord) error {
	if e.cfg.Notifier == nil {
		return nil
	}
	return e.cfg.Notifier.RunFinished(ctx, tx, e.river, notify.FinishedRun{
		ID: rec.ID, JobType: rec.JobType, Status: string(rec.Status), TeamID: rec.TeamID, ProjectID: rec.ProjectID,
		TriggeredBy: rec.TriggeredBy, Notify: rec.Notify, Result: rec.Result, Error: rec.Error,
		StartedAt: rec.StartedAt, CompletedAt: *rec.CompletedAt,
	})
}

func (e *Engine) observeFinished(rec RunRecord, start time.Time, log *slog.Logger) {
	status := string(rec.Status)
	e.metrics.RunsFinished.WithLabelValues(rec.JobType, status).Inc()
	d := e.now().Sub(start)
	if rec.StartedAt != nil && rec.CompletedAt != nil {
		d = rec.CompletedAt.Sub(*rec.StartedAt)
	}
	e.metrics.RunDuration.WithLabelValues(rec.JobType, status).Observe(d.Seconds())
	aborted := rec.Aborted()
	if aborted {
		e.metrics.RunsAborted.WithLabelValues(rec.JobType).Inc()
	}
	attrs := []any{"status", status, "duration_ms", d.Milliseconds(), "aborted", aborted}
	if rec.Error != nil {
		attrs = append(attrs, "error", *rec.Error)
	}
	if rec.Status == apitype.StatusFailed || aborted {
		log.Warn("run finished", attrs...)
	} else {
		log.Info("run finished", attrs...)
	}
}

func marshalResult(r Result) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("result is not JSON: %w", err)
	}
	if len(b) > maxResultBytes {
		return nil, fmt.Errorf("result too large (%d bytes)", len(b))
	}
	return b, nil
}

func marshalNullable(v any) ([]byte, error) {
	switch x := v.(type) {
	case *apitype.Progress:
		if x == nil {
			return nil, nil
		}
	}
	return json.Marshal(v)
}

// writeProgress persists one progress value under the lease (engine.md §7.2); zero rows
// means the lease is lost.
func (e *Engine) writeProgress(ctx context.Context, a *activeRun, p *apitype.Progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	tag, err := e.ctrl.Exec(ctx, `UPDATE job_runs SET progress = $3, heartbeat_at = now()
		WHERE id = $1 AND status = 'running' AND owner_instance = $2`, a.rec.ID, e.instance, b)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		a.loseLease()
		return errLeaseLost
	}
	e.metrics.ProgressWrites.Inc()
	return nil
}

var errLeaseLost = errors.New("lease lost")

// isTransient reports database errors worth retrying: connection failures, serialization
// failures, deadlocks, shutdowns. Constraint, data and syntax errors are not.
func isTransient(err error) bool {
	code := db.SQLState(err)
	if code == "" {
		return !errors.Is(err, context.Canceled)
	}
	switch code[:2] {
	case "08", "40", "53", "57":
		return true
	}
	return false
}

// NoHandlerError is a job type this build cannot execute.
type NoHandlerError struct{ JobType string }

func (e *NoHandlerError) Error() string { return e.JobType + " has no handler in this build" }
