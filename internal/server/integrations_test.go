package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/owltest"
)

func TestListIntegrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stack := owltest.StartStack(t)
	project := stack.SeedProject(t)
	path := "/v1/projects/" + project.ID + "/integrations"
	reader := stack.SeedKey(t, stack.Team, []string{"integrations:read"})

	// Empty: an empty array, never null.
	r := get(t, stack, path, reader.Token)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, map[string]any{"integrations": []any{}}, r.JSON(t))

	// A complete RevenueCat integration, an incomplete App Store Connect one, and a
	// removed Apple Search Ads one that must not show.
	_, err := stack.DB.Pool.Exec(ctx, `INSERT INTO project_integrations (project_id, provider, config, enabled) VALUES
		($1, 'revenuecat', '{"api_key": "sk_a****"}', true),
		($1, 'app-store-connect', '{"issuer_id": "1a2b****", "key_id": "ABCD****"}', false)`, project.ID)
	require.NoError(t, err)
	_, err = stack.DB.Pool.Exec(ctx, `INSERT INTO project_integrations (project_id, provider, config, enabled, deleted_at)
		VALUES ($1, 'apple-search-ads', '{}', false, now())`, project.ID)
	require.NoError(t, err)

	r = get(t, stack, path, reader.Token)
	require.Equal(t, http.StatusOK, r.Status)
	list := r.JSON(t)["integrations"].([]any)
	require.Len(t, list, 2)
	asc := list[0].(map[string]any)
	rc := list[1].(map[string]any)
	require.Equal(t, "app-store-connect", asc["provider"], "ordered by provider")
	require.Equal(t, []any{"private_key_p8"}, asc["missing_fields"])
	require.Equal(t, false, asc["enabled"])
	require.Equal(t, map[string]any{"issuer_id": "1a2b****", "key_id": "ABCD****"}, asc["config"])
	require.Equal(t, "revenuecat", rc["provider"])
	require.Equal(t, []any{}, rc["missing_fields"])
	require.Equal(t, project.ID, rc["project_id"])
	for _, f := range []string{"id", "project_id", "provider", "config", "enabled", "missing_fields", "created_at", "updated_at"} {
		require.Contains(t, rc, f)
	}
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, rc["created_at"])

	// Access: the key needs integrations:read; a member user is refused after the
	// visibility check; another team's project is not found; a malformed id is a 400.
	jobsOnly := stack.SeedKey(t, stack.Team, []string{"jobs:read", "jobs:write"})
	requireError(t, get(t, stack, path, jobsOnly.Token), http.StatusForbidden, "Missing permission: integrations:read")
	member := stack.SeedUser(t, stack.Team, owltest.RoleMember)
	requireError(t, get(t, stack, path, member.Token), http.StatusForbidden, "Requires admin role or higher")
	admin := stack.SeedUser(t, stack.Team, owltest.RoleAdmin)
	require.Equal(t, http.StatusOK, get(t, stack, path, admin.Token).Status)
	other := stack.SeedTeam(t)
	foreign := stack.SeedKey(t, other, []string{"integrations:read"})
	requireError(t, get(t, stack, path, foreign.Token), http.StatusNotFound, "Project not found")
	requireError(t, get(t, stack, "/v1/projects/nope/integrations", reader.Token), http.StatusBadRequest, "Invalid projectId: must be a UUID")
	requireError(t, post(t, stack, path, reader.Token, ""), http.StatusMethodNotAllowed, "Method not allowed")
}
