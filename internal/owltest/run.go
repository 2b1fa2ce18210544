package owltest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// Result is how one in-process CLI run ended.
type Result struct {
	ExitCode cmdutil.ExitCode
	Stdout   *bytes.Buffer
	Stderr   *bytes.Buffer
}

// Run executes one owlmetry command line in process (commands.Run) with test streams —
// no TTY anywhere — and env as the whole environment. It logs the command line, the
// exit code and both streams.
func Run(t testing.TB, env Env, args ...string) Result {
	t.Helper()
	return run(t, env, false, args)
}

// RunTTY is Run with stdin, stdout and stderr treated as terminals, 80 columns wide.
func RunTTY(t testing.TB, env Env, args ...string) Result {
	t.Helper()
	return run(t, env, true, args)
}

func run(t testing.TB, env Env, tty bool, args []string) Result {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	if tty {
		ios.SetStdinTTY(true)
		ios.SetStdoutTTY(true)
		ios.SetStderrTTY(true)
		ios.SetWidth(80)
	}
	code := commands.Run(context.Background(), commands.Options{
		Args:          args,
		IO:            ios,
		LookupEnvFunc: env.Lookup,
		NowFunc:       time.Now,
	})
	t.Logf("owlmetry %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	return Result{ExitCode: code, Stdout: out, Stderr: errOut}
}
