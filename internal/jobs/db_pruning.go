package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
)

// Row fallback caps of jobs.md §5.3 step 4.
const (
	pruneRowsPerRun = 100_000
	pruneRowsPerDay = 1_000_000
	pruneBatch      = 1000
)

// DBPruning keeps the database under its size limit by removing the oldest monthly event
// partitions of all three tables, never the current or a future month, with a capped
// row-level fallback on the current month (jobs.md §5).
type DBPruning struct {
	deps *Deps
}

// pruneResult accumulates the result of jobs.md §5.7.
type pruneResult struct {
	before, after, max int64
	dropped            []string
	deletedRows        int64
	vacuumed           string
	vacuumErr          string
}

func (r *pruneResult) result() engine.Result {
	res := engine.Result{
		"dropped_partitions": r.dropped,
		"deleted_rows":       r.deletedRows,
		"current_size_gb":    gigabytes(r.after),
		"size_bytes_before":  r.before,
		"size_bytes_after":   r.after,
		"max_size_bytes":     r.max,
		"still_over_limit":   r.after > r.max,
		"_silent":            len(r.dropped) == 0 && r.deletedRows == 0 && r.after <= r.max,
	}
	if r.vacuumed != "" {
		res["vacuumed"] = r.vacuumed
	}
	if r.vacuumErr != "" {
		res["vacuum_error"] = r.vacuumErr
	}
	return res
}

// Run executes one db_pruning run. The limit is params.max_size_bytes; a run without it
// (started by hand) uses MAX_DATABASE_SIZE_GB of this process, and completes as skipped
// when neither is set.
func (h *DBPruning) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	d := h.deps
	log := d.log(run)
	limit, ok := run.ParamInt("max_size_bytes")
	if !ok || limit <= 0 {
		limit = d.Config.MaxDatabaseSizeBytes()
	}
	if limit <= 0 {
		return engine.Result{"skipped": true, "reason": "database size limit is not configured", "_silent": false}, nil
	}
	t0, err := dbNow(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	size, err := databaseSize(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	res := &pruneResult{before: size, after: size, max: limit, dropped: []string{}}
	if size <= limit {
		return res.result(), nil
	}

	m0 := db.MonthStart(t0)
	parts, err := listEventPartitions(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if res.after <= limit {
			break
		}
		if !p.From.Before(m0) {
			continue // the current and future months are never dropped
		}
		if err := d.stopPoint(ctx, CheckpointPruningPartition); err != nil {
			return nil, engine.Stopped(res.result())
		}
		over := res.after
		_, err := d.removePartition(ctx, run.DB, p, "db_pruning", p.To)
		var lockErr *LockTimeoutError
		switch {
		case errors.Is(err, errStopped):
			return nil, engine.Stopped(res.result())
		case errors.As(err, &lockErr):
			log.Warn("partition skipped after lock timeouts", "partition", p.Name, "error", err)
			continue
		case errors.Is(err, errPartitionGone):
			continue
		case err != nil:
			return nil, fmt.Errorf("remove %s: %w", p.Name, err)
		}
		res.dropped = append(res.dropped, p.Name)
		if res.after, err = databaseSize(ctx, run.DB); err != nil {
			return nil, err
		}
		report(run, int64(len(res.dropped)), 0, fmt.Sprintf("database %s over limit %s · dropped %s", formatGB(over), formatGB(limit), p.Name))
	}

	if res.after > limit {
		if err := h.fallback(ctx, run, res, t0, m0); err != nil {
			if errors.Is(err, errStopped) {
				if size, serr := databaseSize(context.WithoutCancel(ctx), run.DB); serr == nil {
					res.after = size
				}
				return nil, engine.Stopped(res.result())
			}
			return nil, err
		}
		if res.after, err = databaseSize(ctx, run.DB); err != nil {
			return nil, err
		}
	}
	return res.result(), nil
}

// fallback deletes the oldest rows of the largest current-month child, within the
// per-run and per-UTC-day caps, then vacuums it so the space becomes reusable (jobs.md
// §5.3 step 4). The database does not shrink from row deletes, which is why the caps
// exist.
func (h *DBPruning) fallback(ctx context.Context, run *engine.Run, res *pruneResult, t0, m0 time.Time) error {
	d := h.deps
	log := d.log(run)
	var (
		target string
		parent string
		best   int64 = -1
	)
	for _, p := range db.EventParents {
		name := db.PartitionName(p, m0)
		var size *int64
		if err := run.DB.QueryRow(ctx, `
			SELECT pg_total_relation_size(c.oid)
			  FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
			 WHERE c.oid = to_regclass($1) AND i.inhparent = to_regclass($2)`,
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{p}.Sanitize()).Scan(&size); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return stopped(ctx, fmt.Errorf("measure %s: %w", name, err))
		}
		if size != nil && *size > best {
			target, parent, best = name, p, *size
		}
	}
	if target == "" {
		log.Warn("no current-month partition for the row fallback")
		return nil
	}
	dayStart := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, time.UTC)
	var today int64
	if err := run.DB.QueryRow(ctx, `SELECT COALESCE(sum(deleted_count), 0)::bigint FROM event_deletions
		WHERE reason = 'db_pruning' AND executed_at >= $1`, dayStart).Scan(&today); err != nil {
		return stopped(ctx, fmt.Errorf("read today's pruned rows: %w", err))
	}
	budget := min(int64(pruneRowsPerRun), pruneRowsPerDay-today)
	if budget <= 0 {
		log.Info("row fallback skipped: daily cap reached", "deleted_today", today)
		return nil
	}
	ident := pgx.Identifier{target}.Sanitize()
	var boundary *time.Time
	err := pgx.BeginFunc(ctx, run.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, millis(d.Limits.DDLStatementTimeout)); err != nil {
			return err
		}
		// The one full scan of a live partition this job allows: where the budget ends.
		return tx.QueryRow(ctx, `SELECT max("timestamp") FROM (SELECT "timestamp" FROM `+ident+` ORDER BY "timestamp" LIMIT $1) AS oldest`, budget).Scan(&boundary)
	})
	if err != nil {
		return stopped(ctx, fmt.Errorf("find the oldest rows of %s: %w", target, err))
	}
	if boundary == nil {
		return nil // empty
	}
	audit := newAudit(nil, parent, "db_pruning", *boundary)
	runner := newBatchRunner(d, run.DB, CheckpointPruningBatch)
	size := &batchSize{n: pruneBatch, min: pruneBatch / 2, max: pruneBatch}
	deleteSQL := `DELETE FROM ` + ident + ` WHERE ctid = ANY(ARRAY(SELECT ctid FROM ` + ident + ` WHERE "timestamp" <= $1 LIMIT $2))`
	err = runner.loop(ctx, parent, target, false, size, func(ctx context.Context, tx pgx.Tx, n int) (int64, func(), error) {
		want := min(int64(n), budget-res.deletedRows)
		if want <= 0 {
			return 0, nil, nil
		}
		tag, err := tx.Exec(ctx, deleteSQL, *boundary, want)
		if err != nil {
			return 0, nil, err
		}
		count := tag.RowsAffected()
		applied, err := audit.add(ctx, tx, count)
		if err != nil {
			return 0, nil, err
		}
		return count, func() {
			applied()
			res.deletedRows += count
			report(run, int64(len(res.dropped)), 0, fmt.Sprintf("database %s over limit %s · deleted %s rows of %s",
				formatGB(res.after), formatGB(res.max), formatCount(res.deletedRows), target))
		}, nil
	})
	if err != nil {
		return err
	}
	if err := d.stopPoint(ctx, checkpointNone); err != nil {
		return err // no VACUUM after a cancellation
	}
	if res.deletedRows == 0 {
		return nil
	}
	if err := vacuum(ctx, run.DB, ident); err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		log.Warn("vacuum failed", "partition", target, "error", err)
		res.vacuumErr = err.Error()
		return nil
	}
	res.vacuumed = target
	return nil
}

func vacuum(ctx context.Context, pool *pgxpool.Pool, ident string) error {
	_, err := pool.Exec(ctx, `VACUUM (ANALYZE) `+ident)
	return err
}

func databaseSize(ctx context.Context, q db.DBTX) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		return 0, fmt.Errorf("measure database size: %w", err)
	}
	return n, nil
}
