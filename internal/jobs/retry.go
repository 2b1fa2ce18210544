package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/db"
)

// txRetryWaits are the backoffs before the retries of a transaction that met a
// serialization failure or a deadlock (jobs.md §3.4.5).
var txRetryWaits = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}

// ddlRetryWaits are the waits before the retries of a DDL statement that met its lock
// timeout (jobs.md §3.4.3).
var ddlRetryWaits = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

// inTx runs fn in a transaction on pool, retrying the whole transaction up to three
// times after a serialization failure (40001) or a deadlock (40P01). fn may run more than
// once, so it must leave state outside the transaction alone until inTx returns nil.
func (d *Deps) inTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, pool, fn)
		code := db.SQLState(err)
		if (code == "40001" || code == "40P01") && attempt < len(txRetryWaits) && ctx.Err() == nil {
			if serr := d.Clock.Sleep(ctx, txRetryWaits[attempt]); serr != nil {
				return serr
			}
			continue
		}
		return err
	}
}

// LockTimeoutError is DDL that still met its lock timeout after the retries of
// jobs.md §3.4.3. retention_cleanup and db_pruning skip the partition for the run;
// partition_creation fails.
type LockTimeoutError struct {
	// What is the operation, e.g. "detach events_2025_01".
	What string
	Err  error
}

func (e *LockTimeoutError) Error() string {
	return fmt.Sprintf("%s: lock not obtained within the lock timeout after %d retries: %v", e.What, len(ddlRetryWaits), e.Err)
}

func (e *LockTimeoutError) Unwrap() error { return e.Err }

// withDDLRetry runs fn, retrying it after 1, 2 and 4 s when it meets a lock timeout
// (55P03). After the last retry it returns a *LockTimeoutError.
func (d *Deps) withDDLRetry(ctx context.Context, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if db.SQLState(err) != "55P03" || ctx.Err() != nil {
			return err
		}
		if attempt == len(ddlRetryWaits) {
			return &LockTimeoutError{What: what, Err: err}
		}
		d.log(nil).Info("lock timeout, retrying", "operation", what, "wait", ddlRetryWaits[attempt])
		if serr := d.Clock.Sleep(ctx, ddlRetryWaits[attempt]); serr != nil {
			return serr
		}
	}
}

// ddlTimeouts sets the DDL timeouts for the rest of the current transaction.
func (d *Deps) ddlTimeouts(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
		millis(d.Limits.DDLLockTimeout), millis(d.Limits.DDLStatementTimeout))
	return err
}

// execOutsideTx runs one statement that cannot run inside a transaction block (DETACH
// … CONCURRENTLY, CREATE INDEX CONCURRENTLY, VACUUM) on a connection of its own, with
// the given lock and statement timeouts for its session (0 disables one), and restores
// the connection's settings afterwards. One attempt; callers add retries.
func (d *Deps) execOutsideTx(ctx context.Context, pool *pgxpool.Pool, table, sql string, lockTimeout, stmtTimeout time.Duration) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)`,
		millis(lockTimeout), millis(stmtTimeout)); err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(rctx, `RESET lock_timeout; RESET statement_timeout`); err != nil {
			// A connection whose settings cannot be restored must not go back to the pool.
			conn.Conn().Close(rctx) //nolint:errcheck // closing is the fallback
		}
	}()
	start := d.Clock.Now()
	_, err = conn.Exec(ctx, sql)
	d.observe(StatementStat{Kind: "ddl", Table: table, Duration: d.Clock.Now().Sub(start), TimedOut: db.SQLState(err) == "57014"})
	return err
}

// dbNow reads T0, the database clock, in UTC.
func dbNow(ctx context.Context, q db.DBTX) (time.Time, error) {
	var t time.Time
	if err := q.QueryRow(ctx, `SELECT now()`).Scan(&t); err != nil {
		return t, fmt.Errorf("read database clock: %w", err)
	}
	return t.UTC(), nil
}

// millis formats a duration as the millisecond count Postgres timeout settings take.
func millis(d time.Duration) string { return fmt.Sprintf("%d", d.Milliseconds()) }
