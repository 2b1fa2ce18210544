package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

// waitFor bounds every wait in these tests: generous for a loaded 2-core machine, never
// a fixed sleep.
const waitFor = 60 * time.Second

// vt0 is where the virtual clock of a test starts.
var vt0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// jumpClock is virtual time shared by the emulator's throttle, the pacer and the
// handlers' backoff: a wait moves the clock straight to its deadline. Time therefore
// advances exactly as far as the pacer's schedule and the retry policy say, so a client
// that sends faster than the emulator's budget meets the token bucket, and a run of a
// thousand paced lookups takes no real time. It records every handler sleep.
type jumpClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newJumpClock() *jumpClock { return &jumpClock{now: vt0} }

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// WaitUntil is the pacer's wait.
func (c *jumpClock) WaitUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// Sleep is the handlers' wait (jobs.Clock).
func (c *jumpClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *jumpClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// testBundle is one test's world: a fresh database, the iTunes emulator on a real
// listener, a client and pacer on the virtual clock, and a started engine running the
// handlers of jobs.All.
type testBundle struct {
	tdb      *pgtest.DB
	emu      *emuitunes.Server
	clock    *jumpClock
	pacer    *itunes.Pacer
	client   *itunes.Client
	eng      *engine.Engine
	handlers map[string]engine.Handler
	seq      atomic.Int64
	// patience bounds waits for runs. Defaults to waitFor.
	patience time.Duration
}

type setupOptions struct {
	emu   emuitunes.Options
	pacer itunes.PacerOptions
	// realTime runs the emulator, the pacer and the handlers on the wall clock instead
	// of the virtual one (benchmarks).
	realTime bool
}

// setup builds a testBundle. By default the emulator holds the universe's apps with the
// default throttle (1 200/min, burst 20), and the pacer runs at its 150 ms baseline with
// 8 requests in flight.
func setup(t testing.TB, mutate ...func(*setupOptions)) *testBundle {
	t.Helper()
	b := &testBundle{tdb: pgtest.New(t), clock: newJumpClock(), patience: waitFor}
	o := setupOptions{
		emu:   emuitunes.Options{State: universe.Default().ITunesState()},
		pacer: itunes.PacerOptions{},
	}
	for _, m := range mutate {
		m(&o)
	}
	var clock jobs.Clock = b.clock
	if o.realTime {
		clock = jobs.SystemClock()
	} else {
		o.emu.Clock = b.clock
		o.pacer.Clock = b.clock
	}
	var err error
	b.emu, err = emuitunes.New(o.emu)
	require.NoError(t, err)
	base, stop, err := emukit.Start(context.Background(), b.emu.Handler(), "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)

	b.pacer = itunes.NewPacer(o.pacer)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	b.client, err = itunes.New(itunes.Options{BaseURL: base, Pacer: b.pacer, Transport: tr})
	require.NoError(t, err)

	ins := &jobs.LateInserter{}
	b.handlers = jobs.All(jobs.Deps{Clock: clock, ITunes: b.client, Inserter: ins})
	b.eng, err = engine.New(b.tdb.Pool, engine.Config{Settings: testSettings(), Handlers: b.handlers, TestOnly: true})
	require.NoError(t, err)
	ins.Bind(b.eng.River())
	require.NoError(t, b.eng.Start(context.Background()))
	t.Cleanup(func() { b.eng.Close() }) //nolint:errcheck // nothing to report at the end of a test
	return b
}

var itunesNodeSeq atomic.Int64

func testSettings() engine.Settings {
	return engine.Settings{
		NodeID:            fmt.Sprintf("jobs-test-%d", itunesNodeSeq.Add(1)),
		Workers:           4,
		InternalWorkers:   1,
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		ProgressInterval:  50 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		StaleAfter:        10 * time.Second,
		ReapInterval:      time.Second,
		ShutdownTimeout:   5 * time.Second,
		CronProfile:       "off",
	}
}

// ---- seeding ----------------------------------------------------------------------------

type seededTeam struct {
	ID      string
	Members []string
}

type seededProject struct {
	ID     string
	TeamID string
}

type seededApp struct {
	ID        string
	ProjectID string
	Name      string
}

func (b *testBundle) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	_, err := b.tdb.Pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func (b *testBundle) scalar(t testing.TB, dst any, sql string, args ...any) {
	t.Helper()
	require.NoError(t, b.tdb.Pool.QueryRow(context.Background(), sql, args...).Scan(dst))
}

// seedTeam inserts a team with the given number of members.
func (b *testBundle) seedTeam(t testing.TB, members int) seededTeam {
	t.Helper()
	n := b.seq.Add(1)
	var tm seededTeam
	b.scalar(t, &tm.ID, `INSERT INTO teams (name, slug) VALUES ($1, $1) RETURNING id`, fmt.Sprintf("team-%d", n))
	for i := range members {
		var uid string
		b.scalar(t, &uid, `INSERT INTO users (email, name) VALUES ($1, 'Member') RETURNING id`, fmt.Sprintf("u%d-%d@example.com", n, i))
		b.exec(t, `INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'member')`, tm.ID, uid)
		tm.Members = append(tm.Members, uid)
	}
	return tm
}

func (b *testBundle) seedProject(t testing.TB, team seededTeam) seededProject {
	t.Helper()
	p := seededProject{TeamID: team.ID}
	b.scalar(t, &p.ID, `INSERT INTO projects (team_id, name, slug, color) VALUES ($1, $2, $2, '#000000') RETURNING id`,
		team.ID, fmt.Sprintf("project-%d", b.seq.Add(1)))
	return p
}

// appSpec describes an app row; bundle "" stores NULL.
type appSpec struct {
	Name     string
	Platform string
	Bundle   string
	AppleID  *int64
	Version  *string
}

// seedApp inserts an app whose created_at follows every app seeded before it, so the
// handlers' creation order is the seeding order.
func (b *testBundle) seedApp(t testing.TB, p seededProject, s appSpec) seededApp {
	t.Helper()
	if s.Platform == "" {
		s.Platform = "apple"
	}
	if s.Name == "" {
		s.Name = fmt.Sprintf("App %d", b.seq.Load()+1)
	}
	a := seededApp{ProjectID: p.ID, Name: s.Name}
	b.scalar(t, &a.ID, `INSERT INTO apps (team_id, project_id, name, platform, bundle_id, apple_app_store_id, latest_app_version, created_at)
		VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, now() + make_interval(secs => $8))
		RETURNING id`, p.TeamID, p.ID, s.Name, s.Platform, s.Bundle, s.AppleID, s.Version, float64(b.seq.Add(1))/1000)
	return a
}

// ---- running ----------------------------------------------------------------------------

// enqueue creates a run from the system CLI entry point.
func (b *testBundle) enqueue(t testing.TB, jobType string, params map[string]any) engine.RunRecord {
	t.Helper()
	rec, err := b.eng.Enqueue(context.Background(), engine.EnqueueRequest{
		JobType: jobType, Entry: jobtype.EntryCLI, Params: params, TriggeredBy: "manual:cli:test@host",
	})
	require.NoError(t, err)
	return rec
}

// run enqueues a run and waits for its end.
func (b *testBundle) run(t testing.TB, jobType string, params map[string]any) engine.RunRecord {
	t.Helper()
	return b.wait(t, b.enqueue(t, jobType, params).ID)
}

// wait waits until the run is terminal.
func (b *testBundle) wait(t testing.TB, id string) engine.RunRecord {
	t.Helper()
	return b.waitUntil(t, id, func(r engine.RunRecord) bool { return r.Status.Terminal() })
}

func (b *testBundle) waitUntil(t testing.TB, id string, cond func(engine.RunRecord) bool) engine.RunRecord {
	t.Helper()
	sub := b.eng.Subscribe(id)
	defer sub.Close()
	deadline := time.After(b.patience)
	for {
		rec, err := b.eng.Get(context.Background(), id)
		require.NoError(t, err)
		if cond(rec) {
			return rec
		}
		select {
		case <-sub.C:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("run %s never reached the expected state; last: status=%s error=%v", id, rec.Status, rec.Error)
		}
	}
}

// counters reads a run's integer result fields.
func counters(t *testing.T, rec engine.RunRecord) map[string]int64 {
	t.Helper()
	require.NotNil(t, rec.Result, "run %s has no result (status %s, error %v)", rec.ID, rec.Status, rec.Error)
	out := map[string]int64{}
	for k, v := range rec.Result {
		switch n := v.(type) {
		case float64:
			out[k] = int64(n)
		case json.Number:
			i, err := n.Int64()
			require.NoError(t, err)
			out[k] = i
		case int64:
			out[k] = n
		}
	}
	return out
}

func requireCompleted(t *testing.T, rec engine.RunRecord) {
	t.Helper()
	require.Equal(t, "completed", string(rec.Status), "error: %v", rec.Error)
}

// rows returns the values a query produced, each row as a slice.
func (b *testBundle) rows(t *testing.T, sql string, args ...any) [][]any {
	t.Helper()
	rs, err := b.tdb.Pool.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	require.NoError(t, err)
	return out
}
