// Package db holds owlmetry's schema: the embedded migrations, the shared partition
// routine, connection settings, and the error helpers every package that talks to
// Postgres uses.
package db

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DBTX is what queries need: a pool, a connection or a transaction. Functions that write
// take one so callers and tests can compose them in a single transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PoolOptions tune OpenPool.
type PoolOptions struct {
	// ApplicationName is set unless the URL names one. Defaults to "owlmetry".
	ApplicationName string
	// StatementTimeout overrides the URL's statement_timeout when non-nil; zero disables it.
	StatementTimeout *time.Duration
	// DefaultStatementTimeout applies when neither the URL nor StatementTimeout sets one.
	// Zero leaves the server default.
	DefaultStatementTimeout time.Duration
	// IdleInTxTimeout applies unless the URL sets idle_in_transaction_session_timeout.
	IdleInTxTimeout time.Duration
	// MaxConns caps the pool. Defaults to pgxpool's default.
	MaxConns int32
	// MinConns keeps connections open.
	MinConns int32
}

// BadURLError is a database URL that does not parse.
type BadURLError struct{ Err error }

func (e *BadURLError) Error() string { return "invalid database URL: " + redactErr(e.Err) }
func (e *BadURLError) Unwrap() error { return e.Err }

// ParseConfig parses a Postgres URL or key/value string into a pool configuration with
// owlmetry's session settings: TimeZone UTC on every connection (schema.md §1.2), an
// application name, and the timeouts of o. The URL's own values win over defaults.
func ParseConfig(dsn string, o PoolOptions) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, &BadURLError{Err: err}
	}
	params := cfg.ConnConfig.RuntimeParams
	params["timezone"] = "UTC"
	name := o.ApplicationName
	if name == "" {
		name = "owlmetry"
	}
	setIfAbsent(params, "application_name", name)
	if o.IdleInTxTimeout > 0 {
		setIfAbsent(params, "idle_in_transaction_session_timeout", ms(o.IdleInTxTimeout))
	}
	if o.StatementTimeout != nil {
		params["statement_timeout"] = ms(*o.StatementTimeout)
	} else if o.DefaultStatementTimeout > 0 {
		setIfAbsent(params, "statement_timeout", ms(o.DefaultStatementTimeout))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.MinConns > 0 {
		cfg.MinConns = o.MinConns
	}
	return cfg, nil
}

// OpenPool parses dsn (see ParseConfig), opens a pool and checks that the server answers.
// A connection failure is a *ConnectError naming host, port and database.
func OpenPool(ctx context.Context, dsn string, o PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := ParseConfig(dsn, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, &ConnectError{Host: cfg.ConnConfig.Host, Port: cfg.ConnConfig.Port, Database: cfg.ConnConfig.Database, Err: err}
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, &ConnectError{Host: cfg.ConnConfig.Host, Port: cfg.ConnConfig.Port, Database: cfg.ConnConfig.Database, Err: err}
	}
	return pool, nil
}

// ConnectError is a database that could not be reached or refused the login.
type ConnectError struct {
	Host     string
	Port     uint16
	Database string
	Err      error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot connect to %s/%s: %s", e.Addr(), e.Database, connectCause(e.Err))
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Addr is host:port, or the socket directory and port for a unix socket.
func (e *ConnectError) Addr() string {
	return fmt.Sprintf("%s:%d", e.Host, e.Port)
}

// IsAuthFailure reports whether the server rejected the credentials (SQLSTATE 28000, 28P01).
func (e *ConnectError) IsAuthFailure() bool {
	code := SQLState(e.Err)
	return code == "28000" || code == "28P01"
}

func connectCause(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	msg := redactErr(err)
	switch {
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	case strings.Contains(msg, "no such host"):
		return "no such host"
	case strings.Contains(msg, "i/o timeout"), strings.Contains(msg, "timeout"):
		return "timed out"
	case strings.Contains(msg, "no such file or directory"):
		return "no server listening on that socket"
	}
	// pgconn wraps with "failed to connect to `user=… database=…`: <addr> (<host>): <cause>";
	// the last segment is the cause.
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// SQLState returns the SQLSTATE of a Postgres error, or "".
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// IsUniqueViolation reports whether err is SQLSTATE 23505 on the named constraint or
// index ("" matches any).
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return false
	}
	return constraint == "" || pgErr.ConstraintName == constraint
}

// ActiveRunIndex is the unique index that enforces the overlap rule (engine.md §5.2).
const ActiveRunIndex = "job_runs_active_key_idx"

// Redact returns a database URL with its password replaced by "xxxxx". It is the only
// way a database URL is printed.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		// A key/value string: hide password=… whatever follows.
		fields := strings.Fields(dsn)
		for i, f := range fields {
			if strings.HasPrefix(strings.ToLower(f), "password=") {
				fields[i] = "password=xxxxx"
			}
		}
		return strings.Join(fields, " ")
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func redactErr(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	// pgx puts the parsed config into some messages; never print a password.
	if i := strings.Index(msg, "password="); i >= 0 {
		j := strings.IndexAny(msg[i:], " `'")
		if j < 0 {
			j = len(msg) - i
		}
		msg = msg[:i] + "password=xxxxx" + msg[i+j:]
	}
	return msg
}

func setIfAbsent(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%d", d.Milliseconds()) }
