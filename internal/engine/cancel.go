package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// ErrRunNotFound is a run id with no job_runs row.
var ErrRunNotFound = errors.New("job run not found")

// NotCancellableError is a cancel of a run that already ended.
type NotCancellableError struct{ Status apitype.Status }

func (e *NotCancellableError) Error() string {
	return fmt.Sprintf("Cannot cancel a job with status %q", string(e.Status))
}

// CancelOutcome says what a cancel did.
type CancelOutcome string

// Cancel outcomes (engine.md §9.1).
const (
	CancelDone      CancelOutcome = "cancelled" // a pending run is now cancelled
	CancelRequested CancelOutcome = "requested" // a running run was asked to stop
)

// Cancel requests cancellation of a run from any process (engine.md §9.1).
func (e *Engine) Cancel(ctx context.Context, runID, actor string) (RunRecord, CancelOutcome, error) {
	var (
		rec RunRecord
		out CancelOutcome
	)
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		rec, out, err = e.CancelTx(ctx, tx, runID, actor)
		return err
	})
	if err == nil && out == CancelRequested {
		// A run this process executes learns of it at once, without the round trip
		// through LISTEN.
		e.deliverCancel(rec.ID)
	}
	return rec, out, err
}

// CancelTx is Cancel inside the caller's transaction.
func (e *Engine) CancelTx(ctx context.Context, tx pgx.Tx, runID, actor string) (RunRecord, CancelOutcome, error) {
	if len(actor) > 100 {
		actor = actor[:100]
	}
	rec, err := ScanRun(tx.QueryRow(ctx, `SELECT `+RunColumns+` FROM job_runs WHERE id = $1 FOR UPDATE`, runID))
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, "", ErrRunNotFound
	}
	if err != nil {
		return rec, "", err
	}
	switch rec.Status {
	case apitype.StatusPending:
		rec, err = ScanRun(tx.QueryRow(ctx, `
			UPDATE job_runs SET status = 'cancelled', completed_at = now(), cancel_requested_at = now(), cancel_requested_by = $2
			 WHERE id = $1 AND status = 'pending' RETURNING `+RunColumns, runID, actor))
		if err != nil {
			return rec, "", err
		}
		if err := e.cancelRiverJob(ctx, tx, rec); err != nil {
			return rec, "", err
		}
		if err := e.notifyFinished(ctx, tx, rec); err != nil {
			return rec, "", err
		}
		e.metrics.CancelRequests.WithLabelValues(rec.JobType, "pending").Inc()
		e.metrics.RunsFinished.WithLabelValues(rec.JobType, "cancelled").Inc()
		e.runLogger(rec).Info("cancel requested", "actor", actor, "previous_status", "pending")
		return rec, CancelDone, nil
	case apitype.StatusRunning:
		if rec.CancelRequestedAt != nil {
			return rec, CancelRequested, nil
		}
		rec, err = ScanRun(tx.QueryRow(ctx, `
			UPDATE job_runs SET cancel_requested_at = now(), cancel_requested_by = $2
			 WHERE id = $1 RETURNING `+RunColumns, runID, actor))
		if err != nil {
			return rec, "", err
		}
		if err := e.cancelRiverJob(ctx, tx, rec); err != nil {
			return rec, "", err
		}
		e.metrics.CancelRequests.WithLabelValues(rec.JobType, "running").Inc()
		e.runLogger(rec).Info("cancel requested", "actor", actor, "previous_status", "running")
		return rec, CancelRequested, nil
	default:
		return rec, "", &NotCancellableError{Status: rec.Status}
	}
}

// cancelRiverJob cancels the run's River job in the same transaction; River then
// finalises its own row and, for a running job, cancels the worker's context remotely.
func (e *Engine) cancelRiverJob(ctx context.Context, tx pgx.Tx, rec RunRecord) error {
	if rec.Executor != ExecutorQueue || rec.RiverJobID == nil {
		return nil
	}
	if _, err := e.river.JobCancelTx(ctx, tx, *rec.RiverJobID); err != nil && !isRiverNotFound(err) {
		return fmt.Errorf("cancel river job %d: %w", *rec.RiverJobID, err)
	}
	return nil
}
