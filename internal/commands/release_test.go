package commands_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// The README's configuration and exit-code tables cover every variable the binary's help
// names and every exit code, so they cannot drift apart.
func TestReadmeCoversHelp(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	doc := string(readme)
	var help strings.Builder
	for _, args := range [][]string{{"server", "--help"}, {"help", "environment"}} {
		res := run(t, nil, args...)
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		help.WriteString(res.Stdout.String())
	}
	names := regexp.MustCompile(`\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9](?:_<[A-Z_]+>)?|\bCLICOLOR\b|\bTERM\b|\bCOLUMNS\b|\bTZ\b`).FindAllString(help.String(), -1)
	require.NotEmpty(t, names)
	for _, name := range names {
		require.True(t, strings.Contains(doc, "`"+name+"`"), "README's configuration tables lack %s", name)
	}
	for _, e := range cmdutil.ExitCodes {
		require.True(t, strings.Contains(doc, fmt.Sprintf("| %d | %s |", e.Code, e.Name)), "README's exit codes lack %d", e.Code)
	}
}
