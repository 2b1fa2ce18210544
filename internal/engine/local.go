package engine

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// LocalOptions tune RunLocal.
type LocalOptions struct {
	// CancelActor is recorded as cancel_requested_by when ctx is cancelled (the first
	// signal): the run is asked to stop cooperatively, like any cancel.
	CancelActor string
	// Interrupt fails the run at once with "interrupted by operator" (the second signal).
	Interrupt <-chan struct{}
	// Started is called once the run is recorded, before the handler starts.
	Started func(RunRecord)
}

// startLocalExecutor starts what a CLI process needs to own a run: the control session
// for cancel delivery and the heartbeat loop. It never takes the node lock.
func (e *Engine) startLocalExecutor(ctx context.Context) error {
	e.execOnce.Do(func() {
		conn, err := e.connectControl(ctx)
		if err != nil {
			e.execErr = err
			return
		}
		e.mu.Lock()
		e.ctrlConn = conn
		e.mu.Unlock()
		bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
		e.bgCancel = cancel
		e.goBackground(func() { e.listen(bg, conn) })
		e.goBackground(func() { e.heartbeatLoop(bg) })
	})
	return e.execErr
}

// RunLocal executes a run in this process (engine.md §13): one reaper pass first, then
// the run is inserted directly as running (T2) and its handler runs here with the same
// wrapper as queue runs — heartbeats, throttled progress, cancel delivery, finalisation
// and notifications. Cancelling ctx requests cooperative cancellation; opts.Interrupt
// fails the run at once. It returns the run's final record.
func (e *Engine) RunLocal(ctx context.Context, req EnqueueRequest, opts LocalOptions) (RunRecord, error) {
	if err := e.startLocalExecutor(ctx); err != nil {
		return RunRecord{}, err
	}
	if _, err := e.reapPass(ctx, ReasonLeaseExpired); err != nil {
		return RunRecord{}, err
	}
	req.Executor = ExecutorLocal
	rec, err := e.Enqueue(ctx, req)
	if err != nil {
		return rec, err
	}
	if opts.Started != nil {
		opts.Started(rec)
	}
	a := e.newActiveRun(context.Background(), rec.ID)
	a.adopt(rec)
	e.register(a)
	// A cancel that committed between the insert and the registration above sent its
	// notification to nobody; read it once now.
	var requested bool
	if err := e.ctrl.QueryRow(ctx, `SELECT cancel_requested_at IS NOT NULL FROM job_runs WHERE id = $1`, rec.ID).Scan(&requested); err == nil && requested {
		a.stop(StopCancelRequested)
	}
	done := make(chan execOutcome, 1)
	go func() {
		defer e.unregister(a)
		done <- e.execute(context.Background(), a)
	}()

	ctxDone := ctx.Done()
	for {
		select {
		case out := <-done:
			if out.written {
				return out.rec, nil
			}
			return e.Get(context.Background(), rec.ID)
		case <-ctxDone:
			ctxDone = nil
			if _, _, err := e.Cancel(context.WithoutCancel(ctx), rec.ID, opts.CancelActor); err != nil {
				var nc *NotCancellableError
				if !errors.As(err, &nc) {
					e.log.Warn("cancel local run", "run_id", rec.ID, "error", err)
				}
			}
		case <-opts.Interrupt:
			return e.interruptLocal(rec.ID)
		}
	}
}

// interruptLocal fails a local run this process owns at once (the second signal), guarded
// by the lease, and stops its handler without a further write.
func (e *Engine) interruptLocal(runID string) (RunRecord, error) {
	if a := e.lookupActive(runID); a != nil {
		a.leaseLost.Store(true) // this write replaces the handler's finalisation
		a.stop(StopInterrupted)
	}
	ctx := context.Background()
	var rec RunRecord
	err := pgx.BeginFunc(ctx, e.ctrl, func(tx pgx.Tx) error {
		recs, err := e.failRunsTx(ctx, tx, `id = $1 AND owner_instance = $2`, []any{runID, e.instance}, ErrTextInterrupted, ReasonInterrupted)
		if err != nil {
			return err
		}
		if len(recs) == 1 {
			rec = recs[0]
		}
		return nil
	})
	if err != nil {
		return rec, err
	}
	if rec.ID == "" {
		return e.Get(ctx, runID)
	}
	return rec, nil
}

// Get reads one run.
func (e *Engine) Get(ctx context.Context, runID string) (RunRecord, error) {
	rec, err := ScanRun(e.pool.QueryRow(ctx, `SELECT `+RunColumns+` FROM job_runs WHERE id = $1`, runID))
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, ErrRunNotFound
	}
	return rec, err
}
