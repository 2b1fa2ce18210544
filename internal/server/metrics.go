package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// activeEvery is how long the owlmetry_job_runs_active values are reused (engine.md
// §16.2): scrapes from several collectors cost one query per window.
const activeEvery = 5 * time.Second

// serveMetrics answers GET /metrics (api.md §7.13) in the Prometheus text format. With
// OWLMETRY_METRICS_TOKEN set it wants that token as a bearer token.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if tok := s.deps.MetricsToken; tok != "" {
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			return errorf(http.StatusUnauthorized, msgMissingAuth)
		}
		parts := strings.Split(values[0], " ")
		if len(parts) != 2 || !strings.EqualFold(parts[0], "Bearer") || parts[1] == "" {
			return errorf(http.StatusUnauthorized, msgInvalidAuthFormat)
		}
		// Comparing digests keeps the comparison constant-time in the token's length too.
		got, want := sha256.Sum256([]byte(parts[1])), sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return errorf(http.StatusUnauthorized, "Invalid metrics token")
		}
	}
	s.active.refresh(r.Context(), s.log)
	promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// activeGauge fills owlmetry_job_runs_active from the database: pending runs are the
// queue depth, running ones the work in progress, across all replicas.
type activeGauge struct {
	pool  *pgxpool.Pool
	gauge *prometheus.GaugeVec
	now   func() time.Time

	mu sync.Mutex
	at time.Time
}

func (a *activeGauge) refresh(ctx context.Context, log *slog.Logger) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if !a.at.IsZero() && now.Sub(a.at) < activeEvery && now.After(a.at) {
		return
	}
	rows, err := a.pool.Query(ctx, `SELECT job_type, status::text, count(*) FROM job_runs
		WHERE status IN ('pending', 'running') GROUP BY job_type, status`)
	if err != nil {
		log.Warn("metrics: count active runs", "error", err)
		return
	}
	defer rows.Close()
	counts := map[[2]string]float64{}
	for rows.Next() {
		var jobType, status string
		var n int64
		if err := rows.Scan(&jobType, &status, &n); err != nil {
			log.Warn("metrics: count active runs", "error", err)
			return
		}
		counts[[2]string{jobType, status}] = float64(n)
	}
	if rows.Err() != nil {
		log.Warn("metrics: count active runs", "error", rows.Err())
		return
	}
	a.gauge.Reset()
	// Every type shows both series, zeros included, so dashboards need no absent().
	for _, t := range jobtype.All() {
		for _, st := range []apitype.Status{apitype.StatusPending, apitype.StatusRunning} {
			a.gauge.WithLabelValues(t.Name, string(st)).Set(counts[[2]string{t.Name, string(st)}])
		}
	}
	a.at = now
}
