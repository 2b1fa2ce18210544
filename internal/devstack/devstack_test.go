package devstack

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := kv[k]; ok {
			return v, true
		}
		return os.LookupEnv(k) //nolint:forbidigo // tests reach the machine's PATH
	}
}

func tempDataDir(t *testing.T) string {
	t.Helper()
	base := ""
	if os.Geteuid() == 0 {
		base = "/var/tmp" // reachable by the postgres user, unlike root's private temp dirs
	}
	dir, err := os.MkdirTemp(base, "owldevtest-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func postgresRunningIn(dir string) bool {
	out, _ := exec.Command("pgrep", "-f", "postgres.*"+dir).Output()
	return strings.TrimSpace(string(out)) != ""
}

// A first start creates, migrates and seeds; a second start of the same data dir reuses
// all of it; Stop leaves no Postgres process behind.
func TestStartSeedRestartStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := tempDataDir(t)

	s, err := Start(ctx, Options{DataDir: dir, LookupEnv: env(nil)})
	require.NoError(t, err)
	require.NotNil(t, s.Seed)
	require.Len(t, s.Seed.APIKey, len("owl_agent_")+48)

	var apps, events, users int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM apps`).Scan(&apps))
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events))
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM app_users`).Scan(&users))
	require.Equal(t, 4, apps)
	require.Positive(t, events)
	require.Equal(t, 110, users)

	// The iTunes emulator answers for the universe's apps.
	resp, err := http.Get(s.Emulators["itunes"] + "/lookup?bundleId=com.example.snapframe&country=us")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A second stack on the same data dir is refused while the first runs.
	_, err = Start(ctx, Options{DataDir: dir, LookupEnv: env(nil)})
	var running *AlreadyRunningError
	require.ErrorAs(t, err, &running)

	st, err := s.WriteState("http://127.0.0.1:4114")
	require.NoError(t, err)
	got, err := ReadState(dir)
	require.NoError(t, err)
	require.Equal(t, st, got)
	info, err := os.Stat(statePath(dir))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	first := *s.Seed
	require.NoError(t, s.Stop(ctx))
	require.False(t, postgresRunningIn(dir), "no postgres left after Stop")
	_, err = ReadState(dir)
	require.ErrorIs(t, err, ErrNotRunning)

	again, err := Start(ctx, Options{DataDir: dir, LookupEnv: env(nil)})
	require.NoError(t, err)
	require.Equal(t, first, *again.Seed, "a second start reuses the seed")
	require.NoError(t, again.Pool.QueryRow(ctx, `SELECT count(*) FROM apps`).Scan(&apps))
	require.Equal(t, 4, apps, "nothing seeded twice")
	require.NoError(t, again.Stop(ctx))
	require.False(t, postgresRunningIn(dir))
}

func TestEphemeralIsRemoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Start(ctx, Options{Ephemeral: true, NoSeed: true, LookupEnv: env(nil)})
	require.NoError(t, err)
	require.Nil(t, s.Seed)
	dir := s.DataDir
	require.NoError(t, s.Stop(ctx))
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "the ephemeral data dir is gone")
	require.False(t, postgresRunningIn(dir))
}

func TestServerEnvPointsAtTheEmulators(t *testing.T) {
	t.Parallel()
	s := &Stack{DatabaseURL: "postgres://x", Secrets: Secrets{JWTSecret: "j", SecretKey: "k"}, Emulators: map[string]string{"itunes": "http://127.0.0.1:4104"}}
	e := s.ServerEnv(func(k string) (string, bool) { return "base-" + k, true }, "127.0.0.1:4114", "dev")
	for k, want := range map[string]string{
		"OWLMETRY_ITUNES_API_URL": "http://127.0.0.1:4104", "JWT_SECRET": "j", "OWLMETRY_SECRET_KEY": "k",
		"OWLMETRY_CRON_PROFILE": "dev", "DATABASE_URL": "postgres://x", "HOME": "base-HOME",
	} {
		v, _ := e(k)
		require.Equal(t, want, v, k)
	}
}
