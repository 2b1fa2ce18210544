// Package server is owlmetry's HTTP API (api.md): routing, authentication and
// authorization, the job routes, the project sync routes, the run event stream, health
// and metrics.
//
// server.New(deps).Handler() is an http.Handler; `owlmetry server` and the test stack
// (internal/owltest) mount the same handler on a real listener, through HTTPServer so
// both use the same timeouts.
//
// Every request passes the same steps in the order of api.md §4.3: route match (404,
// 405), authentication (401), the API key's permission (403), then the handler, which
// parses its path, query and body at the top (400, 413, 415), checks visibility (403 for
// team paths, 404 for runs and projects) and the user's role (403), validates the body
// and only then does its work. Handlers return errors; writeError is the one function
// that turns them into the `{"error": …}` envelope, so a client mistake is never a 500.
//
// Runs are created only through the engine's enqueue path, so the overlap rule (409 with
// existing_run_id) holds for every route. A job type whose handler is not part of this
// build is refused with 501 {"error": "<type> has no handler in this build"}: the run
// would otherwise wait in the queue for a worker that can never take it. Live run updates come from the engine's
// LISTEN/NOTIFY fan-out (engine.Subscribe), not from polling the table.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/metrics"
)

// Timeouts of api.md §1.
const (
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// RequestTimeout bounds every request but the event stream.
	RequestTimeout = 30 * time.Second
	// MaxBodyBytes is the largest request body accepted (64 KiB).
	MaxBodyBytes = 64 << 10
	// DefaultSSEMaxStreams is OWLMETRY_SSE_MAX_STREAMS when unset.
	DefaultSSEMaxStreams = 1000
)

// Deps is what the server needs. Engine and JWTSecret are required.
type Deps struct {
	// Engine creates, cancels and reads runs and delivers their change notifications.
	// Its pool serves the API's own queries.
	Engine *engine.Engine
	// JWTSecret is the HS256 key of user tokens (JWT_SECRET, api.md §3.3).
	JWTSecret []byte
	// Metrics receives the HTTP and event-stream metrics and is what /metrics exposes.
	// Nil uses a private set.
	Metrics *metrics.Set
	// Logger receives request logs and server faults. Nil discards them.
	Logger *slog.Logger
	// MetricsToken, when set, is the bearer token /metrics requires
	// (OWLMETRY_METRICS_TOKEN). Empty leaves /metrics open.
	MetricsToken string
	// SSEMaxStreams caps concurrent event streams on this replica
	// (OWLMETRY_SSE_MAX_STREAMS). Defaults to 1000.
	SSEMaxStreams int
	// DisableEventStream removes GET /v1/jobs/{runId}/events (it answers 404 like any
	// unknown route), so clients' polling fallback can be exercised against a real server.
	DisableEventStream bool
	// Now is the clock for relative time filters and the last_used_at throttle.
	// Defaults to time.Now.
	Now func() time.Time
	// EventFallbackInterval is how often an event stream re-reads its run when no
	// notification arrived (api.md §7.5). Defaults to 5s.
	EventFallbackInterval time.Duration
	// EventPingInterval spaces the `: ping` comments of an event stream. Defaults to 15s.
	EventPingInterval time.Duration
	// EventProgressInterval is the shortest spacing of two progress events on one
	// stream; changes inside it are coalesced into the newest value (api.md §7.5).
	// Defaults to 100ms.
	EventProgressInterval time.Duration
}

// Server is the API of one replica.
type Server struct {
	deps    Deps
	eng     *engine.Engine
	pool    *pgxpool.Pool
	log     *slog.Logger
	metrics *metrics.Set
	now     func() time.Time
	handler http.Handler

	streams chan struct{} // one token per open event stream

	shutdownOnce sync.Once
	shutdown     chan struct{}

	touch  *keyToucher
	active *activeGauge
}

// New builds the server. It panics without an engine: that is a wiring mistake, not
// input. Call Close when done, to stop the background writer of api_keys.last_used_at.
func New(deps Deps) *Server {
	if deps.Engine == nil {
		panic("server.New: Deps.Engine is required")
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New()
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.SSEMaxStreams <= 0 {
		deps.SSEMaxStreams = DefaultSSEMaxStreams
	}
	if deps.EventFallbackInterval <= 0 {
		deps.EventFallbackInterval = 5 * time.Second
	}
	if deps.EventPingInterval <= 0 {
		deps.EventPingInterval = 15 * time.Second
	}
	if deps.EventProgressInterval <= 0 {
		deps.EventProgressInterval = 100 * time.Millisecond
	}
	s := &Server{
		deps:     deps,
		eng:      deps.Engine,
		pool:     deps.Engine.Pool(),
		log:      deps.Logger,
		metrics:  deps.Metrics,
		now:      deps.Now,
		streams:  make(chan struct{}, deps.SSEMaxStreams),
		shutdown: make(chan struct{}),
	}
	s.touch = newKeyToucher(s.pool, s.log, s.now)
	s.active = &activeGauge{pool: s.pool, gauge: s.metrics.RunsActive, now: s.now}
	s.handler = s.routes()
	return s
}

// Handler is the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPServer returns an http.Server for the API with the timeouts of api.md §1. Requests
// other than the event stream get their own 30 s limit inside the handler, because a
// server-wide write timeout would cut streams.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// BeginShutdown starts a graceful shutdown (engine.md §12.3 step 1): /readyz answers 503
// from now on and every open event stream ends at once, so its client reconnects to
// another replica. The caller then shuts the http.Server down.
func (s *Server) BeginShutdown() {
	s.shutdownOnce.Do(func() { close(s.shutdown) })
}

// ShuttingDown reports whether BeginShutdown was called.
func (s *Server) ShuttingDown() bool {
	select {
	case <-s.shutdown:
		return true
	default:
		return false
	}
}

// Close ends streams and stops the background writer of last_used_at.
func (s *Server) Close() {
	s.BeginShutdown()
	s.touch.close()
}

// Key permissions checked by the API (api.md §4.1).
const (
	permJobsRead         = "jobs:read"
	permJobsWrite        = "jobs:write"
	permIntegrationsRead = "integrations:read"
)

// endpoint is one method of one route.
type endpoint struct {
	// public routes take no credentials (health, metrics with its own token).
	public bool
	// perm is the permission an API key needs; "" lets any valid credential in.
	perm string
	// stream marks the event stream: no request deadline.
	stream bool
	handle func(w http.ResponseWriter, r *http.Request, p *principal) error
}

// routes builds the mux. Patterns carry no method, so that a known path with the wrong
// method is a 405 with Allow (api.md §2.2) and an unknown path a JSON 404, both decided
// here rather than by the mux's plain-text defaults.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	add := func(pattern string, methods map[string]endpoint) {
		mux.Handle(pattern, s.dispatch(pattern, methods))
	}
	add("/v1/teams/{teamId}/jobs", map[string]endpoint{
		http.MethodGet: {perm: permJobsRead, handle: s.listJobs},
	})
	add("/v1/teams/{teamId}/jobs/trigger", map[string]endpoint{
		http.MethodPost: {perm: permJobsWrite, handle: s.triggerJob},
	})
	add("/v1/jobs/{runId}", map[string]endpoint{
		http.MethodGet: {perm: permJobsRead, handle: s.getJob},
	})
	add("/v1/jobs/{runId}/cancel", map[string]endpoint{
		http.MethodPost: {perm: permJobsWrite, handle: s.cancelJob},
	})
	if !s.deps.DisableEventStream {
		add("/v1/jobs/{runId}/events", map[string]endpoint{
			http.MethodGet: {perm: permJobsRead, stream: true, handle: s.jobEvents},
		})
	}
	add("/v1/auth/whoami", map[string]endpoint{
		http.MethodGet: {handle: s.whoami},
	})
	add("/v1/projects/{projectId}/integrations", map[string]endpoint{
		http.MethodGet: {perm: permIntegrationsRead, handle: s.listIntegrations},
	})
	for _, sr := range syncRoutes {
		add("/v1/projects/{projectId}/"+sr.path, map[string]endpoint{
			http.MethodPost: {perm: permJobsWrite, handle: s.syncHandler(sr)},
		})
	}
	add("/healthz", map[string]endpoint{http.MethodGet: {public: true, handle: s.healthz}})
	add("/health", map[string]endpoint{http.MethodGet: {public: true, handle: s.healthz}})
	add("/readyz", map[string]endpoint{http.MethodGet: {public: true, handle: s.readyz}})
	add("/metrics", map[string]endpoint{http.MethodGet: {public: true, handle: s.serveMetrics}})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errorf(http.StatusNotFound, msgNotFound))
	}))

	return s.outer(mux)
}

// dispatch picks the endpoint for the method, authenticates and checks the key's
// permission: steps 1–3 of api.md §4.3.
func (s *Server) dispatch(pattern string, methods map[string]endpoint) http.Handler {
	allowed := make([]string, 0, len(methods)+1)
	for m, ep := range methods {
		allowed = append(allowed, m)
		if m == http.MethodGet && !ep.stream {
			allowed = append(allowed, http.MethodHead)
		}
	}
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		st.route = pattern
		ep, ok := methods[r.Method]
		if !ok && r.Method == http.MethodHead {
			if get, has := methods[http.MethodGet]; has && !get.stream {
				ep, ok = get, true
			}
		}
		if !ok {
			writeError(w, r, &apiError{Status: http.StatusMethodNotAllowed, Message: msgMethodNotAllowed,
				Header: http.Header{"Allow": {allow}}})
			return
		}
		if !ep.stream {
			ctx, cancel := context.WithTimeout(r.Context(), RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
			rc := http.NewResponseController(w)
			deadline := time.Now().Add(RequestTimeout + time.Second)
			_ = rc.SetReadDeadline(deadline)
			_ = rc.SetWriteDeadline(deadline)
		}
		var p *principal
		if !ep.public {
			var err error
			if p, err = s.authenticate(r); err != nil {
				writeError(w, r, err)
				return
			}
			st.setPrincipal(p)
			if ep.perm != "" && !p.can(ep.perm) {
				writeError(w, r, errorf(http.StatusForbidden, "Missing permission: %s", ep.perm))
				return
			}
		}
		if err := ep.handle(w, r, p); err != nil {
			writeError(w, r, err)
		}
	})
}

// outer wraps every request: request id, panic recovery, the canonical-path check,
// Cache-Control on /v1, the request log and the HTTP metrics.
func (s *Server) outer(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		st := &reqState{requestID: id, route: "unmatched"}
		st.log = s.log.With("request_id", id)
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		w := &statusWriter{ResponseWriter: rw}
		w.Header().Set("X-Request-Id", id)
		if p := r.URL.Path; p == "/v1" || strings.HasPrefix(p, "/v1/") {
			w.Header().Set("Cache-Control", "no-store")
		}

		defer func() {
			d := time.Since(start)
			code := w.code()
			labels := []string{st.route, methodLabel(r.Method), itoa(code)}
			s.metrics.HTTPRequests.WithLabelValues(labels...).Inc()
			s.metrics.HTTPDuration.WithLabelValues(labels...).Observe(d.Seconds())
			level := slog.LevelInfo
			switch st.route {
			case "/healthz", "/health", "/readyz", "/metrics":
				level = slog.LevelDebug
			}
			st.log.Log(context.Background(), level, "request", "method", r.Method, "path", r.URL.Path,
				"route", st.route, "status", code, "duration_ms", d.Milliseconds())
		}()
		defer recoverPanic(w, r)

		if !canonicalPath(r.URL.Path) {
			// The mux would redirect these with an HTML body; they name no route of ours.
			writeError(w, r, errorf(http.StatusNotFound, msgNotFound))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// canonicalPath reports whether p is already clean (no empty, "." or ".." segments).
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	return c == p || c+"/" == p
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER" // arbitrary methods must not grow the label set
}
