// Package server implements `owlmetry server`: the HTTP API, the engine's workers and
// the scheduler in one process (cli.md §11.1, engine.md §12).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/build"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/metrics"
	apiserver "github.com/owlmetry/owlmetry/internal/server"
)

// ServerOptions holds what `owlmetry server` needs.
type ServerOptions struct {
	Factory  *cmdutil.Factory
	Database cmdutil.DatabaseOptions

	Listen          string
	Workers         int
	NoScheduler     bool
	NodeID          string
	NoMigrate       bool
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        string

	// Env replaces the Factory's environment; `owlmetry dev` runs the server in process
	// with its own variables (secrets, database, emulator URLs) layered over the user's.
	Env func(string) (string, bool)
	// Ready is called with the listening address once the server serves.
	Ready func(addr string)

	flags *cobra.Command
}

func (o *ServerOptions) lookupEnv() func(string) (string, bool) {
	if o.Env != nil {
		return o.Env
	}
	return o.Factory.LookupEnvFunc
}

// Serve runs a server in this process with env as its environment and every flag at its
// default, until ctx ends; a second signal on the Factory stops it at once. ready is
// called with the listening address. `owlmetry dev` uses it.
func Serve(ctx context.Context, f *cmdutil.Factory, env func(string) (string, bool), ready func(addr string)) error {
	opts := &ServerOptions{Factory: f, Env: env, Ready: ready}
	cmd := NewCmdServer(f, nil)
	if err := cmd.ParseFlags(nil); err != nil {
		return err
	}
	opts.flags = cmd
	fl := cmd.Flags()
	opts.Listen, _ = fl.GetString("listen")
	opts.Workers, _ = fl.GetInt("workers")
	opts.ShutdownTimeout, _ = fl.GetDuration("shutdown-timeout")
	opts.LogFormat, _ = fl.GetString("log-format")
	opts.LogLevel, _ = fl.GetString("log-level")
	return serverRun(ctx, opts)
}

// NewCmdServer builds `owlmetry server`. Tests pass runFunc to inspect the parsed
// options without starting anything.
func NewCmdServer(f *cmdutil.Factory, runFunc func(context.Context, *ServerOptions) error) *cobra.Command {
	opts := &ServerOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the HTTP API, the job workers and the scheduler",
		Long: `Run the Owlmetry API, the job engine's workers and the cron scheduler in one
process. Several replicas may share one database: runs, schedules and leases
live in Postgres, so any replica serves any request and picks up any run.

Start-up: connect, migrate (unless --no-migrate), start the engine, listen.
/readyz answers 200 once everything is up. The first SIGINT or SIGTERM turns
/readyz to 503, closes the listener, gives open requests 10s, stops taking new
runs and gives running handlers --shutdown-timeout; then the server exits 0. A
second signal stops at once and exits 1.

Flags win over their variables. Further variables:
  JWT_SECRET                  HS256 key of user tokens (required)
  OWLMETRY_SECRET_KEY         32-byte credentials key, 64 hex or base64 (required)
  OWLMETRY_METRICS_TOKEN      bearer token /metrics requires (default: none)
  OWLMETRY_SSE_MAX_STREAMS    event streams per replica (default 1000)
  OWLMETRY_DB_MAX_CONNS       shared pool size, at least workers + 10 (default 40)
  OWLMETRY_INTERNAL_WORKERS   workers of the internal queue (default 5)
  OWLMETRY_CRON_PROFILE       default schedules: prod, dev or off (default prod)
  OWLMETRY_FETCH_COOLDOWN, OWLMETRY_FETCH_POLL_INTERVAL, OWLMETRY_PROGRESS_INTERVAL,
  OWLMETRY_HEARTBEAT_INTERVAL, OWLMETRY_STALE_AFTER, OWLMETRY_REAP_INTERVAL,
  OWLMETRY_MAX_RUN_TIME_<JOB_TYPE>, OWLMETRY_JOB_RUNS_RETENTION_DAYS
                              engine tunables (engine.md §17)
  MAX_DATABASE_SIZE_GB, OWLMETRY_ATTACHMENTS_PATH, OWLMETRY_ISSUE_SCAN_SETTLE,
  OWLMETRY_FANOUT_CONCURRENCY handler settings (jobs.md §3.10)
  SMTP_URL or SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_TLS,
  SMTP_TIMEOUT, EMAIL_FROM, WEB_APP_URL, SYSTEM_JOBS_ALERT_EMAIL,
  SYSTEM_JOBS_ALERT_ON        e-mail (without an SMTP host e-mails go to the log)
  OWLMETRY_ITUNES_API_URL, OWLMETRY_ITUNES_MIN_INTERVAL, OWLMETRY_ITUNES_CONCURRENCY
                              iTunes Lookup base URL and pacing (upstreams.md §1.3)

The database is --database-url, else OWLMETRY_DATABASE_URL, else DATABASE_URL,
else the libpq variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
PGSSLMODE) when PGHOST or PGDATABASE is set.`,
		Example: `  # Serve on the default port with the database from the environment
  DATABASE_URL=postgres://owlmetry@db.internal/owlmetry owlmetry server

  # An API-only replica that never runs jobs, with JSON logs
  owlmetry server --workers 0 --listen 127.0.0.1:8080 --log-format json`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.flags = cmd
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return serverRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Listen, "listen", DefaultListen, "HTTP listen address (OWLMETRY_LISTEN)")
	opts.Database.BuildFlags(fl, false)
	fl.IntVar(&opts.Workers, "workers", 10, "concurrent runs; 0 = API only (OWLMETRY_WORKERS)")
	fl.BoolVar(&opts.NoScheduler, "no-scheduler", false, "never take part in cron leadership")
	fl.StringVar(&opts.NodeID, "node-id", "", "stable node id (OWLMETRY_NODE_ID, default: host name)")
	fl.BoolVar(&opts.NoMigrate, "no-migrate", false, "do not migrate at start; refuse a schema that does not match")
	fl.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", 25*time.Second, "how long running handlers get to stop")
	fl.StringVar(&opts.LogFormat, "log-format", "auto", "auto, text or json (OWLMETRY_LOG_FORMAT)")
	fl.StringVar(&opts.LogLevel, "log-level", "info", "debug, info, warn or error (OWLMETRY_LOG_LEVEL)")
	return cmd
}

// errSecondSignal ends a shutdown that a second signal cut short (exit 1).
var errSecondSignal = &cmdutil.OutcomeError{Code: cmdutil.ExitFailure, Name: "interrupted",
	Message: "stopped at once by a second signal"}

// serverRun starts everything in the order of engine.md §12.1, serves until the first
// signal, then shuts down as §12.3 says.
func serverRun(ctx context.Context, opts *ServerOptions) error {
	f := opts.Factory
	cfg, err := resolve(opts, opts.flags.Flags())
	if err != nil {
		return err
	}
	log := newLogger(f.IOStreams.ErrOut, cfg.logFormat, cfg.logLevel, f.IOStreams.IsStderrTTY())

	// Bind first: a taken port is reported before anything else happens. Nothing is
	// served until the engine runs.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %s", cfg.listen, listenCause(err))
	}
	served := false
	defer func() {
		if !served {
			ln.Close()
		}
	}()

	pool, err := db.OpenPool(ctx, cfg.databaseURL, db.PoolOptions{
		ApplicationName: "owlmetry-server",
		MaxConns:        int32(cfg.engine.DBMaxConns),
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := prepareSchema(ctx, pool, opts.NoMigrate, log); err != nil {
		return err
	}

	m := metrics.New()
	hd := handlerDeps{Pool: pool, Logger: log, Metrics: m, SecretKey: cfg.secretKey, LookupEnv: opts.lookupEnv()}
	eng, err := engine.New(pool, engine.Config{
		Settings: cfg.engine,
		Handlers: jobHandlers(hd, cfg.jobs),
		Notifier: notifier(hd, cfg.notify),
		Metrics:  m,
		Logger:   log,
		Version:  build.Current().Version,
	})
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		eng.Close() //nolint:errcheck // reporting the start failure matters more
		return fmt.Errorf("start engine: %w", err)
	}

	api := apiserver.New(apiserver.Deps{
		Engine:        eng,
		JWTSecret:     cfg.jwtSecret,
		Metrics:       m,
		Logger:        log,
		MetricsToken:  cfg.metricsToken,
		SSEMaxStreams: cfg.sseMaxStreams,
		Now:           f.NowFunc,
	})
	hs := api.HTTPServer()
	serveErr := make(chan error, 1)
	served = true
	go func() { serveErr <- hs.Serve(ln) }()
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "node_id", eng.NodeID(), "instance_id", eng.InstanceID(),
		"workers", cfg.engine.Workers, "scheduler", cfg.engine.Scheduler && cfg.engine.Workers > 0,
		"version", build.Current().Version)

	var failure error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx).Error(), "shutdown_timeout", cfg.engine.ShutdownTimeout.String())
	case err := <-serveErr:
		failure = fmt.Errorf("serve: %w", err)
		log.Error("serving failed; shutting down", "error", err)
	}

	// A second signal cuts every wait short.
	force, forceStop := context.WithCancel(context.Background())
	defer forceStop()
	var forced atomic.Bool
	watching := make(chan struct{})
	defer close(watching)
	go func() {
		select {
		case <-f.Signals:
			forced.Store(true)
			log.Warn("second signal: stopping at once")
			forceStop()
		case <-watching:
		}
	}()

	api.BeginShutdown()
	drain, cancelDrain := context.WithTimeout(force, shutdownDrain)
	if err := hs.Shutdown(drain); err != nil {
		hs.Close() //nolint:errcheck // requests that outlived the drain are cut
	}
	cancelDrain()
	if err := eng.Stop(force); err != nil {
		log.Error("stop engine", "error", err)
	}
	api.Close()
	if forced.Load() {
		return errSecondSignal
	}
	if failure != nil {
		return failure
	}
	log.Info("stopped")
	return nil
}

// prepareSchema runs the migrations (engine.md §18.6), or with --no-migrate checks that
// the schema matches the binary and makes sure the event partitions exist (§12.1 step 4).
func prepareSchema(ctx context.Context, pool *pgxpool.Pool, noMigrate bool, log *slog.Logger) error {
	if !noMigrate {
		report, err := db.Migrate(ctx, pool, db.MigrateOptions{})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		for _, a := range report.Applied {
			log.Info("migration applied", "migration", a.Label(), "duration_ms", a.Duration.Milliseconds())
		}
		return nil
	}
	sv, err := db.CheckSchema(ctx, pool)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch sv.State {
	case db.SchemaCurrent:
	case db.SchemaAhead:
		return fmt.Errorf("database schema is newer than this owlmetry (owlmetry %d > %d, river %d > %d); upgrade owlmetry",
			sv.Current, sv.Latest, sv.RiverCurrent, sv.RiverLatest)
	default:
		return fmt.Errorf("database schema is %s (owlmetry %d of %d, river %d of %d); run owlmetry migrate or start without --no-migrate",
			sv.State, sv.Current, sv.Latest, sv.RiverCurrent, sv.RiverLatest)
	}
	var now time.Time
	if err := pool.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return fmt.Errorf("read database clock: %w", err)
	}
	if _, err := db.EnsurePartitions(ctx, pool, now, db.PartitionOptions{}); err != nil {
		return fmt.Errorf("ensure event partitions: %w", err)
	}
	return nil
}

// listenCause is the reason of a failed bind in the words of cli.md §11.1.
func listenCause(err error) string {
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		return sysErr.Err.Error()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	return err.Error()
}
