// Package owltest runs the whole owlmetry server in process for tests: a fresh Postgres
// database (internal/pgtest), the job engine with River on fast test timers, and the
// HTTP API on a real listener at 127.0.0.1. Seed helpers create teams, users, projects,
// apps, API keys and integrations; Env and Run drive the CLI against the stack.
//
// A package that uses it routes TestMain through pgtest:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync))
//		project := stack.SeedProject(t, owltest.WithIntegration("apple-search-ads"))
//		res := owltest.Run(t, stack.Env(), "jobs", "trigger", "apple_ads_sync", "--project-id", project.ID)
//		…
//	}
//
// The stack has no job handlers unless a test registers them (WithJobs, WithHandler,
// WithBlockingHandler): a type without one is refused with 501, as in a server build
// without it. owltest is for tests only; production code never imports it.
package owltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/pgtest"
	"github.com/owlmetry/owlmetry/internal/server"
)

// Stack is one running server on its own database.
type Stack struct {
	// URL is the API base URL, http://127.0.0.1:<port>.
	URL string
	// DB is the stack's database; DB.Pool is free for direct queries.
	DB *pgtest.DB
	// Engine is the stack's engine.
	Engine *engine.Engine
	// Server is the API behind URL.
	Server *server.Server
	// Metrics is what /metrics exposes.
	Metrics *metrics.Set
	// Blocker is the handler behind WithBlockingHandler.
	Blocker *Blocker
	// JWTSecret signs user tokens (SignJWT, SeedUser).
	JWTSecret []byte
	// SecretKey is the stack's OWLMETRY_SECRET_KEY, 64 hex characters.
	SecretKey string
	// Team is a team seeded at start; SeedProject uses it unless told otherwise.
	Team Team
	// Key is an agent key of Team with every permission the API checks; Env uses it.
	Key Key

	home string
}

// Option configures StartStack.
type Option func(*config)

type config struct {
	handlers     map[string]engine.Handler
	blocking     []string
	settings     []func(*engine.Settings)
	deps         []func(*server.Deps)
	logger       *slog.Logger
	engineConfig []func(*engine.Config)
	realJobs     bool
}

// WithHandler registers h for a job type, so runs of it execute.
func WithHandler(jobType string, h engine.Handler) Option {
	return func(c *config) { c.handlers[jobType] = h }
}

// WithJobs registers the real handlers of internal/jobs (jobs.All with default settings),
// as `owlmetry server` does. Handlers registered by WithHandler or WithBlockingHandler
// win for their types.
func WithJobs() Option {
	return func(c *config) { c.realJobs = true }
}

// WithBlockingHandler registers Stack.Blocker for the job types: their runs start, then
// wait until the test finishes them, cancels them or the stack stops. Tests use it to
// hold a run active (409s, cancel, event streams).
func WithBlockingHandler(jobTypes ...string) Option {
	return func(c *config) { c.blocking = append(c.blocking, jobTypes...) }
}

// WithEngineSettings adjusts the engine's settings after the test defaults are applied.
func WithEngineSettings(f func(*engine.Settings)) Option {
	return func(c *config) { c.settings = append(c.settings, f) }
}

// WithEngineConfig adjusts the engine's whole configuration (Notifier, Metrics, …).
func WithEngineConfig(f func(*engine.Config)) Option {
	return func(c *config) { c.engineConfig = append(c.engineConfig, f) }
}

// WithServerDeps adjusts the API's dependencies (metrics token, stream limit, clock…).
func WithServerDeps(f func(*server.Deps)) Option {
	return func(c *config) { c.deps = append(c.deps, f) }
}

// WithoutEventStream starts the API without GET /v1/jobs/{runId}/events, so clients fall
// back to polling.
func WithoutEventStream() Option {
	return WithServerDeps(func(d *server.Deps) { d.DisableEventStream = true })
}

// WithLogger sends the engine's and the API's logs to l. By default they are discarded.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

var stackSeq atomic.Int64

// TestSettings are the engine timers of a stack: fast enough for tests, with leases long
// enough that a busy test machine does not reap live runs.
func TestSettings() engine.Settings {
	return engine.Settings{
		NodeID:            fmt.Sprintf("owltest-%d-%s", stackSeq.Add(1), randomHex(4)),
		Workers:           10,
		InternalWorkers:   2,
		Scheduler:         true,
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		ProgressInterval:  50 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		StaleAfter:        5 * time.Second,
		ReapInterval:      500 * time.Millisecond,
		ShutdownTimeout:   5 * time.Second,
		CronProfile:       "off",
		DBMaxConns:        20,
	}
}

// StartStack starts a stack on a fresh database and stops it when t ends.
func StartStack(t testing.TB, opts ...Option) *Stack {
	t.Helper()
	c := &config{handlers: map[string]engine.Handler{}}
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	s := &Stack{
		DB:        pgtest.New(t),
		Metrics:   metrics.New(),
		Blocker:   NewBlocker(),
		JWTSecret: []byte(randomHex(32)),
		SecretKey: randomHex(32),
		home:      t.TempDir(),
	}
	handlers := map[string]engine.Handler{}
	if c.realJobs {
		handlers = jobs.All(jobs.Deps{Logger: c.logger, Metrics: s.Metrics})
	}
	for jt, h := range c.handlers {
		handlers[jt] = h
	}
	for _, jt := range c.blocking {
		handlers[jt] = s.Blocker
	}

	settings := TestSettings()
	for _, f := range c.settings {
		f(&settings)
	}
	ecfg := engine.Config{Settings: settings, Handlers: handlers, Metrics: s.Metrics, Logger: c.logger,
		Version: "owltest", TestOnly: true}
	for _, f := range c.engineConfig {
		f(&ecfg)
	}
	eng, err := engine.New(s.DB.Pool, ecfg)
	if err != nil {
		t.Fatalf("owltest: engine: %v", err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatalf("owltest: start engine: %v", err)
	}
	s.Engine = eng

	deps := server.Deps{Engine: eng, JWTSecret: s.JWTSecret, Metrics: s.Metrics, Logger: c.logger}
	for _, f := range c.deps {
		f(&deps)
	}
	s.Server = server.New(deps)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("owltest: listen: %v", err)
	}
	hs := s.Server.HTTPServer()
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.logger.Error("owltest: serve", "error", err)
		}
	}()
	s.URL = "http://" + ln.Addr().String()

	t.Cleanup(func() {
		// The order of a graceful shutdown: streams end, held runs stop, requests drain,
		// then the engine.
		s.Server.BeginShutdown()
		s.Blocker.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			hs.Close() //nolint:errcheck // forced close after the drain timed out
		}
		<-served
		if err := eng.Stop(ctx); err != nil {
			t.Logf("owltest: stop engine: %v", err)
		}
		s.Server.Close()
	})

	s.Team = s.SeedTeam(t)
	s.Key = s.SeedKey(t, s.Team, []string{"jobs:read", "jobs:write", "integrations:read", "integrations:write"})
	return s
}

// Env is an environment for a CLI run: variable name → value.
type Env map[string]string

// Lookup is an os.LookupEnv over the map.
func (e Env) Lookup(key string) (string, bool) {
	v, ok := e[key]
	return v, ok
}

// With returns a copy of e with more variables set.
func (e Env) With(kv ...string) Env {
	out := Env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// Env returns the environment a CLI run against the stack needs: endpoint, the stack's
// API key and team, its database for server-owner commands, and a config file and home
// directory of its own, so the developer's ~/.owlmetry is never read.
func (s *Stack) Env() Env {
	return Env{
		"OWLMETRY_ENDPOINT":     s.URL,
		"OWLMETRY_API_KEY":      s.Key.Token,
		"OWLMETRY_TEAM_ID":      s.Team.ID,
		"OWLMETRY_DATABASE_URL": s.DB.URL,
		"OWLMETRY_CONFIG":       filepath.Join(s.home, ".owlmetry", "config.json"),
		"OWLMETRY_SECRET_KEY":   s.SecretKey,
		"JWT_SECRET":            string(s.JWTSecret),
		"HOME":                  s.home,
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b)
}
