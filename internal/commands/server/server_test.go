package server_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/apikey"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands"
	servercmd "github.com/owlmetry/owlmetry/internal/commands/server"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

// asOwlmetry makes the test binary behave as the owlmetry binary when a test re-executes
// it, so the process tests need no separate build.
const asOwlmetry = "OWLMETRY_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asOwlmetry) == "1" {
		os.Exit(int(commands.Main()))
	}
	code := m.Run()
	pgtest.Shutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const secretKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// baseEnv is the environment a server needs, without a database.
func baseEnv() map[string]string {
	return map[string]string{"JWT_SECRET": "test-secret", "OWLMETRY_SECRET_KEY": secretKey}
}

type result struct {
	code   cmdutil.ExitCode
	stdout string
	stderr string
}

// runInProcess runs `owlmetry <args>` through commands.Run with env as the whole
// environment.
func runInProcess(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	code := commands.Run(context.Background(), commands.Options{
		Args: args, IO: ios,
		LookupEnvFunc: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	t.Logf("owlmetry %s → %d\nstderr:\n%s", strings.Join(args, " "), code, errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func with(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestSettingsRefusal checks that every invalid or missing setting stops the server
// before anything starts, with exactly one `error:` line naming it and exit 1.
func TestSettingsRefusal(t *testing.T) {
	t.Parallel()
	env := with(baseEnv(), "DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		line string
	}{
		{"no jwt secret", with(env, "JWT_SECRET", "<unset>"), nil, "error: JWT_SECRET is required: the HS256 key that signs user tokens"},
		{"blank jwt secret", with(env, "JWT_SECRET", "  "), nil, "error: JWT_SECRET is required: the HS256 key that signs user tokens"},
		{"no secret key", with(env, "OWLMETRY_SECRET_KEY", "<unset>"), nil, "error: OWLMETRY_SECRET_KEY is required: 32 random bytes as 64 hex characters or base64"},
		{"short secret key", with(env, "OWLMETRY_SECRET_KEY", "abcd"), nil, "error: invalid OWLMETRY_SECRET_KEY: must be 32 bytes as 64 hex characters or base64"},
		{"secret key of 31 bytes", with(env, "OWLMETRY_SECRET_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="), nil, "error: invalid OWLMETRY_SECRET_KEY: must be 32 bytes as 64 hex characters or base64"},
		{"no database", with(env, "DATABASE_URL", "<unset>"), nil, "error: a database is required: pass --database-url or set OWLMETRY_DATABASE_URL or DATABASE_URL"},
		{"log format", with(env, "OWLMETRY_LOG_FORMAT", "xml"), nil, `error: invalid OWLMETRY_LOG_FORMAT "xml": auto, text or json`},
		{"log format flag", env, []string{"--log-format", "xml"}, `error: invalid --log-format "xml": auto, text or json`},
		{"log level", with(env, "OWLMETRY_LOG_LEVEL", "loud"), nil, `error: invalid OWLMETRY_LOG_LEVEL "loud": debug, info, warn or error`},
		{"log level offset", env, []string{"--log-level", "info+2"}, `error: invalid --log-level "info+2": debug, info, warn or error`},
		{"listen", with(env, "OWLMETRY_LISTEN", "4114"), nil, `error: invalid OWLMETRY_LISTEN "4114": a host:port address such as :4114 or 127.0.0.1:4114`},
		{"listen port", env, []string{"--listen", ":99999"}, `error: invalid --listen ":99999": a host:port address such as :4114 or 127.0.0.1:4114`},
		{"workers env", with(env, "OWLMETRY_WORKERS", "many"), nil, `error: invalid OWLMETRY_WORKERS "many": an integer ≥ 0`},
		{"workers flag", env, []string{"--workers", "-1"}, `error: invalid --workers "-1": an integer ≥ 0`},
		{"pool too small", with(env, "OWLMETRY_DB_MAX_CONNS", "15"), nil, `error: invalid OWLMETRY_DB_MAX_CONNS "15": must be at least the worker count plus 10 (20)`},
		{"pool too small for flag", env, []string{"--workers", "31"}, `error: invalid OWLMETRY_DB_MAX_CONNS "40": must be at least the worker count plus 10 (41)`},
		{"sse streams", with(env, "OWLMETRY_SSE_MAX_STREAMS", "0"), nil, `error: invalid OWLMETRY_SSE_MAX_STREAMS "0": an integer ≥ 1`},
		{"stale after", with(env, "OWLMETRY_STALE_AFTER", "10s"), nil, `error: invalid OWLMETRY_STALE_AFTER "10s": at least three times OWLMETRY_HEARTBEAT_INTERVAL (30s)`},
		{"fetch cooldown", with(env, "OWLMETRY_FETCH_COOLDOWN", "fast"), nil, `error: invalid OWLMETRY_FETCH_COOLDOWN "fast": a duration such as 10s, at least 1ms`},
		{"cron profile", with(env, "OWLMETRY_CRON_PROFILE", "weekly"), nil, `error: invalid OWLMETRY_CRON_PROFILE "weekly": prod, dev or off`},
		{"fan-out concurrency", with(env, "OWLMETRY_FANOUT_CONCURRENCY", "0"), nil, `error: invalid OWLMETRY_FANOUT_CONCURRENCY "0": an integer from 1 to 32`},
		{"smtp port", with(env, "SMTP_PORT", "abc"), nil, `error: invalid SMTP_PORT "abc": want a port number from 1 to 65535`},
		{"alert mode", with(env, "SYSTEM_JOBS_ALERT_ON", "some"), nil, `error: invalid SYSTEM_JOBS_ALERT_ON "some": want all or failures`},
		{"shutdown timeout", env, []string{"--shutdown-timeout", "0s"}, `error: invalid --shutdown-timeout "0s": a positive duration such as 25s`},
		{"bad database url", with(env, "DATABASE_URL", "postgres://%zz"), []string{"--listen", "127.0.0.1:0"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Every case but the last fails before the listener is bound.
			res := runInProcess(t, c.env, append([]string{"server"}, c.args...)...)
			require.Equal(t, cmdutil.ExitFailure, res.code)
			require.Empty(t, res.stdout)
			lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
			require.Len(t, lines, 1, "one line: %q", res.stderr)
			if c.line != "" {
				require.Equal(t, c.line, lines[0])
			} else {
				require.True(t, strings.HasPrefix(lines[0], "error: invalid database URL"), lines[0])
			}
			require.NotContains(t, res.stderr, secretKey, "the key is never echoed")
		})
	}

	t.Run("bad flag values are usage errors", func(t *testing.T) {
		t.Parallel()
		res := runInProcess(t, env, "server", "--workers", "lots")
		require.Equal(t, cmdutil.ExitUsage, res.code)
	})
}

// TestNewCmdServer checks flag parsing alone.
func TestNewCmdServer(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	f := cmdutil.NewFactory(ios, nil, nil, nil)
	var got *servercmd.ServerOptions
	cmd := servercmd.NewCmdServer(f, func(_ context.Context, o *servercmd.ServerOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--listen", "127.0.0.1:9", "--workers", "0", "--no-scheduler", "--node-id", "n1",
		"--no-migrate", "--shutdown-timeout", "40s", "--log-format", "json", "--log-level", "debug", "--database-url", "postgres://x"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	require.NoError(t, cmd.Execute())
	require.Equal(t, "127.0.0.1:9", got.Listen)
	require.Equal(t, 0, got.Workers)
	require.True(t, got.NoScheduler)
	require.Equal(t, "n1", got.NodeID)
	require.True(t, got.NoMigrate)
	require.Equal(t, 40*time.Second, got.ShutdownTimeout)
	require.Equal(t, "json", got.LogFormat)
	require.Equal(t, "debug", got.LogLevel)
	require.Equal(t, "postgres://x", got.Database.URL)

	cmd = servercmd.NewCmdServer(f, func(context.Context, *servercmd.ServerOptions) error { return nil })
	cmd.SetArgs([]string{"extra"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	require.Error(t, cmd.Execute(), "no arguments")
}

// process is `owlmetry server` running as a child process.
type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	logged chan string // every stderr line
	done   chan struct{}
	code   int
}

func startProcess(t *testing.T, env map[string]string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"server"}, args...)...)
	cmd.Env = []string{asOwlmetry + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &process{cmd: cmd, logged: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.logged <- sc.Text():
			default:
			}
		}
		err := cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		_ = err
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill() //nolint:errcheck // a test that failed early leaves it running
			<-p.done
		}
		p.mu.Lock()
		t.Logf("server stderr:\n%s", strings.Join(p.lines, "\n"))
		p.mu.Unlock()
	})
	return p
}

// waitLog waits for a JSON log line with msg and returns it decoded.
func (p *process) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line := <-p.logged:
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		case <-p.done:
			t.Fatalf("server exited (%d) before logging %q", p.code, msg)
		case <-deadline:
			t.Fatalf("no %q log line within 60s", msg)
		}
	}
}

func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(60 * time.Second):
		t.Fatal("server did not exit within 60s")
		return -1
	}
}

func (p *process) stderr() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "never ready")
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func serverEnv(tdb *pgtest.DB) map[string]string {
	return with(baseEnv(), "DATABASE_URL", tdb.URL, "OWLMETRY_CRON_PROFILE", "off",
		"OWLMETRY_NODE_ID", "proc-"+hex.EncodeToString([]byte(time.Now().Format("150405.000000"))))
}

func instanceRows(t *testing.T, tdb *pgtest.DB) int {
	t.Helper()
	var n int
	require.NoError(t, tdb.Pool.QueryRow(context.Background(), `SELECT count(*) FROM owlmetry_instances`).Scan(&n))
	return n
}

// TestServerProcess runs the real binary: ready, serving, and a graceful SIGTERM.
func TestServerProcess(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	p := startProcess(t, serverEnv(tdb), "--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "2")
	listening := p.waitLog(t, "listening")
	base := "http://" + listening["addr"].(string)
	waitReady(t, base)
	require.Equal(t, 1, instanceRows(t, tdb))

	// The API is up: a key seeded in the database authenticates.
	ctx := context.Background()
	var teamID, userID string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO teams (name, slug) VALUES ('T', 't') RETURNING id`).Scan(&teamID))
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ('u@x', 'U') RETURNING id`).Scan(&userID))
	token := "owl_agent_" + strings.Repeat("ab", 24)
	_, err := tdb.Pool.Exec(ctx, `INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions)
		VALUES ('owl_agent_abab…', $1, 'agent', $2, 'k', $3, '["jobs:read"]')`, apikey.Hash(token), teamID, userID)
	require.NoError(t, err)
	r, err := http.NewRequest(http.MethodGet, base+"/v1/teams/"+teamID+"/jobs", nil)
	require.NoError(t, err)
	r.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"job_runs":[],"cursor":null,"has_more":false}`, string(body))

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, p.wait(t))
	require.Equal(t, 0, instanceRows(t, tdb), "the instance row is gone")
	for _, line := range p.stderr() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "every log line is JSON: %s", line)
		require.NotContains(t, line, secretKey)
	}
	_, err = http.Get(base + "/healthz")
	require.Error(t, err, "the listener is closed")
}

// TestServerProcessPortTaken checks the exact start-up error of cli.md §11.1.
func TestServerProcessPortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	addr := ln.Addr().String()
	p := startProcess(t, with(baseEnv(), "DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"), "--listen", addr)
	require.Equal(t, 1, p.wait(t))
	require.Equal(t, []string{"error: cannot listen on " + addr + ": address already in use"}, p.stderr())
}

// TestServerProcessNoJWTSecret checks the one-line refusal of a server without its key.
func TestServerProcessNoJWTSecret(t *testing.T) {
	t.Parallel()
	p := startProcess(t, map[string]string{"OWLMETRY_SECRET_KEY": secretKey, "DATABASE_URL": "postgres://x@127.0.0.1:1/x"})
	require.Equal(t, 1, p.wait(t))
	require.Equal(t, []string{"error: JWT_SECRET is required: the HS256 key that signs user tokens"}, p.stderr())
}

// TestServerProcessSecondSignal holds a request open past the first SIGTERM, so the
// drain is still waiting when the second arrives: the server stops at once, exit 1.
func TestServerProcessSecondSignal(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	ctx := context.Background()
	var teamID, userID, runID string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO teams (name, slug) VALUES ('T', 't') RETURNING id`).Scan(&teamID))
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ('u@x', 'U') RETURNING id`).Scan(&userID))
	token := "owl_agent_" + strings.Repeat("cd", 24)
	_, err := tdb.Pool.Exec(ctx, `INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions)
		VALUES ('owl_agent_cdcd…', $1, 'agent', $2, 'k', $3, '["jobs:write"]')`, apikey.Hash(token), teamID, userID)
	require.NoError(t, err)
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO job_runs (job_type, team_id, triggered_by) VALUES ('apple_ads_sync', $1, 'schedule') RETURNING id`,
		teamID).Scan(&runID))

	p := startProcess(t, serverEnv(tdb), "--listen", "127.0.0.1:0", "--log-format", "json")
	base := "http://" + p.waitLog(t, "listening")["addr"].(string)
	waitReady(t, base)

	// Lock the run so that a cancel request waits on it.
	tx, err := tdb.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT 1 FROM job_runs WHERE id = $1 FOR UPDATE`, runID)
	require.NoError(t, err)
	inFlight := make(chan error, 1)
	go func() {
		r, _ := http.NewRequest(http.MethodPost, base+"/v1/jobs/"+runID+"/cancel", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		if err == nil {
			resp.Body.Close()
		}
		inFlight <- err
	}()
	waitLocked(t, tdb, runID)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	p.waitLog(t, "shutting down")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 1, p.wait(t))
	lines := p.stderr()
	require.Equal(t, "error: stopped at once by a second signal", lines[len(lines)-1])
	require.Equal(t, 0, instanceRows(t, tdb), "the instance row is gone")
	<-inFlight
}

// waitLocked waits until a session waits for the row lock of a run.
func waitLocked(t *testing.T, tdb *pgtest.DB, runID string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		require.NoError(t, tdb.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		if waiting > 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "the cancel request never waited for the lock of %s", runID)
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}
