package engine

import (
	"context"
	"errors"
	"time"
)

// Start brings a server engine up (engine.md §12.1 steps 5–8, 10): the control session
// with the node lock and same-node recovery, the instance row, the schedules, the
// listener, heartbeats and reaper, River's workers, and the start-up db_pruning run.
// Migrations and partitions are the caller's (steps 3–4).
func (e *Engine) Start(ctx context.Context) error {
	if e.cfg.Local {
		return errors.New("a local engine cannot be started as a server")
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("engine already started")
	}
	e.started = true
	e.mu.Unlock()

	conn, err := e.connectControl(ctx)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.ctrlConn = conn
	haveLock := e.nodeLock
	e.mu.Unlock()
	if haveLock {
		if err := e.recoverSameNode(ctx); err != nil {
			conn.Close(ctx)
			return err
		}
	} else {
		e.log.Warn("another live process uses this node id; same-node recovery skipped", "node_id", e.nodeID)
	}
	if err := e.registerInstance(ctx); err != nil {
		conn.Close(ctx)
		return err
	}
	if err := e.UpsertSchedules(ctx); err != nil {
		conn.Close(ctx)
		return err
	}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.bgCancel = cancel
	e.goBackground(func() { e.listen(bg, conn) })
	e.goBackground(func() { e.heartbeatLoop(bg) })
	e.goBackground(func() { e.reaperLoop(bg) })

	if e.cfg.Workers > 0 {
		if err := e.river.Start(bg); err != nil {
			cancel()
			e.bg.Wait()
			return err
		}
	}
	e.mu.Lock()
	e.ready = true
	e.mu.Unlock()
	e.startupPruning(ctx)
	return nil
}

func (e *Engine) goBackground(f func()) {
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		f()
	}()
}

// Stop shuts a server engine down gracefully (engine.md §12.3): no new work is fetched,
// running handlers get the shutdown timeout — their contexts are cancelled with stop
// reason Shutdown shortly before it ends — and any run still owned at the end is failed
// with "Server restarted during execution". Pending runs stay queued for other replicas.
// Cancelling ctx (a second signal) performs the final sweep at once.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if !e.started || e.stopping {
		e.mu.Unlock()
		return nil
	}
	e.stopping = true
	e.mu.Unlock()

	timeout := e.cfg.ShutdownTimeout
	soft := max(timeout-5*time.Second, timeout/2)
	start := time.Now()
	riverDone := make(chan struct{})
	if e.cfg.Workers > 0 {
		go func() {
			defer close(riverDone)
			sctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
			defer cancel()
			if err := e.river.Stop(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				e.log.Warn("river stop", "error", err)
			}
		}()
	} else {
		close(riverDone)
	}

	e.waitIdle(ctx, soft)
	if len(e.ownedIDs()) > 0 && ctx.Err() == nil {
		e.mu.Lock()
		for _, a := range e.active {
			a.stop(StopShutdown)
		}
		e.mu.Unlock()
		e.waitIdle(ctx, timeout-time.Since(start))
	}
	if len(e.ownedIDs()) > 0 {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		recs, err := e.sweepOwned(sctx, ErrTextRestarted, ReasonShutdown)
		cancel()
		if err != nil {
			e.log.Error("shutdown sweep failed", "error", err)
		} else if len(recs) > 0 {
			e.log.Warn("shutdown sweep failed runs still running", "runs", len(recs))
		}
	}
	select {
	case <-riverDone:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	return e.close()
}

// waitIdle waits until this process owns no run, d passes, or ctx ends.
func (e *Engine) waitIdle(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for len(e.ownedIDs()) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// close releases everything: the instance row, the background loops, the control
// session (and so the node lock) and the control pool.
func (e *Engine) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !e.cfg.Local {
		e.ctrl.Exec(ctx, `DELETE FROM owlmetry_instances WHERE instance_id = $1`, e.instance) //nolint:errcheck // maintenance deletes silent rows anyway
	}
	if e.bgCancel != nil {
		e.bgCancel()
	}
	e.bg.Wait()
	e.mu.Lock()
	conn := e.ctrlConn
	e.ctrlConn = nil
	e.ready = false
	e.mu.Unlock()
	if conn != nil {
		conn.Close(ctx)
	}
	e.ctrl.Close()
	return nil
}

// Close releases a CLI engine (or one that was never started).
func (e *Engine) Close() error {
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if started && !e.cfg.Local {
		return e.Stop(context.Background())
	}
	return e.close()
}
