package system_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestConnection(t *testing.T) {
	t.Parallel()

	t.Run("a database without migrations is one clear error", func(t *testing.T) {
		t.Parallel()
		tdb := pgtest.NewEmpty(t)
		for _, args := range [][]string{
			{"system", "jobs", "list"},
			{"system", "jobs", "schedules"},
			{"system", "teams", "create", "--name", "Acme"},
		} {
			res := run(t, map[string]string{"DATABASE_URL": tdb.URL}, args...)
			require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
			require.Empty(t, res.Stdout.String())
			require.Equal(t, "error: database "+tdb.Name+" has no owlmetry schema\nhint: run owlmetry migrate\n", res.Stderr.String())
		}
		res := run(t, map[string]string{"DATABASE_URL": tdb.URL}, "system", "jobs", "list", "--format", "json")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Equal(t, `{"code":"database","error":"database `+tdb.Name+` has no owlmetry schema","exit_code":1,"hint":"run owlmetry migrate"}`+"\n", res.Stderr.String())
	})

	t.Run("a newer schema: reads warn, writes refuse", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.exec(t, `INSERT INTO owlmetry_schema_migrations (version, name, duration_ms) SELECT max(version) + 1, 'from_the_future', 1 FROM owlmetry_schema_migrations`)
		res := run(t, b.env, "system", "jobs", "list")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "warning: database schema is newer than this owlmetry")
		res = run(t, b.env, "system", "teams", "create", "--name", "Acme")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "error: database schema is newer than this owlmetry")
		require.Contains(t, res.Stderr.String(), "hint: upgrade owlmetry")
		require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM teams`))
	})

	t.Run("an unreachable server names host and port", func(t *testing.T) {
		t.Parallel()
		res := run(t, nil, "system", "jobs", "list", "--database-url", "postgres://owlmetry:s3cret@127.0.0.1:1/owlmetry?connect_timeout=5")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Equal(t, "error: cannot connect to 127.0.0.1:1/owlmetry: connection refused\n", res.Stderr.String())
		require.NotContains(t, res.Stderr.String(), "s3cret")
	})

	t.Run("no database at all", func(t *testing.T) {
		t.Parallel()
		res := run(t, nil, "system", "jobs", "list")
		require.Equal(t, cmdutil.ExitAuth, res.ExitCode)
		require.Equal(t, "error: no database\nhint: pass --database-url or set DATABASE_URL\n", res.Stderr.String())
	})

	t.Run("a URL that does not parse is a usage error", func(t *testing.T) {
		t.Parallel()
		res := run(t, nil, "system", "keys", "list", "--team", "acme", "--database-url", "postgres://%zz")
		require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
		require.True(t, strings.HasPrefix(res.Stderr.String(), "error: invalid database URL"), res.Stderr.String())
	})

	t.Run("the flag beats the environment, which beats the PG variables", func(t *testing.T) {
		t.Parallel()
		good := pgtest.New(t)
		empty := pgtest.NewEmpty(t)
		// DATABASE_URL points at a database without a schema; the flag at a good one.
		res := run(t, map[string]string{"DATABASE_URL": empty.URL}, "system", "jobs", "list", "--database-url", good.URL)
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		// OWLMETRY_DATABASE_URL wins over DATABASE_URL.
		res = run(t, map[string]string{"DATABASE_URL": empty.URL, "OWLMETRY_DATABASE_URL": good.URL}, "system", "jobs", "list")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		// PG* variables are used only without a URL.
		res = run(t, map[string]string{"DATABASE_URL": good.URL, "PGHOST": "127.0.0.1", "PGPORT": "1"}, "system", "jobs", "list")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		res = run(t, map[string]string{"PGHOST": "127.0.0.1", "PGPORT": "1", "PGDATABASE": "owl", "PGCONNECT_TIMEOUT": "5"}, "system", "jobs", "list")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Equal(t, "error: cannot connect to 127.0.0.1:1/owl: connection refused\n", res.Stderr.String())
	})

	t.Run("session settings", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// A statement slower than --statement-timeout is cancelled by the server.
		b.exec(t, `CREATE FUNCTION job_runs_slow() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END $$`)
		b.exec(t, `CREATE TRIGGER job_runs_slow BEFORE INSERT ON teams FOR EACH ROW EXECUTE FUNCTION job_runs_slow()`)
		res := run(t, b.env, "system", "teams", "create", "--name", "Slow", "--statement-timeout", "200ms")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "canceling statement due to statement timeout")
		require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM teams`))
	})

	t.Run("help states the precedence", func(t *testing.T) {
		t.Parallel()
		res := run(t, nil, "system", "--help")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		out := res.Stdout.String()
		for _, s := range []string{"--database-url, else OWLMETRY_DATABASE_URL, else DATABASE_URL", "PGHOST", "application_name", "--statement-timeout when given, else the\nURL's statement_timeout, else 10s"} {
			require.Contains(t, out, s)
		}
	})
}
