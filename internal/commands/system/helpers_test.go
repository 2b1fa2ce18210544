package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone below, even on machines without a zone database

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

// TestMain runs the package in New York time, and the tests inject TZ=America/New_York
// too: schedules must come out in UTC whatever the zone, and anything that let
// time.Local leak in would show.
func TestMain(m *testing.M) {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	time.Local = loc
	pgtest.Main(m)
}

type result struct {
	ExitCode cmdutil.ExitCode
	Stdout   *bytes.Buffer
	Stderr   *bytes.Buffer
}

type runOpts struct {
	handlers localjobs.Handlers
	signals  <-chan os.Signal
	tty      bool
	stdin    string
}

// run executes one command line in process with the environment env and nothing else of
// the process environment.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return runWith(t, env, runOpts{}, args...)
}

func runWith(t *testing.T, env map[string]string, o runOpts, args ...string) result {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(o.stdin)
	if o.tty {
		ios.SetStdoutTTY(true)
		ios.SetStderrTTY(true)
		ios.SetStdinTTY(true)
		ios.SetWidth(160)
	}
	lookup := func(k string) (string, bool) {
		v, ok := env[k]
		if !ok && k == "NO_COLOR" && o.tty {
			// Terminal layouts are compared as plain text.
			return "1", true
		}
		return v, ok
	}
	opts := commands.Options{
		Args:          args,
		IO:            ios,
		LookupEnvFunc: lookup,
		NowFunc:       time.Now,
		Signals:       o.signals,
	}
	if o.handlers != nil {
		opts.JobHandlers = func(localjobs.HandlerDeps) (localjobs.Handlers, error) { return o.handlers, nil }
	}
	code := commands.Run(context.Background(), opts)
	t.Logf("owlmetry %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	return result{ExitCode: code, Stdout: out, Stderr: errOut}
}

type bundle struct {
	tdb *pgtest.DB
	env map[string]string
}

// setup gives a test its own migrated database and the environment that points the CLI
// at it, with short leases and a New York TZ.
func setup(t *testing.T) bundle {
	t.Helper()
	tdb := pgtest.New(t)
	return bundle{tdb: tdb, env: map[string]string{
		"DATABASE_URL":                tdb.URL,
		"TZ":                          "America/New_York",
		"OWLMETRY_HEARTBEAT_INTERVAL": "200ms",
		"OWLMETRY_STALE_AFTER":        "2s",
		"OWLMETRY_PROGRESS_INTERVAL":  "50ms",
	}}
}

func (b bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.tdb.Pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func (b bundle) scalar(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, b.tdb.Pool.QueryRow(context.Background(), sql, args...).Scan(&s))
	return s
}

// insertRun writes a fixture row for states the engine reaches only over time (a run
// that finished long ago, an expired lease).
func (b bundle) insertRun(t *testing.T, jobType, status, mod string, args ...any) string {
	t.Helper()
	id := b.scalar(t, `INSERT INTO job_runs (job_type, status, triggered_by, started_at, completed_at, heartbeat_at, owner_node, owner_instance)
		VALUES ($1, $2::text::job_status, 'schedule',
		        CASE WHEN $2::text <> 'pending' THEN now() END,
		        CASE WHEN $2::text IN ('completed', 'failed', 'cancelled') THEN now() END,
		        CASE WHEN $2::text = 'running' THEN now() END,
		        CASE WHEN $2::text = 'running' THEN 'gone-node' END,
		        CASE WHEN $2::text = 'running' THEN gen_random_uuid() END)
		RETURNING id::text`, jobType, status)
	if mod != "" {
		b.exec(t, `UPDATE job_runs SET `+mod+` WHERE id = $1`, append([]any{id}, args...)...)
	}
	return id
}

// decode reads stdout as one JSON document.
func decode(t *testing.T, res result, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), v), res.Stdout.String())
}

// okHandler completes at once with a little progress.
func okHandler() engine.Handler {
	return engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
		run.Progress.Report(2, 2, "ensured events_2026_12")
		return engine.Result{"created": []string{"events_2026_12"}}, nil
	})
}

// awaitCondition polls a boolean query until it is true or 20 s have passed. It runs in
// helper goroutines, which cannot fail the test; the command under test then times out
// its own assertions.
func (b bundle) awaitCondition(sql string, args ...any) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		if err := b.tdb.Pool.QueryRow(context.Background(), sql, args...).Scan(&ok); err == nil && ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// step is one progress report of a scripted run.
type step struct {
	processed, total int64
	message          string
}

// scripted is a test handler for a registry type: the run reports its steps pause
// apart, then blocks until its context ends (block), fails, or completes.
type scripted struct {
	steps   []step
	pause   time.Duration
	block   bool
	fail    string
	started chan string
}

func (s *scripted) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	if s.started != nil {
		s.started <- run.ID
	}
	var done int64
	for i, st := range s.steps {
		if i > 0 && s.pause > 0 {
			select {
			case <-time.After(s.pause):
			case <-ctx.Done():
				return nil, engine.Stopped(engine.Result{"processed": done})
			}
		}
		run.Progress.Report(st.processed, st.total, st.message)
		done = st.processed
	}
	if s.block {
		<-ctx.Done()
		return nil, engine.Stopped(engine.Result{"processed": done})
	}
	if s.fail != "" {
		return nil, errors.New(s.fail)
	}
	return engine.Result{"processed": done}, nil
}

// waitStarted returns the id of the next run the handler started.
func (s *scripted) waitStarted(t *testing.T) string {
	t.Helper()
	select {
	case id := <-s.started:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("the handler never started")
		return ""
	}
}
