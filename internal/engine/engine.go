// Package engine runs owlmetry's jobs on River under the job_runs table (engine.md).
//
// job_runs is the product record of every run; River is only the queue underneath. The
// engine owns every write to job_runs: Enqueue inserts runs (one path for every entry
// point, with the overlap rule enforced by a unique index), the executor claims and
// finalises them, Cancel requests cancellation from any process, leases and the reaper
// recover runs whose process died, and the scheduler turns job_schedules into runs once
// per tick across all replicas.
//
// A server process calls New, then Start, and Stop at shutdown. A CLI process builds an
// engine with Config.Local and uses Enqueue, Cancel, Recover and RunLocal.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/robfig/cron/v3"

	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/metrics"
)

// Queue names (engine.md §18.3).
const (
	QueueJobs     = "jobs"
	QueueInternal = "internal"
)

// Engine is one process's view of the job system.
type Engine struct {
	cfg      Config
	pool     *pgxpool.Pool
	ctrl     *pgxpool.Pool // heartbeats, reaper, cancel and progress writes (§11.7)
	river    *river.Client[pgx.Tx]
	log      *slog.Logger
	metrics  *metrics.Set
	now      func() time.Time
	instance string
	nodeID   string

	broker *broker

	mu       sync.Mutex
	active   map[string]*activeRun
	started  bool
	stopping bool
	ready    bool
	bg       sync.WaitGroup
	bgCancel context.CancelFunc
	ctrlConn *pgx.Conn // control session: node lock and LISTEN (§11.7)
	nodeLock bool

	execOnce   sync.Once
	execErr    error
	loggedOnce map[string]bool
}

// New builds an engine on pool. It starts nothing; call Start (server) or use the CLI
// operations directly.
func New(pool *pgxpool.Pool, cfg Config) (*Engine, error) {
	cfg.Settings = cfg.Settings.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Handlers == nil {
		cfg.Handlers = map[string]Handler{}
	}
	if cfg.MaxRunTime == nil {
		cfg.MaxRunTime = map[string]time.Duration{}
	}
	for name := range cfg.Handlers {
		if _, ok := jobtype.Lookup(name); !ok {
			return nil, fmt.Errorf("handler registered for unknown job type %q", name)
		}
	}
	if cfg.Local {
		host, _ := os.Hostname()
		cfg.NodeID = fmt.Sprintf("cli-%s-%d", host, os.Getpid())
		cfg.Workers = 0
		cfg.Scheduler = false
	}
	if err := cfg.Settings.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:        cfg,
		pool:       pool,
		log:        cfg.Logger,
		metrics:    cfg.Metrics,
		now:        cfg.Now,
		instance:   uuid.NewString(),
		nodeID:     cfg.NodeID,
		active:     map[string]*activeRun{},
		loggedOnce: map[string]bool{},
	}
	e.broker = newBroker(e)

	ctrlCfg := pool.Config().Copy()
	ctrlCfg.MaxConns = 2
	ctrlCfg.MinConns = 0
	ctrl, err := pgxpool.NewWithConfig(context.Background(), ctrlCfg)
	if err != nil {
		return nil, err
	}
	e.ctrl = ctrl

	rc, err := e.newRiverClient()
	if err != nil {
		ctrl.Close()
		return nil, err
	}
	e.river = rc
	return e, nil
}

// InstanceID is this process's instance UUID, the fencing token of its owner writes.
func (e *Engine) InstanceID() string { return e.instance }

// NodeID is this process's node id.
func (e *Engine) NodeID() string { return e.nodeID }

// Settings returns the effective settings.
func (e *Engine) Settings() Settings { return e.cfg.Settings }

// Pool is the shared pool.
func (e *Engine) Pool() *pgxpool.Pool { return e.pool }

// River is the River client, for callers that insert in their own transactions.
func (e *Engine) River() *river.Client[pgx.Tx] { return e.river }

// HasHandler reports whether this build can execute the type.
func (e *Engine) HasHandler(jobType string) bool {
	_, ok := e.cfg.Handlers[jobType]
	return ok
}

// Ready reports whether the engine is started and not shutting down (engine.md §12.2).
func (e *Engine) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ready && !e.stopping
}

// runArgs are the args of every handler kind: the run id only; params live in job_runs.
// The kind travels in the struct so one Go type serves all 13 kinds.
type runArgs struct {
	RunID string `json:"run_id"`
	kind  string
}

func (a runArgs) Kind() string { return a.kind }

type tickArgs struct{}

func (tickArgs) Kind() string { return "scheduler_tick" }

// InsertOpts puts ticks on the internal queue however they are inserted.
func (tickArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueInternal, MaxAttempts: 1}
}

type maintenanceArgs struct{}

func (maintenanceArgs) Kind() string { return "engine_maintenance" }

// InsertOpts puts maintenance on the internal queue however it is inserted.
func (maintenanceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueInternal, MaxAttempts: 1}
}

// utcSchedule parses a cron expression as UTC whatever the process's zone (§18.7 #6).
func utcSchedule(expr string) cron.Schedule {
	s, err := cron.ParseStandard("CRON_TZ=UTC " + expr)
	if err != nil {
		panic(err) // only for the engine's own constant expressions
	}
	return s
}

func (e *Engine) newRiverClient() (*river.Client[pgx.Tx], error) {
	rcfg := &river.Config{
		ID:                fmt.Sprintf("%s/%s", e.nodeID, e.instance),
		Logger:            e.log,
		JobTimeout:        -1,
		MaxAttempts:       1,
		FetchCooldown:     e.cfg.FetchCooldown,
		FetchPollInterval: e.cfg.FetchPollInterval,
		TestOnly:          e.cfg.TestOnly,
		// A worker fetches only the kinds it can run, so replicas of different builds (or a
		// test process with a few handlers) never take each other's jobs.
		FetchOnlyKnownKinds: true,
	}
	if e.cfg.Workers <= 0 {
		// Insert-only client (CLI, API-only replica): enqueue and cancel, never started.
		rcfg.SkipUnknownJobCheck = true
		return river.NewClient(riverpgxv5.New(e.pool), rcfg)
	}
	workers := river.NewWorkers()
	for name := range e.cfg.Handlers {
		river.AddWorkerArgs(workers, runArgs{kind: name}, &runWorker{e: e})
	}
	river.AddWorker(workers, &tickWorker{e: e})
	river.AddWorker(workers, &maintenanceWorker{e: e})
	if e.cfg.Notifier != nil {
		e.cfg.Notifier.RegisterWorkers(workers)
	}
	rcfg.Workers = workers
	rcfg.SkipUnknownJobCheck = true // run kinds without a handler are refused by Enqueue itself
	rcfg.Queues = map[string]river.QueueConfig{
		QueueJobs:     {MaxWorkers: e.cfg.Workers},
		QueueInternal: {MaxWorkers: e.cfg.InternalWorkers},
	}
	if e.cfg.Scheduler {
		rcfg.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(utcSchedule("* * * * *"), func() (river.JobArgs, *river.InsertOpts) {
				return tickArgs{}, &river.InsertOpts{Queue: QueueInternal, MaxAttempts: 1}
			}, &river.PeriodicJobOpts{RunOnStart: true, ID: "scheduler_tick"}),
			river.NewPeriodicJob(utcSchedule("*/5 * * * *"), func() (river.JobArgs, *river.InsertOpts) {
				return maintenanceArgs{}, &river.InsertOpts{Queue: QueueInternal, MaxAttempts: 1}
			}, &river.PeriodicJobOpts{ID: "engine_maintenance"}),
		}
	} else {
		rcfg.LeaderElectionDisabled = true
	}
	return river.NewClient(riverpgxv5.New(e.pool), rcfg)
}

// ErrStopped is returned by operations on an engine that is shutting down.
var ErrStopped = errors.New("engine is shutting down")
