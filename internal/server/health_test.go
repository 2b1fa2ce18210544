package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/owltest"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)

	for _, path := range []string{"/healthz", "/health"} {
		r := get(t, stack, path, "")
		require.Equal(t, http.StatusOK, r.Status, path)
		require.Equal(t, map[string]any{"status": "ok"}, r.JSON(t))
		require.Empty(t, r.Header.Get("Cache-Control"), "no-store is for /v1 only")

		r = call(t, stack, req{method: http.MethodHead, path: path})
		require.Equal(t, http.StatusOK, r.Status)
		require.Empty(t, r.Body)

		r = call(t, stack, req{method: http.MethodPost, path: path})
		requireError(t, r, http.StatusMethodNotAllowed, "Method not allowed")
		require.Equal(t, "GET, HEAD", r.Header.Get("Allow"))
	}

	r := get(t, stack, "/readyz", "")
	require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
	require.Equal(t, map[string]any{"status": "ready", "checks": map[string]any{
		"database": "ok", "migrations": "ok", "engine": "ok", "shutdown": "ok"}}, r.JSON(t))

	t.Run("schema behind", func(t *testing.T) {
		t.Parallel()
		s := owltest.StartStack(t)
		_, err := s.DB.Pool.Exec(context.Background(), `DELETE FROM owlmetry_schema_migrations`)
		require.NoError(t, err)
		r := get(t, s, "/readyz", "")
		require.Equal(t, http.StatusServiceUnavailable, r.Status)
		checks := r.JSON(t)["checks"].(map[string]any)
		require.Equal(t, "schema not migrated", checks["migrations"])
		require.Equal(t, "not_ready", r.JSON(t)["status"])
	})

	t.Run("api-only replica", func(t *testing.T) {
		t.Parallel()
		s := owltest.StartStack(t, owltest.WithEngineSettings(func(es *engineSettings) { es.Workers = 0 }))
		r := get(t, s, "/readyz", "")
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		require.Equal(t, "disabled", r.JSON(t)["checks"].(map[string]any)["engine"])
	})

	t.Run("shutting down", func(t *testing.T) {
		t.Parallel()
		s := owltest.StartStack(t)
		s.Server.BeginShutdown()
		r := get(t, s, "/readyz", "")
		require.Equal(t, http.StatusServiceUnavailable, r.Status)
		require.Equal(t, map[string]any{"status": "not_ready", "checks": map[string]any{
			"database": "ok", "migrations": "ok", "engine": "ok", "shutdown": "shutting down"}}, r.JSON(t))
		// Liveness is unaffected: the process still serves.
		require.Equal(t, http.StatusOK, get(t, s, "/healthz", "").Status)
	})

	t.Run("engine stopped", func(t *testing.T) {
		t.Parallel()
		s := owltest.StartStack(t)
		require.NoError(t, s.Engine.Stop(context.Background()))
		r := get(t, s, "/readyz", "")
		require.Equal(t, http.StatusServiceUnavailable, r.Status)
		require.Equal(t, "not started", r.JSON(t)["checks"].(map[string]any)["engine"])
	})
}
