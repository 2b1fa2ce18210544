package system_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

// The queued path against a running server: the CLI enqueues through the engine, a
// server replica executes, and a cancel from the CLI reaches the server's handler.
func TestAgainstARunningServer(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithJobs(), owltest.WithBlockingHandler(jobtype.RetentionCleanup))
	env := map[string]string{"TZ": "America/New_York"}
	for k, v := range stack.Env() {
		env[k] = v
	}

	res := run(t, env, "system", "jobs", "run", "partition_creation", "--wait", "--progress", "lines")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.NotContains(t, res.Stderr.String(), "no running owlmetry server", "the stack's server is a live worker")
	require.Contains(t, res.Stderr.String(), "partition_creation completed")
	require.Contains(t, res.Stdout.String(), "executor\tqueue\n")
	require.Contains(t, res.Stdout.String(), "owner_node\t"+stack.Engine.NodeID()+"\n", "a server replica executed it")

	res = run(t, env, "system", "jobs", "run", "retention_cleanup")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	id, _, _ := strings.Cut(strings.TrimSpace(res.Stdout.String()), "\t")
	stack.Blocker.Started(t, id)

	res = run(t, env, "system", "jobs", "view", id, "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	var r systemRun
	decode(t, res, &r)
	require.Equal(t, "running", r.Status)

	res = run(t, env, "system", "jobs", "cancel", id, "--wait", "--progress", "none")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Contains(t, res.Stdout.String(), "status\tcancelled\n")
	require.Contains(t, res.Stdout.String(), `"stopped":"cancel requested"`, "the server's handler saw the cancel")
}
