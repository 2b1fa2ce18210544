package server

import (
	"context"
	"net/http"
	"time"

	"github.com/owlmetry/owlmetry/internal/db"
)

// readyDBTimeout is how long /readyz waits for the database (engine.md §12.2).
const readyDBTimeout = time.Second

// healthz answers GET /healthz and /health (api.md §7.11): the process serves HTTP.
// It touches nothing else, so a database outage does not get the process restarted.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers GET /readyz (api.md §7.12): ready when the database answers within 1 s,
// its schema is the one this binary expects, the engine runs (or this replica runs no
// workers) and shutdown has not begun.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *principal) error {
	checks := map[string]string{"database": "ok", "migrations": "ok", "engine": "ok", "shutdown": "ok"}
	ready := true
	fail := func(check, reason string) {
		checks[check] = reason
		ready = false
	}

	ctx, cancel := context.WithTimeout(r.Context(), readyDBTimeout)
	defer cancel()
	if _, err := s.pool.Exec(ctx, "SELECT 1"); err != nil {
		if ctx.Err() != nil {
			fail("database", "no answer within 1s")
		} else {
			fail("database", "unreachable")
		}
		fail("migrations", "unknown")
	} else if sv, err := db.CheckSchema(ctx, s.pool); err != nil {
		fail("migrations", "unknown")
	} else if sv.State != db.SchemaCurrent {
		fail("migrations", "schema "+sv.State.String())
	}

	switch {
	case !s.eng.Ready():
		fail("engine", "not started")
	case s.eng.Settings().Workers == 0:
		checks["engine"] = "disabled" // an API-only replica: ready without workers
	}
	if s.ShuttingDown() {
		fail("shutdown", "shutting down")
	}

	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
	return nil
}
