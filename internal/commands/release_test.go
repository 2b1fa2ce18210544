package commands_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
)

// The committed completion scripts match what this binary prints; `make completions`
// regenerates them after a change to the command tree.
func TestCommittedCompletionsAreCurrent(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"bash": "owlmetry.bash", "zsh": "_owlmetry", "fish": "owlmetry.fish", "powershell": "owlmetry.ps1",
	}
	for shell, file := range files {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			want, err := os.ReadFile(filepath.Join("..", "..", "completions", file))
			require.NoError(t, err)
			res := run(t, nil, "completion", shell)
			require.Equal(t, cmdutil.ExitOK, res.ExitCode)
			require.Equal(t, string(want), res.Stdout.String(), "completions/%s is stale: run make completions", file)
		})
	}
}

// The manual pages cover every visible command.
func TestManPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := run(t, nil, "man", "--dir", dir)
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	for _, page := range []string{"owlmetry.1", "owlmetry-jobs-trigger.1", "owlmetry-system-jobs-run.1", "owlmetry-dev-env.1"} {
		_, err := os.Stat(filepath.Join(dir, page))
		require.NoError(t, err, page)
	}
	res = run(t, nil, "man")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
}
