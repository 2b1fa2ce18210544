package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// maintenanceWorker runs engine_maintenance jobs (engine.md §15.2).
type maintenanceWorker struct {
	river.WorkerDefaults[maintenanceArgs]
	e *Engine
}

func (w *maintenanceWorker) Timeout(*river.Job[maintenanceArgs]) time.Duration {
	return 4 * time.Minute
}

func (w *maintenanceWorker) Work(ctx context.Context, _ *river.Job[maintenanceArgs]) error {
	return w.e.Maintain(ctx)
}

// Maintain runs one maintenance pass: the lost-queue check (§11.5), deletion of instance
// rows silent for a day (§11.8), then up to 10 job_runs retention batches (§15.1).
func (e *Engine) Maintain(ctx context.Context) error {
	var errs []error
	if _, err := e.FailLostQueued(ctx, 5*time.Minute); err != nil {
		errs = append(errs, fmt.Errorf("lost-queue check: %w", err))
	}
	if _, err := e.pool.Exec(ctx, `DELETE FROM owlmetry_instances WHERE heartbeat_at < now() - interval '1 day'`); err != nil {
		errs = append(errs, fmt.Errorf("instance cleanup: %w", err))
	}
	if e.cfg.JobRunsRetentionDays > 0 {
		for range 10 {
			n, err := e.deleteRetentionBatch(ctx, time.Duration(e.cfg.JobRunsRetentionDays)*24*time.Hour, nil, 1, 1000)
			if err != nil {
				errs = append(errs, fmt.Errorf("job_runs retention: %w", err))
				break
			}
			if n < 1000 {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// FailLostQueued fails (T9) pending queue runs older than minAge whose River job no
// longer exists or is already finalised (§11.5), checked through River's job API.
func (e *Engine) FailLostQueued(ctx context.Context, minAge time.Duration) ([]RunRecord, error) {
	rows, err := e.pool.Query(ctx, `SELECT `+RunColumns+` FROM job_runs
		WHERE status = 'pending' AND executor = 'queue' AND created_at < now() - make_interval(secs => $1)
		ORDER BY created_at LIMIT 500`, minAge.Seconds())
	if err != nil {
		return nil, err
	}
	candidates, err := CollectRuns(rows)
	if err != nil {
		return nil, err
	}
	var failed []RunRecord
	for _, rec := range candidates {
		lost := rec.RiverJobID == nil
		if !lost {
			job, err := e.river.JobGet(ctx, *rec.RiverJobID)
			switch {
			case isRiverNotFound(err):
				lost = true
			case err != nil:
				return failed, err
			default:
				switch job.State {
				case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
					lost = true
				}
			}
		}
		if !lost {
			continue
		}
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			r, err := ScanRun(tx.QueryRow(ctx, `UPDATE job_runs SET status = 'failed', error = $2, completed_at = now()
				WHERE id = $1 AND status = 'pending' RETURNING `+RunColumns, rec.ID, ErrTextLostFromQueue))
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := e.notifyFinished(ctx, tx, r); err != nil {
				return err
			}
			failed = append(failed, r)
			e.metrics.RunsRecovered.WithLabelValues(ReasonQueueLost).Inc()
			e.metrics.RunsFinished.WithLabelValues(r.JobType, "failed").Inc()
			e.runLogger(r).Warn("run reaped", "reason", ReasonQueueLost)
			return nil
		})
		if err != nil {
			return failed, err
		}
	}
	return failed, nil
}

// PruneOptions select the terminal runs Prune deletes (cli.md §10.8).
type PruneOptions struct {
	// OlderThan compares completed_at with now() − OlderThan.
	OlderThan time.Duration
	// Types limits the job types; empty means all.
	Types []string
	// KeepLast keeps the newest n terminal runs per (job_type, project_id). Defaults to 1.
	KeepLast int
	// BatchSize is rows per transaction. Defaults to 1000.
	BatchSize int
	// DryRun only counts.
	DryRun bool
}

// Prune deletes terminal runs older than the cutoff in batches, each its own
// transaction, and returns the counts per job type. Active runs are never deleted, and
// the newest KeepLast terminal runs of each (job_type, project_id) are always kept.
func (e *Engine) Prune(ctx context.Context, o PruneOptions) (map[string]int64, error) {
	if o.KeepLast <= 0 {
		o.KeepLast = 1
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	counts := map[string]int64{}
	if o.DryRun {
		rows, err := e.pool.Query(ctx, `SELECT job_type, count(*) FROM (`+pruneCandidates+`) c GROUP BY job_type`,
			o.OlderThan.Seconds(), o.KeepLast, typesArg(o.Types), 1<<30)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var t string
			var n int64
			if err := rows.Scan(&t, &n); err != nil {
				return nil, err
			}
			counts[t] = n
		}
		return counts, rows.Err()
	}
	for {
		rows, err := e.pool.Query(ctx, `DELETE FROM job_runs WHERE id IN (SELECT id FROM (`+pruneCandidates+`) c)
			RETURNING job_type`, o.OlderThan.Seconds(), o.KeepLast, typesArg(o.Types), o.BatchSize)
		if err != nil {
			return counts, err
		}
		n := 0
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return counts, err
			}
			counts[t]++
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return counts, err
		}
		if n < o.BatchSize {
			return counts, nil
		}
	}
}

// pruneCandidates selects terminal runs older than $1 seconds, outside the newest $2 per
// (job_type, project_id), of the types $3 (NULL = all), at most $4 of them.
const pruneCandidates = `
	SELECT id, job_type FROM (
	    SELECT id, job_type, completed_at,
	           row_number() OVER (PARTITION BY job_type, project_id ORDER BY completed_at DESC, id DESC) AS rn
	      FROM job_runs
	     WHERE status IN ('completed', 'failed', 'cancelled')
	       AND ($3::text[] IS NULL OR job_type = ANY($3))
	) ranked
	WHERE rn > $2 AND completed_at < now() - make_interval(secs => $1)
	ORDER BY completed_at
	LIMIT $4`

func typesArg(types []string) any {
	if len(types) == 0 {
		return nil
	}
	return types
}

// deleteRetentionBatch deletes one batch of the automatic retention (§15.1).
func (e *Engine) deleteRetentionBatch(ctx context.Context, age time.Duration, types []string, keep, batch int) (int, error) {
	tag, err := e.pool.Exec(ctx, `DELETE FROM job_runs WHERE id IN (SELECT id FROM (`+pruneCandidates+`) c)`,
		age.Seconds(), keep, typesArg(types), batch)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
