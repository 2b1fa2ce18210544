package engine_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/pgtest"
)

// seedProject inserts a team and a project and returns the project id.
func seedProject(t *testing.T, tdb *pgtest.DB) string {
	t.Helper()
	ctx := context.Background()
	slug := "t-" + uuid.NewString()[:8]
	var teamID, projectID string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO teams (name, slug) VALUES ($1, $1) RETURNING id`, slug).Scan(&teamID))
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO projects (team_id, name, slug, color) VALUES ($1, 'P', 'p', '#6366f1') RETURNING id`,
		teamID).Scan(&projectID))
	return projectID
}

func teamOf(t *testing.T, tdb *pgtest.DB, projectID string) string {
	t.Helper()
	var team string
	require.NoError(t, tdb.Pool.QueryRow(context.Background(), `SELECT team_id FROM projects WHERE id = $1`, projectID).Scan(&team))
	return team
}

func randomSlug() string { return uuid.NewString()[:12] }
