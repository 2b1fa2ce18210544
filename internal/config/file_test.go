package config

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const sample = `{
  "endpoint": "https://api.example.com",
  "ingest_endpoint": "https://ingest.example.com",
  "active_team": "9c0d11aa-0000-4000-8000-000000000001",
  "telemetry": {"enabled": false, "note": "<kept & exact>"},
  "teams": {
    "9c0d11aa-0000-4000-8000-000000000001": {
      "api_key": "owl_agent_aaaa",
      "team_name": "Acme",
      "team_slug": "acme",
      "last_used": 1234567890123
    },
    "_manual": {"api_key": "owl_agent_bbbb", "team_name": "", "team_slug": ""}
  }
}
`

func writeFile(t *testing.T, dir, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(p, []byte(body), mode))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

func modeOf(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

func TestLoadMissingIsEmpty(t *testing.T) {
	t.Parallel()
	l, err := Load(filepath.Join(t.TempDir(), "nope", "config.json"))
	require.NoError(t, err)
	require.False(t, l.Exists)
	require.Empty(t, l.Teams)
}

func TestLoadInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"not json", "{nope", "not JSON"},
		{"empty", "", "empty"},
		{"array", "[]", "not a JSON object"},
		{"teams wrong type", `{"teams": []}`, `"teams" must be an object`},
		{"endpoint wrong type", `{"endpoint": 5}`, "endpoint must be a string"},
		{"profile key wrong type", `{"teams": {"x": {"api_key": true}}}`, `teams["x"].api_key must be a string`},
		{"profile not object", `{"teams": {"x": "y"}}`, `teams["x"] must be an object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, t.TempDir(), tt.body, 0o600)
			_, err := Load(p)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, "config file "+p+" is not valid: ")
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestUnknownKeysSurviveRewrite(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), sample, 0o600)
	_, err := Update(p, func(f *File) error {
		f.Teams["9c0d11aa-0000-4000-8000-000000000001"].DefaultProject = "1a2b3c4d-0000-4000-8000-000000000001"
		return nil
	})
	require.NoError(t, err)

	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(b), "}\n"), "trailing newline")
	require.Contains(t, string(b), "\n  \"teams\": {", "two-space indent")
	require.Contains(t, string(b), `"note": "<kept & exact>"`, "no HTML escaping of unknown values")

	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, map[string]any{"enabled": false, "note": "<kept & exact>"}, doc["telemetry"])
	acme := doc["teams"].(map[string]any)["9c0d11aa-0000-4000-8000-000000000001"].(map[string]any)
	require.Equal(t, float64(1234567890123), acme["last_used"])
	require.Equal(t, "1a2b3c4d-0000-4000-8000-000000000001", acme["default_project"])
	require.Equal(t, "owl_agent_aaaa", acme["api_key"])
	require.Contains(t, doc["teams"].(map[string]any), "_manual")
	require.Equal(t, "https://ingest.example.com", doc["ingest_endpoint"])
}

func TestUpdateCreatesDirAndFile0600(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), ".owlmetry")
	p := filepath.Join(dir, "config.json")
	_, err := Update(p, func(f *File) error { f.Endpoint = "https://x.example"; return nil })
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), modeOf(t, p))
	require.Equal(t, os.FileMode(0o700), modeOf(t, dir))
	require.Equal(t, os.FileMode(0o600), modeOf(t, p+".lock"))
	l, err := Load(p)
	require.NoError(t, err)
	require.Equal(t, "https://x.example", l.Endpoint)
	require.False(t, l.Exposed)
}

func TestUpdateReplaces0644With0600(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), sample, 0o644)
	l, err := Load(p)
	require.NoError(t, err)
	require.True(t, l.Exposed, "a 0644 file is reported")
	_, err = Update(p, func(f *File) error { return nil })
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), modeOf(t, p))
}

// The umask is process-wide, so the check runs in a child process that sets it.
func TestUpdateModeWhateverTheUmask(t *testing.T) {
	t.Parallel()
	for _, mask := range []int{0o000, 0o022, 0o077, 0o277} {
		t.Run(fmt.Sprintf("umask %04o", mask), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p := writeFile(t, dir, sample, 0o644)
			cmd := exec.Command(os.Args[0], "-test.run=^TestUmaskChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "CONFIG_UMASK_CHILD="+strconv.Itoa(mask), "CONFIG_UMASK_PATH="+p)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
			require.Equal(t, os.FileMode(0o600), modeOf(t, p))
		})
	}
}

func TestUmaskChild(t *testing.T) {
	t.Parallel()
	mask, ok := os.LookupEnv("CONFIG_UMASK_CHILD")
	if !ok {
		t.Skip("run by TestUpdateModeWhateverTheUmask")
	}
	n, err := strconv.Atoi(mask)
	require.NoError(t, err)
	syscall.Umask(n)
	_, err = Update(os.Getenv("CONFIG_UMASK_PATH"), func(f *File) error { f.ActiveTeam = "_manual"; return nil })
	require.NoError(t, err)
}

func TestUpdateFollowsSymlink(t *testing.T) {
	t.Parallel()
	real := filepath.Join(t.TempDir(), "dotfiles")
	require.NoError(t, os.MkdirAll(real, 0o700))
	target := writeFile(t, real, sample, 0o600)
	home := t.TempDir()
	link := filepath.Join(home, "config.json")
	require.NoError(t, os.Symlink(target, link))

	_, err := Update(link, func(f *File) error { f.Endpoint = "https://changed.example"; return nil })
	require.NoError(t, err)

	fi, err := os.Lstat(link)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeSymlink, "the link stays a link")
	l, err := Load(target)
	require.NoError(t, err)
	require.Equal(t, "https://changed.example", l.Endpoint)
	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.Contains(e.Name(), ".tmp-"), "temporary file written beside the link: %s", e.Name())
	}
}

func TestUpdateAbandonedChangeKeepsFile(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), sample, 0o600)
	before, err := os.ReadFile(p)
	require.NoError(t, err)
	_, err = Update(p, func(f *File) error { f.Endpoint = "x"; return fmt.Errorf("no") })
	require.EqualError(t, err, "no")
	after, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, before, after)
}

func TestUpdateRefusesCorruptFile(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), "{corrupt", 0o600)
	_, err := Update(p, func(f *File) error { return nil })
	require.ErrorIs(t, err, ErrInvalid)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "{corrupt", string(b), "a corrupt file is reported, never replaced")
}

func TestConcurrentWritersLoseNothing(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "config.json")
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Update(p, func(f *File) error {
				f.Teams[fmt.Sprintf("team-%02d", i)] = &Profile{APIKey: "k", TeamName: fmt.Sprint(i)}
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	l, err := Load(p)
	require.NoError(t, err)
	require.Len(t, l.Teams, n)
}

func TestLockTimeout(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "config.json")
	unlock, err := lock(p+".lock", time.Second)
	require.NoError(t, err)
	_, err = update(p, 50*time.Millisecond, func(*File) error { return nil })
	require.ErrorIs(t, err, ErrLocked)
	unlock()
	_, err = update(p, time.Second, func(*File) error { return nil })
	require.NoError(t, err)
}
