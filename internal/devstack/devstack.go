// Package devstack runs the whole owlmetry system on one machine for `owlmetry dev`
// (cli.md §11.2, upstreams.md §9): a private Postgres started from the installed server
// binaries in a data dir the stack owns, migrations, the demo universe as seed data,
// every local emulator of the third-party APIs, and the environment that points the
// server and the CLI at them.
//
// Start brings up everything but the API server, which the dev command starts in process
// with Stack.ServerEnv; Stop takes it all down again and leaves no Postgres process
// behind — a watchdog stops the cluster even if this process is killed.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
	"github.com/owlmetry/owlmetry/internal/pgcluster"
)

// Options configure a dev stack.
type Options struct {
	// DataDir holds cluster, secrets, seed and state. Defaults to DefaultDataDir.
	DataDir string
	// Reset deletes the data dir first.
	Reset bool
	// Ephemeral uses a temporary data dir removed on Stop.
	Ephemeral bool
	// PGBinDir is where initdb and postgres live (--pg-bin-dir, OWLMETRY_PG_BIN).
	PGBinDir string
	// NoSeed skips the demo data on a fresh data dir.
	NoSeed bool
	// Universe is the demo world. Defaults to universe.Default().
	Universe *universe.Universe
	// LookupEnv is the injected environment (PATH for the binaries search).
	LookupEnv func(string) (string, bool)
	// Logger receives progress lines.
	Logger *slog.Logger
	// Now is the clock the demo events are placed around. Defaults to time.Now.
	Now func() time.Time
}

// Stack is a running dev stack without its API server.
type Stack struct {
	DataDir     string
	DatabaseURL string
	Pool        *pgxpool.Pool
	Secrets     Secrets
	// Seed is nil when the stack runs without demo data.
	Seed      *Seeded
	Emulators map[string]string

	ephemeral     bool
	lock          *dirLock
	cluster       *pgcluster.Cluster
	stopEmulators func()
}

// Start brings the stack up, each step failing with one clear error after stopping what
// it already started.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Universe == nil {
		o.Universe = universe.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LookupEnv == nil {
		o.LookupEnv = func(string) (string, bool) { return "", false }
	}
	s := &Stack{DataDir: o.DataDir, ephemeral: o.Ephemeral}
	defer func() {
		if err != nil {
			s.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // reporting the first error
		}
	}()
	if o.Ephemeral {
		base := ""
		if os.Geteuid() == 0 {
			base = "/var/tmp"
		}
		dir, err := os.MkdirTemp(base, "owlmetry-dev-")
		if err != nil {
			return nil, err
		}
		s.DataDir = dir
	}
	if s.DataDir == "" {
		return nil, errors.New("no data dir")
	}
	if o.Reset && !o.Ephemeral {
		if l, err := lockDataDir(s.DataDir); err != nil {
			return nil, err
		} else {
			l.release()
		}
		if err := os.RemoveAll(s.DataDir); err != nil {
			return nil, fmt.Errorf("reset %s: %w", s.DataDir, err)
		}
	}
	if s.lock, err = lockDataDir(s.DataDir); err != nil {
		return nil, err
	}
	if err := os.Chmod(s.DataDir, 0o755); err != nil {
		return nil, err
	}
	pathEnv, _ := o.LookupEnv("PATH")
	pgBin, _ := o.LookupEnv("OWLMETRY_PG_BIN")
	bin, err := pgcluster.FindBinaries(pgcluster.FindOptions{Dirs: []string{o.PGBinDir, pgBin}, PathEnv: pathEnv})
	if err != nil {
		return nil, err
	}
	if err := checkReachable(s.DataDir); err != nil {
		return nil, err
	}

	o.Logger.Info("starting PostgreSQL", "data_dir", s.DataDir)
	s.cluster, s.DatabaseURL, err = startPostgres(ctx, s.DataDir, bin, o.Ephemeral)
	if err != nil {
		return nil, err
	}
	s.Pool, err = db.OpenPool(ctx, s.DatabaseURL, db.PoolOptions{MaxConns: 10})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx, s.Pool, db.MigrateOptions{}); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if s.Secrets, err = loadOrCreateSecrets(s.DataDir); err != nil {
		return nil, err
	}
	if s.Seed, err = loadSeeded(s.DataDir); err != nil {
		return nil, err
	}
	if s.Seed == nil && !o.NoSeed {
		o.Logger.Info("seeding demo data")
		if s.Seed, err = seed(ctx, s.Pool, o.Universe, o.Now()); err != nil {
			return nil, err
		}
		if err := writeJSON(seedPath(s.DataDir), s.Seed); err != nil {
			return nil, err
		}
	}
	if s.Emulators, s.stopEmulators, err = startEmulators(ctx, o.Universe); err != nil {
		return nil, err
	}
	return s, nil
}

// DevITunesInterval is the server's iTunes pacer baseline in dev (upstreams.md §9.5):
// 1,000 requests a minute, below the emulator's 1,200.
const DevITunesInterval = "60ms"

// ServerEnv is the environment the in-process server runs with: the dev secrets, the
// database, the cron profile and every upstream pointed at its emulator. base holds
// the caller's own variables; the stack's win.
func (s *Stack) ServerEnv(base func(string) (string, bool), listen, schedules string) func(string) (string, bool) {
	env := map[string]string{
		"DATABASE_URL":                 s.DatabaseURL,
		"OWLMETRY_DATABASE_URL":        s.DatabaseURL,
		"JWT_SECRET":                   s.Secrets.JWTSecret,
		"OWLMETRY_SECRET_KEY":          s.Secrets.SecretKey,
		"OWLMETRY_CRON_PROFILE":        schedules,
		"OWLMETRY_LISTEN":              listen,
		"OWLMETRY_NODE_ID":             "dev",
		"OWLMETRY_ITUNES_MIN_INTERVAL": DevITunesInterval,
	}
	for name, url := range s.Emulators {
		if f, ok := emulatorEnv[name]; ok {
			for _, kv := range f(url) {
				env[kv[0]] = kv[1]
			}
		}
	}
	return func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		if base != nil {
			return base(k)
		}
		return "", false
	}
}

// WriteState records the running stack for `owlmetry dev env` and other shells.
func (s *Stack) WriteState(endpoint string) (State, error) {
	st := State{Endpoint: endpoint, DatabaseURL: s.DatabaseURL, SecretKey: s.Secrets.SecretKey, Emulators: s.Emulators, PID: os.Getpid()}
	if s.Seed != nil {
		st.APIKey, st.TeamID, st.ProjectID = s.Seed.APIKey, s.Seed.TeamID, s.Seed.Projects["A"]
	}
	return st, writeJSON(statePath(s.DataDir), st)
}

// Stop stops the emulators and Postgres (fast shutdown), removes the state file — and
// an ephemeral data dir — and releases the lock.
func (s *Stack) Stop(ctx context.Context) error {
	var errs []error
	if s.stopEmulators != nil {
		s.stopEmulators()
		s.stopEmulators = nil
	}
	if s.Pool != nil {
		s.Pool.Close()
		s.Pool = nil
	}
	if s.cluster != nil {
		if err := s.cluster.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		s.cluster = nil
	}
	if s.DataDir != "" {
		os.Remove(statePath(s.DataDir)) //nolint:errcheck // absent when the stack never got ready
	}
	s.lock.release()
	if s.ephemeral && s.DataDir != "" {
		if err := os.RemoveAll(s.DataDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
