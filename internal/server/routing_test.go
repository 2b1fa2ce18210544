package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/owltest"
)

func TestRouting(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)
	key := stack.Key.Token
	const id = "0b6f3a52-47a1-4c54-9b8f-5b1f0f9a7c01"

	t.Run("unknown routes are a JSON 404 before authentication", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{
			"/", "/v1", "/v1/", "/nope", "/v1/jobs", "/v1/teams/" + id + "/jobs/", "/v1/jobs/" + id + "/cancel/x",
			// Not provided by owlmetry (api.md §9), or not yet (integration routes).
			"/v1/auth/login",
			"/v1/projects/" + id + "/integrations/revenuecat", "/v1/projects/" + id + "/integrations/revenuecat/test",
			"/v1/projects/" + id + "/integrations/revenuecat/sync/user-1",
			"/v1/projects/" + id + "/integrations/apple-search-ads/sync/user-1",
			"/v1/projects/" + id + "/integrations/revenuecat/webhook",
			// Paths the standard mux would redirect.
			"/v1//jobs/" + id, "/v1/jobs/./" + id, "/v1/teams/../jobs/" + id,
		} {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
				r := call(t, stack, req{method: method, path: path})
				requireError(t, r, http.StatusNotFound, "Not found")
			}
		}
	})

	t.Run("wrong method is 405 with Allow before authentication", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ method, path, allow string }{
			{http.MethodPost, "/v1/teams/" + id + "/jobs", "GET, HEAD"},
			{http.MethodGet, "/v1/teams/" + id + "/jobs/trigger", "POST"},
			{http.MethodDelete, "/v1/jobs/" + id, "GET, HEAD"},
			{http.MethodGet, "/v1/jobs/" + id + "/cancel", "POST"},
			{http.MethodPost, "/v1/jobs/" + id + "/events", "GET"},
			{http.MethodHead, "/v1/jobs/" + id + "/events", "GET"},
			{http.MethodGet, "/v1/projects/" + id + "/ads/sync", "POST"},
			{http.MethodPut, "/v1/projects/" + id + "/integrations/revenuecat/sync", "POST"},
			{http.MethodPost, "/v1/auth/whoami", "GET, HEAD"},
			{"BREW", "/metrics", "GET, HEAD"},
			{http.MethodOptions, "/readyz", "GET, HEAD"},
		} {
			r := call(t, stack, req{method: c.method, path: c.path})
			require.Equal(t, http.StatusMethodNotAllowed, r.Status, "%s %s", c.method, c.path)
			require.Equal(t, c.allow, r.Header.Get("Allow"), "%s %s", c.method, c.path)
			if c.method != http.MethodHead {
				require.Equal(t, "Method not allowed", r.Error(t))
			}
		}
	})

	t.Run("request ids", func(t *testing.T) {
		t.Parallel()
		r := call(t, stack, req{method: http.MethodGet, path: "/v1/auth/whoami", token: key,
			header: map[string]string{"X-Request-Id": "trace abc/123"}})
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, "trace abc/123", r.Header.Get("X-Request-Id"))

		long := strings.Repeat("x", 129)
		for _, given := range []string{long, "tab\tinside", "é"} {
			r = call(t, stack, req{method: http.MethodGet, path: "/nope", header: map[string]string{"X-Request-Id": given}})
			got := r.Header.Get("X-Request-Id")
			require.NotEqual(t, given, got)
			require.Len(t, got, 36, "a generated UUID")
		}
		r = get(t, stack, "/healthz", "")
		require.Len(t, r.Header.Get("X-Request-Id"), 36)
		require.Equal(t, strings.Repeat("y", 128), call(t, stack, req{method: http.MethodGet, path: "/healthz",
			header: map[string]string{"X-Request-Id": strings.Repeat("y", 128)}}).Header.Get("X-Request-Id"))
	})

	t.Run("v1 answers are not cached", func(t *testing.T) {
		t.Parallel()
		for _, r := range []response{
			get(t, stack, "/v1/auth/whoami", key),
			get(t, stack, "/v1/auth/whoami", ""),
			get(t, stack, "/v1/nope", ""),
		} {
			require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
			require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
		}
	})
}
