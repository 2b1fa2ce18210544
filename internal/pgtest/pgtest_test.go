package pgtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

// Two parallel tests write to the same table name and never see each other's rows.
func TestIsolation(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tdb := New(t)
			_, err := tdb.Pool.Exec(ctx, `INSERT INTO teams (name, slug) VALUES ($1, $1)`, name)
			require.NoError(t, err)
			var slugs []string
			rows, err := tdb.Pool.Query(ctx, `SELECT slug FROM teams ORDER BY slug`)
			require.NoError(t, err)
			for rows.Next() {
				var s string
				require.NoError(t, rows.Scan(&s))
				slugs = append(slugs, s)
			}
			require.NoError(t, rows.Err())
			require.Equal(t, []string{name}, slugs)
		})
	}
}

func TestDatabaseIsMigratedAndUTC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := New(t)
	var tz string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SHOW timezone`).Scan(&tz))
	require.Equal(t, "UTC", tz)
	var n int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM owlmetry_schema_migrations`).Scan(&n))
	require.Positive(t, n)
}

func TestEmptyDatabaseHasNoSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := NewEmpty(t)
	var exists bool
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT to_regclass('job_runs') IS NOT NULL`).Scan(&exists))
	require.False(t, exists)
}

func TestReplaceDatabase(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://postgres@/t_1?host=%2Ftmp%2Fx&port=5432",
		replaceDatabase("postgres://postgres@/postgres?host=%2Ftmp%2Fx&port=5432", "", "t_1"))
	require.Equal(t, "postgres://u:p@localhost:5432/t_1?sslmode=disable",
		replaceDatabase("postgres://u:p@localhost:5432/db?sslmode=disable", "", "t_1"))
	require.Equal(t, "host=/tmp dbname=t_1", replaceDatabase("host=/tmp dbname=x", "", "t_1"))
	require.Equal(t, "host=/tmp dbname=t_1", replaceDatabase("host=/tmp", "", "t_1"))
}
