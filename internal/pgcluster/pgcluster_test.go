package pgcluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFindBinariesPrefersGivenDirs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{"initdb", "pg_ctl", "postgres"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755))
	}
	got, err := FindBinaries(FindOptions{Dirs: []string{"", dir}, PathEnv: "/nonexistent", SystemPatterns: []string{}})
	require.NoError(t, err)
	require.Equal(t, dir, got)
}

func TestFindBinariesMissingIsOneSentence(t *testing.T) {
	t.Parallel()
	incomplete := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(incomplete, "initdb"), []byte("#!/bin/sh\n"), 0o755))
	_, err := FindBinaries(FindOptions{Dirs: []string{incomplete}, PathEnv: "/nonexistent", SystemPatterns: []string{}})
	require.True(t, errors.Is(err, ErrNoBinaries))
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), incomplete)
	require.Contains(t, err.Error(), "install them, e.g. apt-get install postgresql")
}

func TestVersionOrdering(t *testing.T) {
	t.Parallel()
	require.Equal(t, 15, versionOf("/usr/lib/postgresql/15/bin"))
	require.Equal(t, 16, versionOf("/usr/local/opt/postgresql@16/bin"))
}
