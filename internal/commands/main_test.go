package commands_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

// asOwlmetry makes the test binary behave as the owlmetry binary when a test re-executes
// it, so process-level tests need no separate build.
const asOwlmetry = "OWLMETRY_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asOwlmetry) == "1" {
		os.Exit(int(commands.Main()))
	}
	code := m.Run()
	removeBuiltBinary()
	pgtest.Shutdown()
	os.Exit(code)
}

// owlmetryProcess returns a command running the test binary as owlmetry.
func owlmetryProcess(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asOwlmetry+"=1"), env...)
	return cmd
}

type result struct {
	ExitCode cmdutil.ExitCode
	Stdout   *bytes.Buffer
	Stderr   *bytes.Buffer
}

// run executes one command line in process with an injected environment.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	code := commands.Run(context.Background(), commands.Options{
		Args:          args,
		IO:            ios,
		LookupEnvFunc: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	t.Logf("owlmetry %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	return result{ExitCode: code, Stdout: out, Stderr: errOut}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	res := run(t, nil, "version")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.True(t, strings.HasPrefix(res.Stdout.String(), "owlmetry "))

	res = run(t, nil, "version", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stdout.String(), `"version"`)

	res = run(t, nil, "-V")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.NotContains(t, res.Stdout.String(), "owlmetry")
}

func TestUnknownCommandIsUsage(t *testing.T) {
	t.Parallel()
	res := run(t, nil, "migrat")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), `did you mean migrate?`)
	require.Empty(t, res.Stdout.String())

	res = run(t, nil)
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stdout.String(), "Usage:")
}

func TestHelpExitCodes(t *testing.T) {
	t.Parallel()
	res := run(t, nil, "help", "exit-codes")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	for _, e := range cmdutil.ExitCodes {
		require.Contains(t, res.Stdout.String(), e.Name)
	}
}

func TestJSONErrorIsOneObject(t *testing.T) {
	t.Parallel()
	res := run(t, nil, "migrate", "--database-url", "not-a-url", "--format", "json")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	lines := strings.Split(strings.TrimSpace(res.Stderr.String()), "\n")
	require.Len(t, lines, 1)
	require.Contains(t, lines[0], `"code":"usage"`)
	require.Contains(t, lines[0], `"exit_code":2`)
}
