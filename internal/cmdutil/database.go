package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/pflag"

	"github.com/owlmetry/owlmetry/internal/db"
)

// DatabaseOptions is the shared database flag set (cli.md §3): --database-url on every
// DB command, --statement-timeout on `system …` and `migrate`.
type DatabaseOptions struct {
	// URL is --database-url.
	URL string
	// StatementTimeout is --statement-timeout; see StatementTimeoutSet.
	StatementTimeout time.Duration
	// DefaultStatementTimeout is used when neither the flag nor the URL sets one.
	// Defaults to 10s for `system`; `migrate` uses 0 (none).
	DefaultStatementTimeout time.Duration

	withTimeout bool
	fs          *pflag.FlagSet
}

// DatabaseHelp is the precedence paragraph every DB command's long help ends with.
const DatabaseHelp = `The database is --database-url, else OWLMETRY_DATABASE_URL, else DATABASE_URL,
else the libpq variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE)
when PGHOST or PGDATABASE is set. Session settings: --statement-timeout beats a
statement_timeout in the URL, which beats the default of 10s.`

// BuildFlags adds the flags. withTimeout adds --statement-timeout.
func (o *DatabaseOptions) BuildFlags(fs *pflag.FlagSet, withTimeout bool) {
	o.fs = fs
	o.withTimeout = withTimeout
	fs.StringVar(&o.URL, "database-url", "", "Postgres URL or key/value connection string")
	if withTimeout {
		fs.DurationVar(&o.StatementTimeout, "statement-timeout", o.DefaultStatementTimeout, "abort any statement running longer than this (0 disables)")
	}
}

// Validate checks flag values before anything connects.
func (o *DatabaseOptions) Validate() error {
	if o.withTimeout && o.StatementTimeout < 0 {
		return FlagErrorf("--statement-timeout must not be negative")
	}
	return nil
}

var pgEnv = map[string]string{
	"PGHOST": "host", "PGPORT": "port", "PGDATABASE": "dbname", "PGUSER": "user",
	"PGPASSWORD": "password", "PGSSLMODE": "sslmode", "PGAPPNAME": "application_name",
	"PGCONNECT_TIMEOUT": "connect_timeout", "PGSSLROOTCERT": "sslrootcert",
	"PGSSLCERT": "sslcert", "PGSSLKEY": "sslkey", "PGTARGETSESSIONATTRS": "target_session_attrs",
}

// ResolveDatabaseURL applies the precedence of cli.md §2.7: flag, OWLMETRY_DATABASE_URL,
// DATABASE_URL, then the PG* variables when PGHOST or PGDATABASE is set.
func ResolveDatabaseURL(flagValue string, lookupEnv func(string) (string, bool)) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	for _, k := range []string{"OWLMETRY_DATABASE_URL", "DATABASE_URL"} {
		if v, ok := lookupEnv(k); ok && v != "" {
			return v, nil
		}
	}
	_, hasHost := lookupEnv("PGHOST")
	_, hasDB := lookupEnv("PGDATABASE")
	if hasHost || hasDB {
		var parts []string
		keys := make([]string, 0, len(pgEnv))
		for k := range pgEnv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v, ok := lookupEnv(k); ok && v != "" {
				parts = append(parts, pgEnv[k]+"="+quoteKV(v))
			}
		}
		return strings.Join(parts, " "), nil
	}
	return "", &CredentialsError{Message: "no database", Hint: "pass --database-url or set DATABASE_URL"}
}

func quoteKV(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// PoolOptions turns the flags into db.PoolOptions for the server-owner session (cli.md
// §10.1): application_name owlmetry-cli, idle-in-transaction 11 s, at most 4 connections.
func (o *DatabaseOptions) PoolOptions() db.PoolOptions {
	po := db.PoolOptions{
		ApplicationName:         "owlmetry-cli",
		DefaultStatementTimeout: o.DefaultStatementTimeout,
		IdleInTxTimeout:         11 * time.Second,
		MaxConns:                4,
	}
	if o.withTimeout && o.fs != nil && o.fs.Changed("statement-timeout") {
		d := o.StatementTimeout
		po.StatementTimeout = &d
	}
	return po
}

// Open resolves the URL and opens a pool with the server-owner session settings. A URL
// that does not parse is a usage error.
func (o *DatabaseOptions) Open(ctx context.Context, lookupEnv func(string) (string, bool)) (*pgxpool.Pool, error) {
	url, err := ResolveDatabaseURL(o.URL, lookupEnv)
	if err != nil {
		return nil, err
	}
	pool, err := db.OpenPool(ctx, url, o.PoolOptions())
	var bad *db.BadURLError
	if errors.As(err, &bad) {
		return nil, FlagErrorf("%s", bad.Error())
	}
	return pool, err
}

// SchemaError is a database whose schema does not match this binary.
type SchemaError struct {
	Message string
}

func (e *SchemaError) Error() string { return e.Message }

// CheckSchema compares the database with the binary (cli.md §10.1). Read commands accept
// a newer schema with a warning; write commands refuse it.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool, write bool, warn func(string)) error {
	sv, err := db.CheckSchema(ctx, pool)
	if err != nil {
		return err
	}
	dbName := pool.Config().ConnConfig.Database
	switch sv.State {
	case db.SchemaNotMigrated:
		return WithHint(&SchemaError{Message: fmt.Sprintf("database %s has no owlmetry schema", dbName)}, "run owlmetry migrate")
	case db.SchemaBehind:
		return WithHint(&SchemaError{Message: fmt.Sprintf("database schema is behind this owlmetry (owlmetry %d < %d, river %d < %d)",
			sv.Current, sv.Latest, sv.RiverCurrent, sv.RiverLatest)}, "run owlmetry migrate")
	case db.SchemaAhead:
		if write {
			return WithHint(&SchemaError{Message: fmt.Sprintf("database schema is newer than this owlmetry (%d > %d)", sv.Current, sv.Latest)},
				"upgrade owlmetry to the version the server runs")
		}
		if warn != nil {
			warn(fmt.Sprintf("database schema is newer than this owlmetry (%d > %d)", sv.Current, sv.Latest))
		}
	}
	return nil
}
