package commands_test

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

// devDataDir is a data dir the postgres user can reach when the tests run as root.
func devDataDir(t *testing.T) string {
	t.Helper()
	base := ""
	if os.Geteuid() == 0 {
		base = "/var/tmp"
	}
	dir, err := os.MkdirTemp(base, "owldev-e2e-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// owlmetry dev as a subprocess: ready, a waited ratings sync through the dev profile it
// wrote, then SIGINT leaves no Postgres process and no listener behind.
func TestDevStackEndToEnd(t *testing.T) {
	t.Parallel()
	dataDir := devDataDir(t)
	home := t.TempDir()
	env := map[string]string{"HOME": home, "PATH": os.Getenv("PATH")}

	dev := owlmetryProcess(t, []string{"HOME=" + home}, "dev", "--data-dir", dataDir, "--port", "0")
	stderr := &owltest.SyncBuffer{}
	dev.Stderr = stderr
	require.NoError(t, dev.Start())
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	t.Cleanup(func() {
		if dev.ProcessState == nil {
			dev.Process.Kill() //nolint:errcheck
		}
	})

	res := run(t, env, "dev", "env", "--data-dir", dataDir, "--timeout", "3m", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, "dev log:\n%s", stderr.String())
	var state struct {
		Endpoint    string            `json:"endpoint"`
		APIKey      string            `json:"api_key"`
		ProjectID   string            `json:"project_id"`
		DatabaseURL string            `json:"database_url"`
		Emulators   map[string]string `json:"emulators"`
		Env         map[string]string `json:"env"`
	}
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &state))
	require.True(t, strings.HasPrefix(state.APIKey, "owl_agent_"))
	require.Equal(t, state.Emulators["itunes"], state.Env["OWLMETRY_ITUNES_API_URL"])

	// The dev profile makes the next command work with no flags and no variables.
	_, err := os.Stat(filepath.Join(home, ".owlmetry", "config.json"))
	require.NoError(t, err, "the dev profile was written")
	res = run(t, env, "ratings", "sync", "--wait", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var doc struct {
		Syncing bool             `json:"syncing"`
		JobRuns []apitype.JobRun `json:"job_runs"`
	}
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &doc))
	require.True(t, doc.Syncing)
	require.Len(t, doc.JobRuns, 1)
	run0 := doc.JobRuns[0]
	require.Equal(t, apitype.StatusCompleted, run0.Status)
	require.Equal(t, state.ProjectID, *run0.ProjectID)
	var result map[string]any
	require.NoError(t, json.Unmarshal(run0.Result, &result))
	require.EqualValues(t, 1, result["apps_processed"], "result: %v", result)
	require.EqualValues(t, 249, result["storefronts_fetched"], "every storefront was asked")
	require.EqualValues(t, 5, result["rows_upserted"], "Snapframe is rated in five storefronts")
	require.EqualValues(t, 0, result["throttle_hits"])
	require.Empty(t, res.Stderr.String(), "nothing but the JSON document with --format json")

	// SIGINT stops everything and exits 0.
	require.NoError(t, dev.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "dev log:\n%s", stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("owlmetry dev did not stop; log:\n%s", stderr.String())
	}
	out, _ := exec.Command("pgrep", "-f", "postgres.*"+dataDir).Output()
	require.Empty(t, strings.TrimSpace(string(out)), "no postgres process left")
	for _, u := range []string{state.Endpoint, state.DatabaseURL, state.Emulators["itunes"]} {
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		conn, err := net.DialTimeout("tcp", parsed.Host, time.Second)
		if err == nil {
			conn.Close()
		}
		require.Error(t, err, "nothing listens on %s any more", parsed.Host)
	}
}
