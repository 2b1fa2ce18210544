package jobs

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/db"
)

// Batch sizes and the timings that move them (jobs.md §3.4.2).
const (
	batchStart = 5000
	batchMin   = 500
	batchMax   = 50000
	batchSlow  = 500 * time.Millisecond
	batchFast  = 50 * time.Millisecond
	// maxMinTimeouts consecutive statement timeouts at the smallest size fail the run.
	maxMinTimeouts = 3
)

// batchSize is the adaptive n of one table: halved after a slow batch or a statement
// timeout, doubled after a fast one, kept within [min, max].
type batchSize struct {
	n, min, max int
	minTimeouts int
}

func newBatchSize() *batchSize { return &batchSize{n: batchStart, min: batchMin, max: batchMax} }

// succeeded adapts n to a batch that took d.
func (b *batchSize) succeeded(d time.Duration) {
	b.minTimeouts = 0
	switch {
	case d > batchSlow:
		b.n = max(b.n/2, b.min)
	case d < batchFast:
		b.n = min(b.n*2, b.max)
	}
}

// timedOut halves n after a statement timeout and reports whether the batch may be
// retried: the third consecutive timeout at the smallest size gives up.
func (b *batchSize) timedOut() bool {
	if b.n <= b.min {
		b.minTimeouts++
		return b.minTimeouts < maxMinTimeouts
	}
	b.n = max(b.n/2, b.min)
	return true
}

// batchRunner runs the batches of one handler run. Sizes adapt per key (the parent
// table for event rows), and carry over from one partition or project to the next.
type batchRunner struct {
	d     *Deps
	pool  *pgxpool.Pool
	cp    Checkpoint
	sizes map[string]*batchSize
}

func newBatchRunner(d *Deps, pool *pgxpool.Pool, cp Checkpoint) *batchRunner {
	return &batchRunner{d: d, pool: pool, cp: cp, sizes: map[string]*batchSize{}}
}

func (r *batchRunner) size(key string) *batchSize {
	s, ok := r.sizes[key]
	if !ok {
		s = newBatchSize()
		r.sizes[key] = s
	}
	return s
}

// batchFunc deletes at most n rows inside tx and returns how many it deleted and what to
// do once the transaction has committed (advance a keyset, count, update audit state).
type batchFunc func(ctx context.Context, tx pgx.Tx, n int) (deleted int64, committed func(), err error)

// loop runs batches until one deletes fewer rows than it was allowed to, checking for
// cancellation before each one. Each batch is its own transaction under the batch
// statement timeout; forceIndex forbids sequential and bitmap scans, so the rows are
// found through an index and a LIMIT stops the scan early. A statement timeout halves
// the size and retries; the third in a row at the smallest size fails.
func (r *batchRunner) loop(ctx context.Context, key, table string, forceIndex bool, size *batchSize, fn batchFunc) error {
	if size == nil {
		size = r.size(key)
	}
	settings := `SELECT set_config('statement_timeout', $1, true)`
	if forceIndex {
		settings = `SELECT set_config('statement_timeout', $1, true), set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`
	}
	for {
		if err := r.d.stopPoint(ctx, r.cp); err != nil {
			return err
		}
		n := size.n
		var (
			deleted   int64
			committed func()
		)
		start := r.d.Clock.Now()
		err := r.d.inTx(ctx, r.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, settings, millis(r.d.Limits.BatchStatementTimeout)); err != nil {
				return err
			}
			var err error
			deleted, committed, err = fn(ctx, tx, n)
			return err
		})
		elapsed := r.d.Clock.Now().Sub(start)
		timedOut := db.SQLState(err) == "57014" && ctx.Err() == nil
		stat := StatementStat{Kind: "delete_batch", Table: table, Limit: n, Duration: elapsed, TimedOut: timedOut}
		if err == nil {
			stat.Rows = deleted
		}
		r.d.observe(stat)
		if timedOut {
			if !size.timedOut() {
				return fmt.Errorf("delete from %s: %d consecutive statement timeouts with batches of %d rows: %w", table, maxMinTimeouts, size.min, err)
			}
			continue
		}
		if err != nil {
			if se := stopped(ctx, err); se == errStopped {
				return se
			}
			return fmt.Errorf("delete from %s: %w", table, err)
		}
		if committed != nil {
			committed()
		}
		size.succeeded(elapsed)
		if deleted < int64(n) {
			return nil
		}
	}
}

// eventTable is one event parent and the index its batches walk: app_id first, then
// keys, which end with "timestamp" (schema.md §10.3). Walking the index in key order
// from the last row deleted means a batch never rescans the dead entries of earlier
// batches.
type eventTable struct {
	name string
	keys []string
}

// eventTables are the three partitioned parents in the order the jobs visit them.
var eventTables = []eventTable{
	{name: "events", keys: []string{`"timestamp"`}},                       // <child>_app_ts_idx
	{name: "metric_events", keys: []string{"metric_slug", `"timestamp"`}}, // <child>_app_slug_ts_idx
	{name: "funnel_events", keys: []string{"step_name", `"timestamp"`}},   // <child>_app_step_ts_idx
}

// eventKey is the index position of the last row a batch deleted.
type eventKey struct {
	prefix string // metric_slug or step_name; unused for events
	ts     time.Time
}

// batchSQL deletes up to $3 rows of one app ($1) older than $2 from partition, in index
// order, starting at the key ($4[, $5]) when after is set. It returns the number deleted
// and the key of the last victim (NULLs when there was none).
func (t eventTable) batchSQL(partition string, after bool) string {
	p := pgx.Identifier{partition}.Sanitize()
	cols := strings.Join(t.keys, ", ")
	desc := strings.Join(t.keys, " DESC, ") + " DESC"
	lower := ""
	if after {
		if len(t.keys) == 1 {
			lower = fmt.Sprintf(" AND %s >= $4", t.keys[0])
		} else {
			lower = fmt.Sprintf(" AND (%s) >= ($4, $5)", cols)
		}
	}
	return fmt.Sprintf(`WITH victims AS MATERIALIZED (
		SELECT ctid, %[2]s FROM %[1]s
		 WHERE app_id = $1 AND "timestamp" < $2%[3]s
		 ORDER BY %[2]s
		 LIMIT $3
	), gone AS (
		DELETE FROM %[1]s WHERE ctid = ANY(ARRAY(SELECT ctid FROM victims)) RETURNING 1
	)
	SELECT (SELECT count(*) FROM gone), last.*
	  FROM (SELECT 1) AS one
	  LEFT JOIN (SELECT %[2]s FROM victims ORDER BY %[4]s LIMIT 1) AS last ON true`, p, cols, lower, desc)
}

// deleteEventRows deletes the rows of one app older than before (a time.Time, or
// infinity for all rows) from one partition of t, in batches, maintaining audit in each
// batch's transaction. onDeleted is called after each committed batch. A partition that
// disappears meanwhile ends the loop without an error.
func (r *batchRunner) deleteEventRows(ctx context.Context, t eventTable, partition, appID string, before any, audit *auditRow, onDeleted func(int64)) error {
	var key *eventKey
	err := r.loop(ctx, t.name, partition, true, nil, func(ctx context.Context, tx pgx.Tx, n int) (int64, func(), error) {
		args := []any{appID, before, n}
		if key != nil {
			if len(t.keys) == 2 {
				args = append(args, key.prefix)
			}
			args = append(args, key.ts)
		}
		var (
			count  int64
			prefix *string
			ts     *time.Time
		)
		row := tx.QueryRow(ctx, t.batchSQL(partition, key != nil), args...)
		var err error
		if len(t.keys) == 2 {
			err = row.Scan(&count, &prefix, &ts)
		} else {
			err = row.Scan(&count, &ts)
		}
		if err != nil {
			return 0, nil, err
		}
		applied, err := audit.add(ctx, tx, count)
		if err != nil {
			return 0, nil, err
		}
		next := key
		if ts != nil {
			next = &eventKey{ts: *ts}
			if prefix != nil {
				next.prefix = *prefix
			}
		}
		return count, func() {
			applied()
			key = next
			if onDeleted != nil {
				onDeleted(count)
			}
		}, nil
	})
	if db.SQLState(err) == "42P01" {
		// Another run (db_pruning, say) removed the partition meanwhile: its rows are gone.
		r.d.Logger.Info("partition removed while deleting from it", "partition", partition)
		return nil
	}
	return err
}

// deleteByID deletes the rows of table whose ids selectIDs returns, in batches through
// the primary key. selectIDs takes args and ends with LIMIT $<len(args)+1>.
func (r *batchRunner) deleteByID(ctx context.Context, table, selectIDs string, args []any, onDeleted func(int64)) error {
	sql := fmt.Sprintf(`DELETE FROM %s WHERE id = ANY(ARRAY(%s))`, pgx.Identifier{table}.Sanitize(), selectIDs)
	return r.loop(ctx, table, table, false, nil, func(ctx context.Context, tx pgx.Tx, n int) (int64, func(), error) {
		tag, err := tx.Exec(ctx, sql, append(append([]any{}, args...), n)...)
		if err != nil {
			return 0, nil, err
		}
		count := tag.RowsAffected()
		return count, func() {
			if onDeleted != nil {
				onDeleted(count)
			}
		}, nil
	})
}

// auditRow is one event_deletions row kept exact across batches (jobs.md §3.4.2 rule 5):
// the first batch that deletes rows inserts it, later batches add to its count, each in
// the batch's own transaction.
type auditRow struct {
	projectID *string
	table     string
	reason    string
	cutoff    time.Time

	id    string
	count int64
}

func newAudit(projectID *string, table, reason string, cutoff time.Time) *auditRow {
	return &auditRow{projectID: projectID, table: table, reason: reason, cutoff: cutoff}
}

// add records n more deleted rows inside tx. The returned function applies the new state
// once tx has committed; a rolled-back batch leaves the row as it was. deleted_count is
// an integer column: a count that would overflow it continues in a new row.
func (a *auditRow) add(ctx context.Context, tx pgx.Tx, n int64) (func(), error) {
	if n <= 0 {
		return func() {}, nil
	}
	if a.id != "" && a.count+n <= math.MaxInt32 {
		if _, err := tx.Exec(ctx, `UPDATE event_deletions SET deleted_count = deleted_count + $2 WHERE id = $1`, a.id, n); err != nil {
			return nil, fmt.Errorf("update event_deletions: %w", err)
		}
		return func() { a.count += n }, nil
	}
	var (
		id   string
		last int64
	)
	for rest := n; rest > 0; rest -= last {
		last = min(rest, math.MaxInt32)
		if err := tx.QueryRow(ctx, `INSERT INTO event_deletions (project_id, table_name, reason, cutoff_date, deleted_count)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, a.projectID, a.table, a.reason, a.cutoff, last).Scan(&id); err != nil {
			return nil, fmt.Errorf("insert event_deletions: %w", err)
		}
	}
	return func() { a.id, a.count = id, last }, nil
}
