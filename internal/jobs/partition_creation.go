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

// partitionsEnsured is the progress total of a run: three parents × three months.
const partitionsEnsured = int64(3 * (db.PartitionsAhead + 1))

// PartitionCreation keeps monthly partitions of the three event tables for the current
// and the next two UTC months, with their indexes (jobs.md §7). It runs the shared
// partition routine of owlmetry migrate and server start-up (db.EnsurePartitions) and
// adds what only the job does: the concurrent index builds of §7.3 step 4.
type PartitionCreation struct {
	deps *Deps
}

// Run executes one partition_creation run.
func (h *PartitionCreation) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	d := h.deps
	t0, err := dbNow(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	rep, err := db.EnsurePartitions(ctx, run.DB, t0, db.PartitionOptions{
		Progress: func(done, total int, msg string) { report(run, int64(done), int64(total), msg) },
		Stop: func() bool {
			return d.stopPoint(ctx, CheckpointPartitionCreate) != nil
		},
		RetryWait:        d.Clock.Sleep,
		LockTimeout:      d.Limits.DDLLockTimeout,
		StatementTimeout: d.Limits.DDLStatementTimeout,
	})
	res := partitionResult(rep, 0)
	if err != nil {
		if ctx.Err() != nil {
			return nil, engine.Stopped(res)
		}
		return nil, err
	}
	if rep.Stopped {
		return nil, engine.Stopped(res)
	}

	built, err := h.concurrentIndexes(ctx, run, rep.PendingIndexes)
	res = partitionResult(rep, built)
	if errors.Is(err, errStopped) {
		return nil, engine.Stopped(res)
	}
	if err != nil {
		return nil, err
	}
	h.recordAhead(ctx, run.DB, db.MonthStart(t0))
	return res, nil
}

func partitionResult(rep db.PartitionReport, concurrent int) engine.Result {
	created := append([]string{}, rep.Created...)
	indexes := rep.IndexesCreated + concurrent
	res := engine.Result{
		"created":         created,
		"indexes_created": indexes,
		"_silent":         len(created) == 0 && indexes == 0 && len(rep.Mismatched) == 0,
	}
	for _, p := range db.EventParents {
		res[p] = rep.Parents[p]
	}
	if len(rep.Mismatched) > 0 {
		res["partitions_mismatched"] = append([]string{}, rep.Mismatched...)
	}
	return res
}

// concurrentIndexes is §7.3 step 4: every attached events child lacking its issue-scan
// index gets it, built CONCURRENTLY so that writers are never blocked; an invalid
// leftover of an interrupted build is dropped and rebuilt. The indexes the routine left
// pending on children that hold rows are built the same way. A concurrent build runs
// without a statement timeout — on a large month it can take longer than the DDL bound,
// and it blocks nobody — but with the DDL lock timeout and its retries.
func (h *PartitionCreation) concurrentIndexes(ctx context.Context, run *engine.Run, pending []db.PartitionIndex) (int, error) {
	d := h.deps
	var hasEvents bool
	if err := run.DB.QueryRow(ctx, `SELECT COALESCE((SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('events')), false)`).Scan(&hasEvents); err != nil {
		return 0, stopped(ctx, err)
	}
	todo := append([]db.PartitionIndex{}, pending...)
	seen := map[string]bool{}
	for _, ix := range pending {
		seen[ix.Name] = true
	}
	if hasEvents {
		children, err := attachedChildren(ctx, run.DB, "events")
		if err != nil {
			return 0, stopped(ctx, err)
		}
		for _, ch := range children {
			for _, ix := range db.ChildIndexes("events", ch.Name) {
				if ix.Name == ch.Name+"_err_recv_idx" && !seen[ix.Name] {
					todo = append(todo, ix)
					seen[ix.Name] = true
				}
			}
		}
	}
	built := 0
	for _, ix := range todo {
		if err := d.stopPoint(ctx, CheckpointPartitionIndex); err != nil {
			return built, err
		}
		ok, err := h.buildIndex(ctx, run.DB, ix)
		if err != nil {
			return built, stopped(ctx, fmt.Errorf("build index %s: %w", ix.Name, err))
		}
		if ok {
			built++
			report(run, partitionsEnsured, partitionsEnsured, "built index "+ix.Name)
		}
	}
	return built, nil
}

// buildIndex builds one index concurrently unless a valid one exists. It reports whether
// it built one.
func (h *PartitionCreation) buildIndex(ctx context.Context, pool *pgxpool.Pool, ix db.PartitionIndex) (bool, error) {
	d := h.deps
	var valid *bool
	err := pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)`,
		pgx.Identifier{ix.Name}.Sanitize()).Scan(&valid)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, err
	}
	if valid != nil && *valid {
		return false, nil
	}
	if valid != nil {
		// An interrupted concurrent build leaves an invalid index that IF NOT EXISTS
		// would keep forever.
		drop := `DROP INDEX CONCURRENTLY IF EXISTS ` + pgx.Identifier{ix.Name}.Sanitize()
		if err := d.withDDLRetry(ctx, "drop invalid index "+ix.Name, func() error {
			return d.execOutsideTx(ctx, pool, ix.Table, drop, d.Limits.DDLLockTimeout, d.Limits.DDLStatementTimeout)
		}); err != nil {
			return false, err
		}
	}
	err = d.withDDLRetry(ctx, "create index "+ix.Name, func() error {
		return d.execOutsideTx(ctx, pool, ix.Table, ix.CreateSQL(true), d.Limits.DDLLockTimeout, 0)
	})
	return err == nil, err
}

// recordAhead sets the partitions-ahead gauge: how many whole months after the current
// one each parent's children cover without a gap (schema.md §10.2).
func (h *PartitionCreation) recordAhead(ctx context.Context, q db.DBTX, m0 time.Time) {
	if h.deps.Metrics == nil {
		return
	}
	for _, parent := range db.EventParents {
		children, err := db.Children(ctx, q, parent)
		if err != nil {
			return
		}
		h.deps.Metrics.PartitionsAhead.WithLabelValues(parent).Set(float64(monthsAhead(children, m0)))
	}
}

// monthsAhead counts the whole months after the one starting at m0 that children cover
// contiguously from m0 on.
func monthsAhead(children []db.Child, m0 time.Time) int {
	cursor := m0
	for moved := true; moved; {
		moved = false
		for _, ch := range children {
			if !ch.From.After(cursor) && ch.To.After(cursor) {
				cursor, moved = ch.To, true
			}
		}
	}
	n := 0
	for !m0.AddDate(0, n+2, 0).After(cursor) {
		n++
	}
	return n
}
