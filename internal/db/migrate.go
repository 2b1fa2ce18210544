package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one embedded owlmetry migration.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Label is the migration's file name without the extension, e.g. "0001_initial_schema".
func (m Migration) Label() string { return fmt.Sprintf("%04d_%s", m.Version, m.Name) }

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations returns the embedded migrations in version order. The set is checked once:
// versions start at 1 and have no gaps, so a misnamed file fails every test at once.
func Migrations() []Migration { return loadedMigrations }

var loadedMigrations = mustLoadMigrations()

func mustLoadMigrations() []Migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	var out []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			panic(fmt.Sprintf("db: migration file %q is not named NNNN_snake_case.sql", e.Name()))
		}
		v, _ := strconv.Atoi(m[1])
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			panic(fmt.Sprintf("db: migration versions must be gapless from 1; found %04d at position %d", m.Version, i+1))
		}
	}
	return out
}

// LatestVersion is the highest owlmetry migration this binary embeds.
func LatestVersion() int { return loadedMigrations[len(loadedMigrations)-1].Version }

// RiverLatestVersion is the highest River migration this binary embeds.
func RiverLatestVersion() int {
	all := riverMigrator(nil).AllVersions()
	return all[len(all)-1].Version
}

func riverMigrator(pool *pgxpool.Pool) *rivermigrate.Migrator[pgx.Tx] {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		panic(err) // only for an invalid config, which is a programmer mistake
	}
	return m
}

// ErrMigrationLocked means another process held the migration lock for the whole lock wait.
var ErrMigrationLocked = errors.New("another migration is running")

// ErrSchemaAhead means the database has migrations this binary does not know.
var ErrSchemaAhead = errors.New("database schema is newer than this owlmetry")

// Applied is one migration applied by Migrate.
type Applied struct {
	// Set is "river" or "owlmetry".
	Set      string
	Version  int
	Name     string
	Duration time.Duration
}

// Label is how the migration is printed: "0001_initial_schema" or "river_006_bulk_unique".
func (a Applied) Label() string {
	if a.Set == "river" {
		return fmt.Sprintf("river_%03d_%s", a.Version, a.Name)
	}
	return fmt.Sprintf("%04d_%s", a.Version, a.Name)
}

// MigrateOptions tune Migrate.
type MigrateOptions struct {
	// LockWait bounds the wait for the migration lock. Defaults to 60s.
	LockWait time.Duration
	// Now is the instant whose UTC month the partition routine starts from. Defaults to
	// the database clock.
	Now time.Time
}

// MigrateReport is what Migrate did.
type MigrateReport struct {
	Applied    []Applied
	Version    int
	Partitions PartitionReport
}

// migrateLockKey is hashed by Postgres: pg_advisory_lock(hashtext('owlmetry-migrate')).
const migrateLockKey = "owlmetry-migrate"

// Migrate brings the database up to date (engine.md §18.6): under an advisory lock it
// applies River's migrations, then owlmetry's, then ensures the event partitions of the
// current and the next two UTC months. Concurrent callers serialise on the lock; later
// ones find nothing to do.
func Migrate(ctx context.Context, pool *pgxpool.Pool, o MigrateOptions) (MigrateReport, error) {
	if o.LockWait <= 0 {
		o.LockWait = 60 * time.Second
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return MigrateReport{}, err
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, "SELECT set_config('lock_timeout', $1, false)", ms(o.LockWait)); err != nil {
		return MigrateReport{}, err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", migrateLockKey); err != nil {
		if SQLState(err) == "55P03" {
			return MigrateReport{}, ErrMigrationLocked
		}
		return MigrateReport{}, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// Unlock on a fresh context: a cancelled caller must not leave the lock held on a
		// pooled connection.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock(hashtext($1))", migrateLockKey); err != nil {
			conn.Conn().Close(uctx) //nolint:errcheck // a closed connection drops the lock too
		}
	}()
	if _, err := conn.Exec(ctx, "SELECT set_config('lock_timeout', '0', false)"); err != nil {
		return MigrateReport{}, err
	}

	var report MigrateReport
	res, err := riverMigrator(pool).Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return report, fmt.Errorf("river migrations: %w", err)
	}
	for _, v := range res.Versions {
		report.Applied = append(report.Applied, Applied{Set: "river", Version: v.Version, Name: v.Name, Duration: v.Duration})
	}

	if err := ensureMigrationsTable(ctx, conn.Conn()); err != nil {
		return report, err
	}
	applied, err := appliedVersions(ctx, conn.Conn())
	if err != nil {
		return report, err
	}
	if len(applied) > 0 && maxKey(applied) > LatestVersion() {
		return report, fmt.Errorf("%w (database %d > binary %d)", ErrSchemaAhead, maxKey(applied), LatestVersion())
	}
	for _, m := range Migrations() {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		start := time.Now()
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			d := time.Since(start)
			_, err := tx.Exec(ctx, `INSERT INTO owlmetry_schema_migrations (version, name, duration_ms) VALUES ($1, $2, $3)`,
				m.Version, m.Name, d.Milliseconds())
			return err
		})
		if err != nil {
			return report, fmt.Errorf("migration %s: %w", m.Label(), err)
		}
		report.Applied = append(report.Applied, Applied{Set: "owlmetry", Version: m.Version, Name: m.Name, Duration: time.Since(start)})
	}
	report.Version = LatestVersion()

	now := o.Now
	if now.IsZero() {
		if err := conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
			return report, err
		}
	}
	report.Partitions, err = EnsurePartitions(ctx, conn.Conn(), now, PartitionOptions{})
	if err != nil {
		return report, fmt.Errorf("ensure event partitions: %w", err)
	}
	return report, nil
}

func ensureMigrationsTable(ctx context.Context, c DBTX) error {
	_, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS owlmetry_schema_migrations (
		version     integer PRIMARY KEY,
		name        varchar(100) NOT NULL,
		applied_at  timestamptz NOT NULL DEFAULT now(),
		duration_ms integer NOT NULL)`)
	return err
}

func appliedVersions(ctx context.Context, c DBTX) (map[int]time.Time, error) {
	rows, err := c.Query(ctx, `SELECT version, applied_at FROM owlmetry_schema_migrations`)
	if err != nil {
		return nil, err
	}
	out := map[int]time.Time{}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			return nil, err
		}
		out[v] = at
	}
	return out, rows.Err()
}

func maxKey(m map[int]time.Time) int {
	n := 0
	for k := range m {
		if k > n {
			n = k
		}
	}
	return n
}

// VersionStatus is one owlmetry migration as `owlmetry migrate --status` lists it.
type VersionStatus struct {
	Version   int
	Name      string
	Applied   bool
	AppliedAt *time.Time
}

// Status lists the embedded migrations with whether each is applied, plus River's
// current and latest versions. It changes nothing.
func Status(ctx context.Context, pool *pgxpool.Pool) ([]VersionStatus, SchemaVersion, error) {
	sv, err := CheckSchema(ctx, pool)
	if err != nil {
		return nil, sv, err
	}
	applied := map[int]time.Time{}
	if sv.Current > 0 || sv.tableExists {
		if applied, err = appliedVersions(ctx, pool); err != nil {
			return nil, sv, err
		}
	}
	var out []VersionStatus
	for _, m := range Migrations() {
		vs := VersionStatus{Version: m.Version, Name: m.Name}
		if at, ok := applied[m.Version]; ok {
			at := at.UTC()
			vs.Applied, vs.AppliedAt = true, &at
		}
		out = append(out, vs)
	}
	return out, sv, nil
}

// SchemaState compares a database with this binary (cli.md §10.1).
type SchemaState int

// The states of a database's schema.
const (
	SchemaNotMigrated SchemaState = iota
	SchemaBehind
	SchemaCurrent
	SchemaAhead
)

func (s SchemaState) String() string {
	return [...]string{"not migrated", "behind", "current", "ahead"}[s]
}

// SchemaVersion is the database's owlmetry and River versions against the binary's.
type SchemaVersion struct {
	State        SchemaState
	Current      int
	Latest       int
	RiverCurrent int
	RiverLatest  int
	tableExists  bool
}

// CheckSchema reads the database's schema version.
func CheckSchema(ctx context.Context, c DBTX) (SchemaVersion, error) {
	sv := SchemaVersion{Latest: LatestVersion(), RiverLatest: RiverLatestVersion()}
	var hasOwl, hasRiver bool
	err := c.QueryRow(ctx, `SELECT to_regclass('owlmetry_schema_migrations') IS NOT NULL,
	                               to_regclass('river_migration') IS NOT NULL`).Scan(&hasOwl, &hasRiver)
	if err != nil {
		return sv, err
	}
	sv.tableExists = hasOwl
	if hasOwl {
		if err := c.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM owlmetry_schema_migrations`).Scan(&sv.Current); err != nil {
			return sv, err
		}
	}
	if hasRiver {
		if err := c.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM river_migration WHERE line = 'main'`).Scan(&sv.RiverCurrent); err != nil {
			return sv, err
		}
	}
	switch {
	case sv.Current == 0:
		sv.State = SchemaNotMigrated
	case sv.Current > sv.Latest || sv.RiverCurrent > sv.RiverLatest:
		sv.State = SchemaAhead
	case sv.Current < sv.Latest || sv.RiverCurrent < sv.RiverLatest:
		sv.State = SchemaBehind
	default:
		sv.State = SchemaCurrent
	}
	return sv, nil
}
