// Command apiload measures the latency of the owlmetry API under concurrent clients:
// listing a team's runs and triggering runs, each for a fixed time, and prints p50, p99,
// mean and throughput per operation.
//
// It brings up the real stack in process on a fresh database of the Postgres server at
// --database-url (default $TEST_DATABASE_URL): migrations, the engine with River, and the
// API on a real listener at 127.0.0.1. The only stand-in is the handler of apple_ads_sync,
// which completes at once, so triggered runs end quickly and their projects can be
// triggered again. bench/api-load.sh starts a private Postgres around it.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/apikey"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

type options struct {
	databaseURL string
	clients     int
	duration    time.Duration
	runs        int
	projects    int
	workers     int
}

func run() error {
	var o options
	flag.StringVar(&o.databaseURL, "database-url", os.Getenv("TEST_DATABASE_URL"), "Postgres server to create the bench database on")
	flag.IntVar(&o.clients, "clients", 50, "concurrent clients")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each phase runs")
	flag.IntVar(&o.runs, "runs", 5000, "runs in the listed team")
	flag.IntVar(&o.projects, "projects", 200, "projects per client for triggers; a client reuses them round robin, so too few turn triggers into 409s while earlier runs are still queued")
	flag.IntVar(&o.workers, "workers", 10, "engine workers")
	flag.Parse()
	if o.databaseURL == "" {
		return errors.New("no database: pass --database-url or run under bench/api-load.sh")
	}
	ctx := context.Background()

	dbURL, drop, err := createDatabase(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer drop()
	pool, err := db.OpenPool(ctx, dbURL, db.PoolOptions{ApplicationName: "owlmetry-apiload", MaxConns: int32(o.workers + 30)})
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := db.Migrate(ctx, pool, db.MigrateOptions{}); err != nil {
		return err
	}

	settings := engine.DefaultSettings()
	settings.NodeID, settings.Workers, settings.CronProfile = "apiload", o.workers, "off"
	settings.DBMaxConns = o.workers + 30
	noop := engine.HandlerFunc(func(context.Context, *engine.Run) (engine.Result, error) {
		return engine.Result{"_silent": true}, nil
	})
	m := metrics.New()
	quiet := slog.New(slog.DiscardHandler)
	eng, err := engine.New(pool, engine.Config{Settings: settings, Metrics: m, Logger: quiet,
		Handlers: map[string]engine.Handler{jobtype.AppleAdsSync: noop}})
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		return err
	}
	defer eng.Stop(ctx) //nolint:errcheck
	api := server.New(server.Deps{Engine: eng, JWTSecret: []byte("apiload"), Metrics: m, Logger: quiet})
	defer api.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := api.HTTPServer()
	go hs.Serve(ln)        //nolint:errcheck // ends with Shutdown
	defer hs.Shutdown(ctx) //nolint:errcheck
	base := "http://" + ln.Addr().String()

	seed, err := seedData(ctx, pool, o)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: o.clients * 2, MaxIdleConnsPerHost: o.clients * 2}}

	fmt.Printf("owlmetry API load: %d clients, %s per phase, %d runs listed, %d engine workers\n",
		o.clients, o.duration, o.runs, o.workers)

	list := phase(o.clients, o.duration, func(c, i int) (int, error) {
		q := url.Values{"limit": {"50"}}
		if i%4 == 3 {
			q.Set("status", "completed")
		}
		return do(client, http.MethodGet, base+"/v1/teams/"+seed.teamID+"/jobs?"+q.Encode(), seed.token, nil)
	})
	list.print("list (GET /v1/teams/{teamId}/jobs?limit=50)")

	trigger := phase(o.clients, o.duration, func(c, i int) (int, error) {
		project := seed.projects[c*o.projects+i%o.projects]
		body := []byte(`{"job_type":"apple_ads_sync","project_id":"` + project + `"}`)
		return do(client, http.MethodPost, base+"/v1/teams/"+seed.teamID+"/jobs/trigger", seed.token, body)
	})
	trigger.print("trigger (POST /v1/teams/{teamId}/jobs/trigger)")
	return nil
}

// createDatabase makes a fresh database next to adminURL's and returns its URL and a
// function that drops it.
func createDatabase(ctx context.Context, adminURL string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect: %w", err)
	}
	name := "owlbench_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		admin.Close(ctx)
		return "", nil, err
	}
	cfg := admin.Config()
	u := &url.URL{Scheme: "postgres", User: url.UserPassword(cfg.User, cfg.Password), Path: "/" + name}
	q := url.Values{}
	if len(cfg.Host) > 0 && cfg.Host[0] == '/' {
		q.Set("host", cfg.Host)
		u.Host = fmt.Sprintf("localhost:%d", cfg.Port)
	} else {
		u.Host = fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	}
	u.RawQuery = q.Encode()
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)") //nolint:errcheck
		admin.Close(dctx)
	}
	return u.String(), drop, nil
}

type seeded struct {
	teamID   string
	token    string
	projects []string
}

// seedData creates the team, its agent key, the projects the triggers use and the
// history of runs the list pages through.
func seedData(ctx context.Context, pool *pgxpool.Pool, o options) (seeded, error) {
	var s seeded
	var userID string
	if err := pool.QueryRow(ctx, `INSERT INTO teams (name, slug) VALUES ('Load', 'load') RETURNING id`).Scan(&s.teamID); err != nil {
		return s, err
	}
	if err := pool.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ('load@example.com', 'Load') RETURNING id`).Scan(&userID); err != nil {
		return s, err
	}
	s.token = "owl_agent_" + randomHex(24)
	if _, err := pool.Exec(ctx, `INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions)
		VALUES ('owl_agent_…', $1, 'agent', $2, 'load', $3, '["jobs:read", "jobs:write"]')`,
		apikey.Hash(s.token), s.teamID, userID); err != nil {
		return s, err
	}
	rows, err := pool.Query(ctx, `INSERT INTO projects (team_id, name, slug, color)
		SELECT $1, 'Project', 'p-' || g, '#6366f1' FROM generate_series(1, $2) g RETURNING id`, s.teamID, o.clients*o.projects)
	if err != nil {
		return s, err
	}
	if s.projects, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return s, err
	}
	_, err = pool.Exec(ctx, `INSERT INTO job_runs (job_type, status, team_id, project_id, triggered_by, created_at, started_at, completed_at)
		SELECT 'apple_ads_sync', 'completed', $1, $2::uuid, 'schedule', now() - make_interval(secs => g),
		       now() - make_interval(secs => g), now() - make_interval(secs => g) + interval '1 second'
		  FROM generate_series(1, $3) g`, s.teamID, s.projects[0], o.runs)
	return s, err
}

// phase runs f from clients goroutines for d and collects the latencies by status.
func phase(clients int, d time.Duration, f func(client, i int) (int, error)) *stats {
	st := &stats{byStatus: map[int][]time.Duration{}}
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				t0 := time.Now()
				code, err := f(c, i)
				st.add(time.Since(t0), code, err)
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return st
}

type stats struct {
	mu       sync.Mutex
	all      []time.Duration
	byStatus map[int][]time.Duration
	errors   int
	elapsed  time.Duration
}

func (s *stats) add(d time.Duration, code int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errors++
		return
	}
	s.all = append(s.all, d)
	s.byStatus[code] = append(s.byStatus[code], d)
}

func (s *stats) print(name string) {
	fmt.Printf("%s\n  requests %d (%.0f/s), transport errors %d\n", name, len(s.all),
		float64(len(s.all))/s.elapsed.Seconds(), s.errors)
	line := func(label string, ds []time.Duration) {
		slices.Sort(ds)
		n := len(ds)
		if n == 0 {
			return
		}
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		pct := func(p float64) time.Duration { return ds[min(n-1, int(float64(n)*p))].Round(10 * time.Microsecond) }
		fmt.Printf("  %-6s n=%-6d p50 %-9s p90 %-9s p99 %-9s max %-9s mean %s\n", label, n,
			pct(0.50), pct(0.90), pct(0.99), ds[n-1].Round(10*time.Microsecond), (sum / time.Duration(n)).Round(10*time.Microsecond))
	}
	line("all", s.all)
	codes := make([]int, 0, len(s.byStatus))
	for c := range s.byStatus {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		line(fmt.Sprint(c), s.byStatus[c])
	}
}

func do(c *http.Client, method, target, token string, body []byte) (int, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck
	return hex.EncodeToString(b)
}
