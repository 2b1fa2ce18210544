package localjobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/notify"
)

// Handlers are the job handlers a CLI process may enqueue or execute, by job type. The
// engine refuses to start a type that has none (`<type> has no handler in this build`).
type Handlers = map[string]engine.Handler

// HandlerDeps is what building the handlers of a --local run takes: the same pool and
// the same environment the server reads (engine.md §17, jobs.md §3.10).
type HandlerDeps struct {
	// Pool is the command's pool.
	Pool *pgxpool.Pool
	// LookupEnv is the process environment.
	LookupEnv func(string) (string, bool)
	// Settings are the engine settings read from LookupEnv.
	Settings engine.Settings
}

// HandlersFunc builds the handlers of this build. Tests hand the CLI their own, for a
// registry type, through commands.Options.
type HandlersFunc func(HandlerDeps) (Handlers, error)

// BuildHandlers returns the handlers compiled into this binary (internal/jobs), with the
// job settings read from the same environment variables as owlmetry server. A type not
// among them reports that it has no handler in this build.
func BuildHandlers(d HandlerDeps) (Handlers, error) {
	cfg, err := jobs.LoadConfig(d.LookupEnv)
	if err != nil {
		return nil, err
	}
	return jobs.All(jobs.Deps{Config: cfg}), nil
}

// Config is what New needs besides the pool.
type Config struct {
	// LookupEnv supplies the server's settings (OWLMETRY_STALE_AFTER, …) and whatever the
	// handlers read. Nil means an empty environment.
	LookupEnv func(string) (string, bool)
	// Handlers builds the handlers of the engine. Only starting a run needs any (pass
	// BuildHandlers there); nil means none, which suffices to read, cancel, recover and
	// prune runs.
	Handlers HandlersFunc
	// Actor is recorded as triggered_by, cancel_requested_by and updated_by. Defaults to
	// Actor().
	Actor string
}

// Store is one server-owner session on a database.
type Store struct {
	pool     *pgxpool.Pool
	cfg      Config
	settings engine.Settings

	engOnce sync.Once
	eng     *engine.Engine
	engErr  error
}

// New wraps pool, which the Store owns from now on: Close closes it. The engine settings
// are read from cfg.LookupEnv, so the CLI applies the same stale-after rule as the
// servers sharing the database.
func New(pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if cfg.Handlers == nil {
		cfg.Handlers = func(HandlerDeps) (Handlers, error) { return Handlers{}, nil }
	}
	if cfg.Actor == "" {
		cfg.Actor = Actor()
	}
	settings, err := engine.LoadSettings(cfg.LookupEnv)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool, cfg: cfg, settings: settings}, nil
}

// Pool is the store's pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// ActorName is the actor string this store records.
func (s *Store) ActorName() string { return s.cfg.Actor }

// engine builds the CLI engine on first use: list and view commands never need one.
func (s *Store) engine() (*engine.Engine, error) {
	s.engOnce.Do(func() {
		handlers, err := s.cfg.Handlers(HandlerDeps{Pool: s.pool, LookupEnv: s.cfg.LookupEnv, Settings: s.settings})
		if err != nil {
			s.engErr = fmt.Errorf("build job handlers: %w", err)
			return
		}
		// Terminal transitions made here — a local run's end, a cancelled pending run, a
		// recovered run — queue their e-mails in the outbox like a server's do; a
		// server sends them (engine.md §13, §14.4).
		ncfg, err := notify.LoadConfig(s.cfg.LookupEnv)
		if err != nil {
			s.engErr = err
			return
		}
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		notifier := notify.New(notify.Options{Config: ncfg, Pool: s.pool, Logger: quiet})
		s.eng, s.engErr = engine.New(s.pool, engine.Config{Settings: s.settings, Handlers: handlers, Local: true, Notifier: notifier, Logger: quiet})
	})
	return s.eng, s.engErr
}

// HasHandler reports whether this build can run jobType.
func (s *Store) HasHandler(jobType string) (bool, error) {
	e, err := s.engine()
	if err != nil {
		return false, err
	}
	return e.HasHandler(jobType), nil
}

// Close releases the engine (its control session and pool) and the pool.
func (s *Store) Close() {
	if s.eng != nil {
		s.eng.Close() //nolint:errcheck // nothing to report at the end of a command
	}
	s.pool.Close()
}

// Actor is the actor string of this process (engine.md §2.5):
// `manual:cli:<os user>@<host>`, cut to 100 characters.
func Actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	a := "manual:cli:" + name + "@" + host
	if len(a) > 100 {
		a = a[:100]
	}
	return a
}

// dbNow reads the database clock, the only clock of job_runs and job_schedules.
func (s *Store) dbNow(ctx context.Context) (time.Time, error) {
	var now time.Time
	err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now)
	return now.UTC(), err
}

// IsUsage reports whether err is input the rules refuse before anything changes — a
// type without a handler in this build, an unknown type, a param the type does not take
// or with the wrong type, a project that does not exist, a cron expression or schedule
// change that is not allowed, bootstrap input that breaks a rule, an unknown team or
// user. The CLI reports these as usage errors (exit 2).
func IsUsage(err error) bool {
	var (
		nh  *engine.NoHandlerError
		ut  *engine.UnknownTypeError
		ena *engine.EntryNotAllowedError
		ce  *engine.CronError
		up  *jobtype.UnknownParamError
		ip  *jobtype.InvalidParamError
		inv *InvalidError
		se  *ScheduleError
		nf  *NotFoundError
		nm  *NotMemberError
	)
	return errors.As(err, &nh) || errors.As(err, &ut) || errors.As(err, &ena) || errors.As(err, &ce) ||
		errors.As(err, &up) || errors.As(err, &ip) || errors.Is(err, engine.ErrProjectMismatch) ||
		errors.As(err, &inv) || errors.As(err, &se) || errors.As(err, &nf) || errors.As(err, &nm)
}

// IsNotFound reports whether err says a run, team or user does not exist.
func IsNotFound(err error) bool {
	var rn *RunNotFoundError
	var nf *NotFoundError
	return errors.As(err, &rn) || errors.As(err, &nf)
}
