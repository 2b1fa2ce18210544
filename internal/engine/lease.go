package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/owlmetry/owlmetry/internal/build"
)

// Recovery reasons (engine.md §16.1 `run reaped`).
const (
	ReasonLeaseExpired = "lease_expired"
	ReasonNodeRestart  = "node_restart"
	ReasonShutdown     = "shutdown"
	ReasonOperator     = "operator"
	ReasonQueueLost    = "queue_lost"
	ReasonInterrupted  = "interrupted"
)

const reapBatch = 100

func isRiverNotFound(err error) bool { return errors.Is(err, rivertype.ErrNotFound) }

// failRunsTx fails (T8) up to reapBatch running runs matching where, with their
// notifications and River cancellations, in tx. Reapers skip rows another transaction
// holds (concurrent reapers share the work); the targeted failures — an operator's
// interrupt, a shutdown sweep, same-node recovery — wait for them instead, since a
// progress write holding the row for a moment must not make them miss it.
func (e *Engine) failRunsTx(ctx context.Context, tx pgx.Tx, where string, args []any, message, reason string) ([]RunRecord, error) {
	lock := "FOR UPDATE"
	if reason == ReasonLeaseExpired || reason == ReasonOperator {
		lock = "FOR UPDATE SKIP LOCKED"
	}
	args = append(args, message)
	msgArg := len(args)
	rows, err := tx.Query(ctx, `
		UPDATE job_runs SET status = 'failed', error = $`+itoa(msgArg)+`, completed_at = now()
		 WHERE id IN (SELECT id FROM job_runs WHERE status = 'running' AND (`+where+`)
		               ORDER BY heartbeat_at LIMIT `+itoa(reapBatch)+` `+lock+`)
		RETURNING `+RunColumns, args...)
	if err != nil {
		return nil, err
	}
	recs, err := CollectRuns(rows)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if err := e.notifyFinished(ctx, tx, rec); err != nil {
			return nil, err
		}
		if err := e.cancelRiverJob(ctx, tx, rec); err != nil {
			return nil, err
		}
		e.metrics.RunsRecovered.WithLabelValues(reason).Inc()
		e.metrics.RunsFinished.WithLabelValues(rec.JobType, "failed").Inc()
		e.runLogger(rec).Warn("run reaped", "reason", reason)
	}
	return recs, nil
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

// staleWhere is the lease-expiry predicate shared by the reaper, operator recovery and
// `system jobs list --stale` (engine.md §11.3, §11.6).
const staleWhere = `heartbeat_at < now() - make_interval(secs => $1)`

// reapPass fails every running run whose lease expired, in passes of 100 (§11.3). It
// never touches live owners' runs or pending runs.
func (e *Engine) reapPass(ctx context.Context, reason string) ([]RunRecord, error) {
	var all []RunRecord
	for {
		var recs []RunRecord
		err := pgx.BeginFunc(ctx, e.ctrl, func(tx pgx.Tx) error {
			var err error
			recs, err = e.failRunsTx(ctx, tx, staleWhere, []any{e.cfg.StaleAfter.Seconds()}, ErrTextRestarted, reason)
			return err
		})
		if err != nil {
			return all, err
		}
		all = append(all, recs...)
		if len(recs) < reapBatch {
			return all, nil
		}
	}
}

// Recover runs one reaper pass now with the engine's rule and message (§11.6). With
// dryRun it only lists the runs the pass would fail.
func (e *Engine) Recover(ctx context.Context, dryRun bool) ([]RunRecord, error) {
	if dryRun {
		rows, err := e.pool.Query(ctx, `SELECT `+RunColumns+` FROM job_runs WHERE status = 'running' AND `+staleWhere+` ORDER BY heartbeat_at`,
			e.cfg.StaleAfter.Seconds())
		if err != nil {
			return nil, err
		}
		return CollectRuns(rows)
	}
	return e.reapPass(ctx, ReasonOperator)
}

// StaleRunsWhere returns the SQL predicate and argument of "lease expired" for listings.
func (e *Engine) StaleRunsWhere(argIndex int) (string, any) {
	return `status = 'running' AND heartbeat_at < now() - make_interval(secs => $` + itoa(argIndex) + `)`, e.cfg.StaleAfter.Seconds()
}

// recoverSameNode fails the running runs of this node id left by an earlier process
// (§11.4). It runs only while this process holds the node lock.
func (e *Engine) recoverSameNode(ctx context.Context) error {
	for {
		var recs []RunRecord
		err := pgx.BeginFunc(ctx, e.ctrl, func(tx pgx.Tx) error {
			var err error
			recs, err = e.failRunsTx(ctx, tx, `owner_node = $1 AND owner_instance <> $2`, []any{e.nodeID, e.instance}, ErrTextRestarted, ReasonNodeRestart)
			return err
		})
		if err != nil || len(recs) < reapBatch {
			return err
		}
	}
}

// sweepOwned fails every run still owned by this instance (shutdown, §12.3 step 4).
func (e *Engine) sweepOwned(ctx context.Context, message, reason string) ([]RunRecord, error) {
	var recs []RunRecord
	err := pgx.BeginFunc(ctx, e.ctrl, func(tx pgx.Tx) error {
		var err error
		recs, err = e.failRunsTx(ctx, tx, `owner_instance = $1`, []any{e.instance}, message, reason)
		return err
	})
	return recs, err
}

// heartbeat renews the leases of every owned run in one statement (§11.2), delivers
// cancel requests it finds, and stops runs whose lease is gone.
func (e *Engine) heartbeat(ctx context.Context) error {
	ids := e.ownedIDs()
	if !e.cfg.Local {
		if _, err := e.ctrl.Exec(ctx, `UPDATE owlmetry_instances SET heartbeat_at = now() WHERE instance_id = $1`, e.instance); err != nil {
			return err
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := e.ctrl.Query(ctx, `
		UPDATE job_runs SET heartbeat_at = now()
		 WHERE id = ANY($1) AND status = 'running' AND owner_instance = $2
		RETURNING id, cancel_requested_at IS NOT NULL`, ids, e.instance)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for rows.Next() {
		var id string
		var cancelled bool
		if err := rows.Scan(&id, &cancelled); err != nil {
			rows.Close()
			return err
		}
		seen[id] = true
		if cancelled {
			e.deliverCancel(id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if !seen[id] {
			if a := e.lookupActive(id); a != nil && !a.progress.isClosed() {
				a.loseLease()
			}
		}
	}
	return nil
}

func (e *Engine) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.heartbeat(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("heartbeat failed", "error", err)
			}
		}
	}
}

func (e *Engine) reaperLoop(ctx context.Context) {
	for {
		if _, err := e.reapPass(ctx, ReasonLeaseExpired); err != nil && ctx.Err() == nil {
			e.log.Warn("reaper pass failed", "error", err)
		}
		jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(e.cfg.ReapInterval))
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.cfg.ReapInterval + jitter):
		}
	}
}

// registerInstance inserts this process's owlmetry_instances row (§11.8).
func (e *Engine) registerInstance(ctx context.Context) error {
	_, err := e.ctrl.Exec(ctx, `INSERT INTO owlmetry_instances (instance_id, node_id, version, workers, scheduler)
		VALUES ($1, $2, $3, $4, $5)`, e.instance, e.nodeID, truncate(build.Current().Version, 50), e.cfg.Workers, e.cfg.Scheduler && e.cfg.Workers > 0)
	return err
}

// LiveWorkers reports whether some server with workers renewed its instance row within
// StaleAfter; `system jobs run` warns when none does.
func (e *Engine) LiveWorkers(ctx context.Context) (bool, error) {
	var ok bool
	err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM owlmetry_instances
		WHERE workers > 0 AND heartbeat_at > now() - make_interval(secs => $1))`, e.cfg.StaleAfter.Seconds()).Scan(&ok)
	return ok, err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
