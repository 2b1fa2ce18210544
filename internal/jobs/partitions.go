package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/db"
)

// eventPartition is a table named like a monthly child of an event parent (jobs.md
// §3.4.1): attached to that parent, or a leftover of an interrupted removal.
type eventPartition struct {
	Name   string
	Parent string
	// From and To are the UTC month span the name stands for. Actual bounds may differ
	// for children made in another time zone, which is why "entirely older than X" is
	// tested as To + 1 day ≤ X.
	From, To time.Time
	// Attached is true while the table is in pg_inherits under Parent, including a
	// detach that was started and not finished.
	Attached      bool
	DetachPending bool
}

// olderThan reports whether the partition lies entirely before x whatever the time
// zone its bounds were written in (jobs.md §3.4.1).
func (p eventPartition) olderThan(x time.Time) bool {
	return !p.To.Add(24 * time.Hour).After(x)
}

// parentRank orders the parents as the jobs visit them.
func parentRank(parent string) int {
	for i, p := range db.EventParents {
		if p == parent {
			return i
		}
	}
	return len(db.EventParents)
}

// listEventPartitions returns the attached monthly children of the three parents and
// the unattached tables whose names match the pattern, oldest month first, then by
// parent. A table attached to some other parent is never returned: other children are
// never touched.
func listEventPartitions(ctx context.Context, q db.DBTX) ([]eventPartition, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname::text, p.relname::text, COALESCE(i.inhdetachpending, false)
		  FROM pg_class c
		  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
		  LEFT JOIN pg_class p ON p.oid = i.inhparent
		 WHERE c.relkind = 'r'
		   AND pg_table_is_visible(c.oid)
		   AND c.relname ~ $1`, db.PartitionNamePattern.String())
	if err != nil {
		return nil, fmt.Errorf("list event partitions: %w", err)
	}
	var out []eventPartition
	for rows.Next() {
		var (
			name    string
			parent  *string
			pending bool
		)
		if err := rows.Scan(&name, &parent, &pending); err != nil {
			return nil, err
		}
		want, from, to, ok := db.PartitionSpan(name)
		if !ok || (parent != nil && *parent != want) {
			continue
		}
		out = append(out, eventPartition{Name: name, Parent: want, From: from, To: to, Attached: parent != nil, DetachPending: pending})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list event partitions: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].From.Equal(out[j].From) {
			return out[i].From.Before(out[j].From)
		}
		return parentRank(out[i].Parent) < parentRank(out[j].Parent)
	})
	return out, nil
}

// attachedChildren returns the attached monthly children of parent with their actual
// bounds, oldest first.
func attachedChildren(ctx context.Context, q db.DBTX, parent string) ([]db.Child, error) {
	all, err := db.Children(ctx, q, parent)
	if err != nil {
		return nil, fmt.Errorf("list children of %s: %w", parent, err)
	}
	var out []db.Child
	for _, c := range all {
		if p, _, _, ok := db.PartitionSpan(c.Name); ok && p == parent {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out, nil
}

// errPartitionGone is a partition that disappeared while it was being removed —
// another run removed it first. It is skipped without counting.
var errPartitionGone = errors.New("partition no longer exists")

// partitionState is where a monthly table stands at the moment of reading.
type partitionState struct {
	exists  bool
	parent  string // "" when not attached
	pending bool
}

func readPartitionState(ctx context.Context, q db.DBTX, name string) (partitionState, error) {
	var (
		st     partitionState
		parent *string
	)
	err := q.QueryRow(ctx, `
		SELECT true, p.relname::text, COALESCE(i.inhdetachpending, false)
		  FROM pg_class c
		  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
		  LEFT JOIN pg_class p ON p.oid = i.inhparent
		 WHERE c.oid = to_regclass($1)`, pgx.Identifier{name}.Sanitize()).Scan(&st.exists, &parent, &st.pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return partitionState{}, nil
	}
	if parent != nil {
		st.parent = *parent
	}
	return st, err
}

// finalizePending completes every detach of parent left pending by an interrupted
// removal. The detached tables become leftovers, which the removals of retention_cleanup
// and db_pruning drop once their month qualifies.
func (d *Deps) finalizePending(ctx context.Context, pool *pgxpool.Pool, parent string) error {
	rows, err := pool.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = to_regclass($1) AND i.inhdetachpending`, pgx.Identifier{parent}.Sanitize())
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("detach from %s refused, yet no partition is pending detach", parent)
	}
	for _, name := range names {
		sql := fmt.Sprintf(`ALTER TABLE %s DETACH PARTITION %s FINALIZE`, pgx.Identifier{parent}.Sanitize(), pgx.Identifier{name}.Sanitize())
		if err := d.execOutsideTx(ctx, pool, name, sql, d.Limits.DDLLockTimeout, d.Limits.DDLStatementTimeout); err != nil {
			return err
		}
	}
	return nil
}

// removePartition removes one partition with audit (jobs.md §3.4.3, §3.4.4): detach it
// concurrently (finishing a detach left pending by an interrupted run), then in one
// transaction count its rows per project, insert one event_deletions row per project
// (NULL for apps that no longer exist) with reason and cutoff, and drop it. The count
// runs on a table no writer can reach any more, so it blocks nobody. It returns the rows
// removed. Lock timeouts are retried per §3.4.3 and end as *LockTimeoutError; a
// partition removed meanwhile by someone else is errPartitionGone.
func (d *Deps) removePartition(ctx context.Context, pool *pgxpool.Pool, p eventPartition, reason string, cutoff time.Time) (int64, error) {
	ident := pgx.Identifier{p.Name}.Sanitize()
	parentIdent := pgx.Identifier{p.Parent}.Sanitize()
	err := d.withDDLRetry(ctx, "detach "+p.Name, func() error {
		for {
			st, err := readPartitionState(ctx, pool, p.Name)
			switch {
			case err != nil:
				return err
			case !st.exists:
				return errPartitionGone
			case st.parent == "":
				return nil
			case st.parent != p.Parent:
				return fmt.Errorf("%s is attached to %s, not %s", p.Name, st.parent, p.Parent)
			}
			sql := fmt.Sprintf(`ALTER TABLE %s DETACH PARTITION %s CONCURRENTLY`, parentIdent, ident)
			if st.pending {
				sql = fmt.Sprintf(`ALTER TABLE %s DETACH PARTITION %s FINALIZE`, parentIdent, ident)
			}
			err = d.execOutsideTx(ctx, pool, p.Name, sql, d.Limits.DDLLockTimeout, d.Limits.DDLStatementTimeout)
			if db.SQLState(err) == "55000" && !st.pending {
				// A parent allows one pending detach at a time: finish the one an
				// interrupted removal left, then try again.
				if ferr := d.finalizePending(ctx, pool, p.Parent); ferr != nil {
					return ferr
				}
				continue
			}
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		return 0, stopped(ctx, err)
	}

	var total int64
	err = d.withDDLRetry(ctx, "drop "+p.Name, func() error {
		return d.inTx(ctx, pool, func(tx pgx.Tx) error {
			total = 0
			if err := d.ddlTimeouts(ctx, tx); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `LOCK TABLE `+ident+` IN ACCESS EXCLUSIVE MODE`); err != nil {
				if db.SQLState(err) == "42P01" {
					return errPartitionGone
				}
				return err
			}
			var attached bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1))`, ident).Scan(&attached); err != nil {
				return err
			}
			if attached {
				return fmt.Errorf("%s was attached again while being removed", p.Name)
			}
			// The count may take a while on a large month; nobody waits for this table.
			if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', '0', true)`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `
				SELECT a.project_id, sum(c.n)::bigint
				  FROM (SELECT app_id, count(*) AS n FROM `+ident+` GROUP BY app_id) AS c
				  LEFT JOIN apps a ON a.id = c.app_id
				 GROUP BY a.project_id
				 ORDER BY a.project_id NULLS LAST`)
			if err != nil {
				return err
			}
			type projectCount struct {
				project *string
				n       int64
			}
			counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (projectCount, error) {
				var pc projectCount
				return pc, r.Scan(&pc.project, &pc.n)
			})
			if err != nil {
				return err
			}
			for _, pc := range counts {
				a := newAudit(pc.project, p.Parent, reason, cutoff)
				if _, err := a.add(ctx, tx, pc.n); err != nil {
					return err
				}
				total += pc.n
			}
			if err := d.ddlTimeouts(ctx, tx); err != nil {
				return err
			}
			start := d.Clock.Now()
			_, err = tx.Exec(ctx, `DROP TABLE `+ident)
			d.observe(StatementStat{Kind: "ddl", Table: p.Name, Duration: d.Clock.Now().Sub(start)})
			return err
		})
	})
	if err != nil {
		return 0, stopped(ctx, err)
	}
	return total, nil
}
