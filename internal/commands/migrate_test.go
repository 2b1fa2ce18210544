package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestMigrateBadURL(t *testing.T) {
	t.Parallel()
	res := run(t, nil, "migrate", "--database-url", "not-a-url")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	lines := strings.Split(strings.TrimSpace(res.Stderr.String()), "\n")
	require.True(t, strings.HasPrefix(lines[0], "error: invalid database URL"), lines[0])
}

func TestMigrateUnreachableNamesHostAndPort(t *testing.T) {
	t.Parallel()
	res := run(t, nil, "migrate", "--database-url", "postgres://owlmetry@127.0.0.1:1/owlmetry?connect_timeout=5")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Equal(t, "error: cannot connect to 127.0.0.1:1/owlmetry: connection refused\n", res.Stderr.String())
}

func TestMigrateNoDatabase(t *testing.T) {
	t.Parallel()
	res := run(t, nil, "migrate")
	require.Equal(t, cmdutil.ExitAuth, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "error: no database")
	require.Contains(t, res.Stderr.String(), "hint: pass --database-url or set DATABASE_URL")
}

func TestMigrateThenStatus(t *testing.T) {
	t.Parallel()
	tdb := pgtest.NewEmpty(t)
	env := map[string]string{"DATABASE_URL": tdb.URL}

	res := run(t, env, "migrate", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	var doc struct {
		Applied []struct {
			Version string `json:"version"`
		} `json:"applied"`
		CurrentVersion int `json:"current_version"`
	}
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &doc))
	require.NotEmpty(t, doc.Applied)
	require.Equal(t, db.LatestVersion(), doc.CurrentVersion)

	res = run(t, env, "migrate")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Empty(t, res.Stdout.String(), "nothing left to apply")
	require.Contains(t, res.Stderr.String(), fmt.Sprintf("Database is up to date (version %d).", db.LatestVersion()))

	res = run(t, env, "migrate", "--status", "--check")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stdout.String(), "initial_schema\tapplied")
}

func TestMigrateStatusCheckFailsWhenPending(t *testing.T) {
	t.Parallel()
	tdb := pgtest.NewEmpty(t)
	res := run(t, map[string]string{"DATABASE_URL": tdb.URL}, "migrate", "--status", "--check")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Contains(t, res.Stdout.String(), "pending")
}

// Four owlmetry migrate processes on one fresh database all exit 0.
func TestMigrateConcurrentProcesses(t *testing.T) {
	t.Parallel()
	tdb := pgtest.NewEmpty(t)
	var wg sync.WaitGroup
	outs := make([][]byte, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := owlmetryProcess(t, []string{"DATABASE_URL=" + tdb.URL}, "migrate")
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range 4 {
		require.NoError(t, errs[i], string(outs[i]))
		require.Contains(t, string(outs[i]), "Database is up to date")
	}
	var n int
	require.NoError(t, tdb.Pool.QueryRow(context.Background(), `SELECT count(*) FROM owlmetry_schema_migrations`).Scan(&n))
	require.Equal(t, db.LatestVersion(), n)
}
