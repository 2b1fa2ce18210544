package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/owltest"
	"github.com/owlmetry/owlmetry/internal/server"
)

func TestMetrics(t *testing.T) {
	t.Parallel()

	t.Run("open", func(t *testing.T) {
		t.Parallel()
		stack := owltest.StartStack(t)
		activeRun(t, stack, stack.Team, "pending")
		activeRun(t, stack, stack.Team, "running")
		require.Equal(t, http.StatusOK, get(t, stack, "/healthz", "").Status)
		require.Equal(t, http.StatusNotFound, get(t, stack, "/nope", "").Status)
		require.Equal(t, http.StatusMethodNotAllowed, call(t, stack, req{method: "BREW", path: "/v1/auth/whoami"}).Status)
		require.Equal(t, http.StatusOK, get(t, stack, "/v1/auth/whoami", stack.Key.Token).Status)

		r := get(t, stack, "/metrics", "")
		require.Equal(t, http.StatusOK, r.Status)
		require.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain; version=0.0.4"), r.Header.Get("Content-Type"))
		body := string(r.Body)
		for _, want := range []string{
			`owlmetry_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
			`owlmetry_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
			`owlmetry_http_requests_total{code="405",method="OTHER",route="/v1/auth/whoami"} 1`,
			`owlmetry_http_requests_total{code="200",method="GET",route="/v1/auth/whoami"} 1`,
			`owlmetry_http_request_duration_seconds_bucket{code="200",method="GET",route="/healthz",le="+Inf"} 1`,
			`owlmetry_job_runs_active{job_type="apple_ads_sync",status="pending"} 1`,
			`owlmetry_job_runs_active{job_type="apple_ads_sync",status="running"} 1`,
			`owlmetry_job_runs_active{job_type="revenuecat_sync",status="pending"} 0`,
			`owlmetry_sse_streams 0`,
			"go_goroutines ",
			"process_start_time_seconds ",
		} {
			require.Contains(t, body, want)
		}
	})

	t.Run("token", func(t *testing.T) {
		t.Parallel()
		stack := owltest.StartStack(t, owltest.WithServerDeps(func(d *server.Deps) { d.MetricsToken = "s3cret" }))
		requireError(t, get(t, stack, "/metrics", ""), http.StatusUnauthorized, "Missing authorization")
		for _, h := range []string{"Basic s3cret", "Bearer", "s3cret", "Bearer s3cret x"} {
			r := call(t, stack, req{method: "GET", path: "/metrics", header: map[string]string{"Authorization": h}})
			requireError(t, r, http.StatusUnauthorized, "Invalid authorization format")
		}
		for _, tok := range []string{"s3cre", "s3cret2", "S3CRET", stack.Key.Token} {
			requireError(t, get(t, stack, "/metrics", tok), http.StatusUnauthorized, "Invalid metrics token")
		}
		r := get(t, stack, "/metrics", "s3cret")
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, string(r.Body), "owlmetry_http_requests_total")
	})
}
