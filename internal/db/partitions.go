package db

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventParents are the three monthly-partitioned event tables (schema.md §10).
var EventParents = []string{"events", "metric_events", "funnel_events"}

// PartitionsAhead is how many months after the current UTC month must exist.
const PartitionsAhead = 2

// PartitionNamePattern matches the only child names owlmetry ever creates, alters or
// drops (schema.md §10.2).
var PartitionNamePattern = regexp.MustCompile(`^(events|metric_events|funnel_events)_([0-9]{4})_(0[1-9]|1[0-2])$`)

type partitionIndex struct {
	suffix  string
	columns string
	where   string
}

// partitionIndexes are the per-child indexes of schema.md §10.3.
var partitionIndexes = map[string][]partitionIndex{
	"events": {
		{"app_ts_idx", `(app_id, "timestamp")`, ""},
		{"app_level_ts_idx", `(app_id, level, "timestamp")`, ""},
		{"app_user_ts_idx", `(app_id, user_id, "timestamp")`, ""},
		{"app_screen_name_ts_idx", `(app_id, screen_name, "timestamp")`, ""},
		{"client_eid_idx", `(app_id, client_event_id)`, ""},
		{"app_session_ts_idx", `(app_id, session_id, "timestamp")`, ""},
		{"app_dev_ts_idx", `(app_id, is_dev, "timestamp")`, ""},
		{"err_recv_idx", `(received_at, id)`, `level = 'error'`},
	},
	"metric_events": {
		{"app_slug_ts_idx", `(app_id, metric_slug, "timestamp")`, ""},
		{"app_slug_phase_ts_idx", `(app_id, metric_slug, phase, "timestamp")`, ""},
		{"app_tracking_id_idx", `(app_id, tracking_id)`, ""},
		{"app_client_eid_idx", `(app_id, client_event_id)`, ""},
	},
	"funnel_events": {
		{"app_step_ts_idx", `(app_id, step_name, "timestamp")`, ""},
		{"app_user_ts_idx", `(app_id, user_id, "timestamp")`, ""},
		{"app_step_user_ts_idx", `(app_id, step_name, user_id, "timestamp")`, ""},
		{"app_client_eid_idx", `(app_id, client_event_id)`, ""},
	},
}

// PartitionIndex is one per-child index of schema.md §10.3, named <child>_<suffix>.
// It is exported so that partition_creation can build the indexes this routine must not
// build itself (on children that already hold rows) without blocking writes.
type PartitionIndex struct {
	// Table is the child the index belongs to.
	Table string
	// Name is the index name, <child>_<suffix>.
	Name string

	columns string
	where   string
}

// ChildIndexes returns the per-child indexes a child of parent carries (schema.md §10.3).
// An unknown parent has none.
func ChildIndexes(parent, child string) []PartitionIndex {
	var out []PartitionIndex
	for _, ix := range partitionIndexes[parent] {
		out = append(out, PartitionIndex{Table: child, Name: child + "_" + ix.suffix, columns: ix.columns, where: ix.where})
	}
	return out
}

// CreateSQL is the statement that builds the index if it does not exist. A concurrent
// build does not block writes to the child but cannot run inside a transaction block.
func (ix PartitionIndex) CreateSQL(concurrently bool) string {
	verb := "CREATE INDEX"
	if concurrently {
		verb += " CONCURRENTLY"
	}
	sql := fmt.Sprintf(`%s IF NOT EXISTS %s ON %s %s`, verb,
		pgx.Identifier{ix.Name}.Sanitize(), pgx.Identifier{ix.Table}.Sanitize(), ix.columns)
	if ix.where != "" {
		sql += " WHERE " + ix.where
	}
	return sql
}

// MonthStart returns 00:00 UTC on the first day of t's UTC month.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// PartitionName is the child of parent that holds the UTC month starting at month.
func PartitionName(parent string, month time.Time) string {
	return fmt.Sprintf("%s_%04d_%02d", parent, month.Year(), int(month.Month()))
}

// PartitionSpan parses a child name into its UTC month span [from, to).
func PartitionSpan(name string) (parent string, from, to time.Time, ok bool) {
	m := PartitionNamePattern.FindStringSubmatch(name)
	if m == nil {
		return "", time.Time{}, time.Time{}, false
	}
	var y, mo int
	fmt.Sscanf(m[2], "%d", &y)  //nolint:errcheck // the pattern guarantees digits
	fmt.Sscanf(m[3], "%d", &mo) //nolint:errcheck
	from = time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
	return m[1], from, from.AddDate(0, 1, 0), true
}

// utcLiteral writes an instant as an explicit UTC timestamptz literal, so bounds never
// depend on the session time zone.
func utcLiteral(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05") + "+00"
}

// Child is an attached partition with its actual bounds.
type Child struct {
	Name string
	From time.Time
	To   time.Time
}

// Children lists the attached range children of parent with their bounds, read back as
// instants whatever time zone the bounds were written in. Children with MINVALUE or
// MAXVALUE bounds are left out.
func Children(ctx context.Context, q DBTX, parent string) ([]Child, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname, b[1]::timestamptz, b[2]::timestamptz
		  FROM pg_inherits i
		  JOIN pg_class c ON c.oid = i.inhrelid
		  CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
		        'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS b
		 WHERE i.inhparent = to_regclass($1)
		 ORDER BY 2`, parent)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Child, error) {
		var c Child
		err := r.Scan(&c.Name, &c.From, &c.To)
		c.From, c.To = c.From.UTC(), c.To.UTC()
		return c, err
	})
}

// PartitionOptions hook the routine into a job run.
type PartitionOptions struct {
	// Progress is called after each ensured partition with (done, total, name).
	Progress func(done, total int, name string)
	// Stop is checked between partitions; true ends the routine early with what it did.
	Stop func() bool
	// RetryWait sleeps between DDL lock-timeout retries. Defaults to a context-aware sleep.
	RetryWait func(ctx context.Context, d time.Duration) error
	// LockTimeout bounds the lock wait of each DDL statement. Defaults to 2s (jobs.md
	// §3.4.3).
	LockTimeout time.Duration
	// StatementTimeout bounds each DDL statement. Defaults to 60s (jobs.md §3.4.3).
	StatementTimeout time.Duration
}

// PartitionReport is what EnsurePartitions found and did (jobs.md §7.7).
type PartitionReport struct {
	// Parents maps each parent to whether it exists and is partitioned.
	Parents map[string]bool
	// Created lists the children created by this call.
	Created []string
	// IndexesCreated counts the per-child indexes created.
	IndexesCreated int
	// Mismatched lists children whose bounds differ from their UTC month, new children
	// whose bounds were moved to abut such a neighbour, and names taken by a table that is
	// not a child of the parent (left alone; the coverage check then names the month).
	Mismatched []string
	// PendingIndexes are per-child indexes missing on existing children that already hold
	// rows. Building them here would block writes to a live partition for the whole build,
	// so they are left to the concurrent pass of partition_creation (jobs.md §7.3 step 4,
	// §7.11).
	PendingIndexes []PartitionIndex
	// Stopped is true when Stop ended the routine early.
	Stopped bool
}

// Beginner is a DBTX that can open a transaction (a pool, a connection or a transaction).
type Beginner interface {
	DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// EnsurePartitions makes sure every partitioned event parent has children for the UTC
// month of t0 and the next PartitionsAhead months, each with its indexes (jobs.md §7.3
// steps 1–3 and 5). Bounds are explicit UTC literals; a child that another tool created
// with other bounds is left alone and reported, and a new child that would overlap such a
// neighbour abuts it instead. A new child is created together with its indexes in one
// transaction, so no interruption leaves a child without them; missing indexes of an
// existing child are built only while it is empty, otherwise they are reported in
// PendingIndexes for a concurrent build. Running it twice is a no-op. The coverage check
// fails with "missing partition <name>" when a month is still not covered.
func EnsurePartitions(ctx context.Context, c Beginner, t0 time.Time, o PartitionOptions) (PartitionReport, error) {
	if o.RetryWait == nil {
		o.RetryWait = sleepCtx
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 60 * time.Second
	}
	report := PartitionReport{Parents: map[string]bool{}}
	m0 := MonthStart(t0)
	total := len(EventParents) * (PartitionsAhead + 1)
	done := 0
	for _, parent := range EventParents {
		var kind string
		err := c.QueryRow(ctx, `SELECT COALESCE((SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)), '')`, parent).Scan(&kind)
		if err != nil {
			return report, err
		}
		if kind != "p" {
			report.Parents[parent] = false
			done += PartitionsAhead + 1
			continue
		}
		report.Parents[parent] = true
		for i := 0; i <= PartitionsAhead; i++ {
			if o.Stop != nil && o.Stop() {
				report.Stopped = true
				return report, nil
			}
			month := m0.AddDate(0, i, 0)
			if err := ensureChild(ctx, c, parent, month, &report, o); err != nil {
				return report, err
			}
			done++
			if o.Progress != nil {
				o.Progress(done, total, "ensured "+PartitionName(parent, month))
			}
		}
	}
	for _, parent := range EventParents {
		if !report.Parents[parent] {
			continue
		}
		if err := checkCoverage(ctx, c, parent, m0, m0.AddDate(0, PartitionsAhead+1, 0)); err != nil {
			return report, err
		}
	}
	return report, nil
}

func ensureChild(ctx context.Context, c Beginner, parent string, month time.Time, report *PartitionReport, o PartitionOptions) error {
	name := PartitionName(parent, month)
	// Two passes at most: when another process creates the child between our look and
	// our CREATE, the second pass treats it as existing.
	for pass := 0; pass < 2; pass++ {
		children, err := Children(ctx, c, parent)
		if err != nil {
			return err
		}
		for _, ch := range children {
			if ch.Name != name {
				continue
			}
			if !ch.From.Equal(month) || !ch.To.Equal(month.AddDate(0, 1, 0)) {
				report.Mismatched = appendOnce(report.Mismatched, name)
			}
			return ensureExistingIndexes(ctx, c, parent, name, report, o)
		}
		var taken bool
		if err := c.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{name}.Sanitize()).Scan(&taken); err != nil {
			return err
		}
		if taken {
			// A table of that name that is not a child of parent (a detached leftover,
			// or someone else's table) is never touched; coverage fails if it matters.
			report.Mismatched = appendOnce(report.Mismatched, name)
			return nil
		}
		from, to, adjusted := abutBounds(children, month)
		if adjusted {
			report.Mismatched = appendOnce(report.Mismatched, name)
		}
		if !from.Before(to) {
			return nil // neighbours already cover the month
		}
		created, err := createChild(ctx, c, parent, name, from, to, o)
		if err != nil {
			return fmt.Errorf("create partition %s: %w", name, err)
		}
		if created {
			report.Created = append(report.Created, name)
			report.IndexesCreated += len(partitionIndexes[parent])
			return nil
		}
	}
	return nil
}

// abutBounds returns the UTC span of month, moved to abut any existing child that
// overlaps it. Children made in another time zone can overlap our UTC month by up to
// 14 h; abutting their actual bounds keeps the routine from failing on them.
func abutBounds(children []Child, month time.Time) (from, to time.Time, adjusted bool) {
	from, to = month, month.AddDate(0, 1, 0)
	for _, ch := range children {
		if ch.From.Before(to) && ch.To.After(from) {
			adjusted = true
			if !ch.From.After(from) {
				from = ch.To
			} else {
				to = ch.From
			}
		}
	}
	return from, to, adjusted
}

// createChild creates the child and all its indexes in one transaction, so a child never
// exists without its indexes, whatever interrupts the routine (jobs.md §7.6). The parent
// is locked first — CREATE TABLE … PARTITION OF needs that lock anyway — which makes the
// existence check exact: it reports false when another process created the child first.
func createChild(ctx context.Context, c Beginner, parent, name string, from, to time.Time, o PartitionOptions) (bool, error) {
	var created bool
	err := runDDL(ctx, c, o, func(tx pgx.Tx) error {
		created = false
		if _, err := tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{parent}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{name}.Sanitize()).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{parent}.Sanitize(), utcLiteral(from), utcLiteral(to))
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return err
		}
		for _, ix := range ChildIndexes(parent, name) {
			if _, err := tx.Exec(ctx, ix.CreateSQL(false)); err != nil {
				return fmt.Errorf("create index %s: %w", ix.Name, err)
			}
		}
		created = true
		return nil
	})
	if SQLState(err) == "42P07" {
		return false, nil
	}
	return created, err
}

// ensureExistingIndexes builds the missing indexes of an existing child. An empty child
// gets them at once; a child that holds rows is left to the concurrent pass, because a
// plain CREATE INDEX would block writes to it for the whole build.
func ensureExistingIndexes(ctx context.Context, c Beginner, parent, name string, report *PartitionReport, o PartitionOptions) error {
	var hasRows *bool
	for _, ix := range ChildIndexes(parent, name) {
		var has bool
		if err := c.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{ix.Name}.Sanitize()).Scan(&has); err != nil {
			return err
		}
		if has {
			continue
		}
		if hasRows == nil {
			var v bool
			if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{name}.Sanitize()+`)`).Scan(&v); err != nil {
				return err
			}
			hasRows = &v
		}
		if *hasRows {
			report.PendingIndexes = append(report.PendingIndexes, ix)
			continue
		}
		var created bool
		err := runDDL(ctx, c, o, func(tx pgx.Tx) error {
			created = false
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{ix.Name}.Sanitize()).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return nil
			}
			if _, err := tx.Exec(ctx, ix.CreateSQL(false)); err != nil {
				return err
			}
			created = true
			return nil
		})
		if SQLState(err) == "42P07" {
			continue
		}
		if err != nil {
			return fmt.Errorf("create index %s: %w", ix.Name, err)
		}
		if created {
			report.IndexesCreated++
		}
	}
	return nil
}

// ddlRetryWaits are the waits before the retries of a DDL transaction that met a lock
// timeout (jobs.md §3.4.3).
var ddlRetryWaits = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

// runDDL runs fn in its own transaction under the DDL timeouts of o (jobs.md §3.4.3),
// retrying the whole transaction after a lock timeout (55P03) after 1, 2 and 4 s.
func runDDL(ctx context.Context, c Beginner, o PartitionOptions, fn func(tx pgx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
				ms(o.LockTimeout), ms(o.StatementTimeout)); err != nil {
				return err
			}
			return fn(tx)
		})
		if SQLState(err) == "55P03" && attempt < len(ddlRetryWaits) {
			if werr := o.RetryWait(ctx, ddlRetryWaits[attempt]); werr != nil {
				return werr
			}
			continue
		}
		return err
	}
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func checkCoverage(ctx context.Context, q DBTX, parent string, from, to time.Time) error {
	children, err := Children(ctx, q, parent)
	if err != nil {
		return err
	}
	sort.Slice(children, func(i, j int) bool { return children[i].From.Before(children[j].From) })
	cursor := from
	for _, ch := range children {
		if ch.To.After(cursor) && !ch.From.After(cursor) {
			cursor = ch.To
		}
		if !cursor.Before(to) {
			return nil
		}
	}
	return fmt.Errorf("missing partition %s", PartitionName(parent, MonthStart(cursor)))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
