package build

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCurrentPrefersLinkerValues(t *testing.T) {
	old := [3]string{Version, Commit, Date}
	t.Cleanup(func() { Version, Commit, Date = old[0], old[1], old[2] })
	Version, Commit, Date = "0.4.0", "1a2b3c4", "2026-11-29T16:00:00Z"

	info := Current()
	require.Equal(t, "0.4.0", info.Version)
	require.Equal(t, "1a2b3c4", info.Commit)
	require.Equal(t, "2026-11-29T16:00:00Z", info.Date)
	require.Equal(t, runtime.Version(), info.Go)
	require.Equal(t, runtime.GOOS, info.OS)
}

func TestCurrentFallsBackWithoutLinkerValues(t *testing.T) {
	old := [3]string{Version, Commit, Date}
	t.Cleanup(func() { Version, Commit, Date = old[0], old[1], old[2] })
	Version, Commit, Date = "", "", ""

	info := Current()
	require.NotEmpty(t, info.Version, "a test binary reports dev or its module version")
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	require.Equal(t, "1.2.3", trimV("v1.2.3"))
	require.Equal(t, "abcdef0", shortCommit("abcdef0123456789"))
	require.Equal(t, "abc", shortCommit("abc"))
}
