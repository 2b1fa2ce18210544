package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

func syncPath(projectID, route string) string { return "/v1/projects/" + projectID + "/" + route }

// runOf reads a run created by a sync route straight from the database.
func runOf(t *testing.T, s *owltest.Stack, id string) (jobType, teamID, projectID, triggeredBy string, notify bool, params map[string]any) {
	t.Helper()
	require.NoError(t, s.DB.Pool.QueryRow(context.Background(), `SELECT job_type, team_id, project_id, triggered_by, notify, params
		FROM job_runs WHERE id = $1`, id).Scan(&jobType, &teamID, &projectID, &triggeredBy, &notify, &params))
	return
}

func countRuns(t *testing.T, s *owltest.Stack, projectID string) int {
	t.Helper()
	var n int
	require.NoError(t, s.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM job_runs WHERE project_id = $1`, projectID).Scan(&n))
	return n
}

func TestSyncRoutes(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync, jobtype.RevenueCatSync,
		jobtype.AppStoreRatingsSync, jobtype.AppStoreConnectReviewsSync))
	key := stack.Key

	// requireRouteRun checks the run a route created: a team run of the project with
	// params {"project_id"}, notify off, the caller as actor, and its audit row.
	requireRouteRun := func(t *testing.T, id, jobType string, project owltest.Project) {
		t.Helper()
		jt, team, pid, by, notify, params := runOf(t, stack, id)
		require.Equal(t, jobType, jt)
		require.Equal(t, project.TeamID, team)
		require.Equal(t, project.ID, pid)
		require.Equal(t, "manual:api_key:"+key.ID, by)
		require.False(t, notify)
		require.Equal(t, map[string]any{"project_id": project.ID}, params)
		audit := auditRows(t, stack, id, "create")
		require.Len(t, audit, 1)
		require.Equal(t, map[string]any{"job_type": jobType, "project_id": project.ID}, audit[0]["metadata"])
		// Visible to the team like any run.
		require.Equal(t, http.StatusOK, get(t, stack, "/v1/jobs/"+id, key.Token).Status)
	}

	t.Run("ads", func(t *testing.T) {
		t.Parallel()
		none := stack.SeedProject(t)
		stack.SeedIntegration(t, none, "revenuecat", false) // disabled: not active
		r := post(t, stack, syncPath(none.ID, "ads/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, map[string]any{"syncing": false, "revenuecat_job_run_id": nil, "apple_ads_job_run_id": nil}, r.JSON(t))
		require.Zero(t, countRuns(t, stack, none.ID))

		onlyASA := stack.SeedProject(t, owltest.WithIntegration("apple-search-ads"))
		r = post(t, stack, syncPath(onlyASA.ID, "ads/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		doc := r.JSON(t)
		require.Equal(t, true, doc["syncing"])
		require.Nil(t, doc["revenuecat_job_run_id"])
		requireRouteRun(t, doc["apple_ads_job_run_id"].(string), "apple_ads_sync", onlyASA)

		both := stack.SeedProject(t, owltest.WithIntegration("apple-search-ads"), owltest.WithIntegration("revenuecat"))
		r = post(t, stack, syncPath(both.ID, "ads/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		doc = r.JSON(t)
		rc, asa := doc["revenuecat_job_run_id"].(string), doc["apple_ads_job_run_id"].(string)
		requireRouteRun(t, rc, "revenuecat_sync", both)
		requireRouteRun(t, asa, "apple_ads_sync", both)

		// Both active again: RevenueCat is named first, both ids are reported.
		r = post(t, stack, syncPath(both.ID, "ads/sync"), key.Token, "")
		require.Equal(t, http.StatusConflict, r.Status)
		require.Equal(t, map[string]any{"error": "revenuecat_sync is already running or pending for this project",
			"existing_run_id": rc, "existing_run_ids": map[string]any{"revenuecat_sync": rc, "apple_ads_sync": asa}}, r.JSON(t))
		require.Equal(t, 2, countRuns(t, stack, both.ID))

		// Only Apple Ads still active: the RevenueCat run must not be created either.
		stack.Blocker.Release(rc)
		waitStatus(t, stack, rc, "completed")
		r = post(t, stack, syncPath(both.ID, "ads/sync"), key.Token, "")
		require.Equal(t, http.StatusConflict, r.Status)
		require.Equal(t, map[string]any{"error": "apple_ads_sync is already running or pending for this project",
			"existing_run_id": asa, "existing_run_ids": map[string]any{"revenuecat_sync": nil, "apple_ads_sync": asa}}, r.JSON(t))
		require.Equal(t, 2, countRuns(t, stack, both.ID), "nothing was created")
		stack.Blocker.Release(asa)
	})

	t.Run("ratings", func(t *testing.T) {
		t.Parallel()
		p := stack.SeedProject(t)
		stack.SeedApp(t, p)                                                         // Apple, no bundle id
		stack.SeedApp(t, p, owltest.BundleID(""))                                   // empty bundle id
		stack.SeedApp(t, p, owltest.Platform("android"), owltest.BundleID("com.x")) // not Apple
		gone := stack.SeedApp(t, p, owltest.BundleID("com.gone"))
		_, err := stack.DB.Pool.Exec(context.Background(), `UPDATE apps SET deleted_at = now() WHERE id = $1`, gone.ID)
		require.NoError(t, err)
		r := post(t, stack, syncPath(p.ID, "ratings/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, map[string]any{"syncing": false, "total": float64(0)}, r.JSON(t))
		require.Zero(t, countRuns(t, stack, p.ID))

		stack.SeedApp(t, p, owltest.BundleID("com.a"))
		stack.SeedApp(t, p, owltest.BundleID("com.b"))
		r = post(t, stack, syncPath(p.ID, "ratings/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		doc := r.JSON(t)
		require.Equal(t, true, doc["syncing"])
		require.Equal(t, float64(2), doc["total"])
		requireRouteRun(t, doc["job_run_id"].(string), "app_store_ratings_sync", p)
		r = post(t, stack, syncPath(p.ID, "ratings/sync"), key.Token, "")
		require.Equal(t, http.StatusConflict, r.Status)
		require.Equal(t, doc["job_run_id"], r.JSON(t)["existing_run_id"])
	})

	t.Run("app store connect", func(t *testing.T) {
		t.Parallel()
		p := stack.SeedProject(t, owltest.WithAppleApps(0))
		requireError(t, post(t, stack, syncPath(p.ID, "integrations/app-store-connect/sync"), key.Token, ""),
			http.StatusNotFound, "App Store Connect integration not found or disabled")
		stack.SeedIntegration(t, p, "app-store-connect", true)
		stack.SeedApp(t, p, owltest.BundleID("com.no.store.id"))
		r := post(t, stack, syncPath(p.ID, "integrations/app-store-connect/sync"), key.Token, "")
		require.Equal(t, map[string]any{"syncing": false, "total": float64(0)}, r.JSON(t))
		stack.SeedApp(t, p, owltest.AppStoreID(123))
		r = post(t, stack, syncPath(p.ID, "integrations/app-store-connect/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		doc := r.JSON(t)
		require.Equal(t, true, doc["syncing"])
		require.Equal(t, float64(1), doc["total"])
		requireRouteRun(t, doc["job_run_id"].(string), "app_store_connect_reviews_sync", p)
	})

	t.Run("revenuecat", func(t *testing.T) {
		t.Parallel()
		p := stack.SeedProject(t)
		requireError(t, post(t, stack, syncPath(p.ID, "integrations/revenuecat/sync"), key.Token, ""),
			http.StatusNotFound, "RevenueCat integration not found or disabled")
		id := stack.SeedIntegration(t, p, "revenuecat", true)
		stack.SeedAppUser(t, p, "anon-1", true)
		stack.SeedAppUser(t, p, "$RCAnonymousID:abc", false)
		r := post(t, stack, syncPath(p.ID, "integrations/revenuecat/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, map[string]any{"syncing": false, "synced": float64(0), "total": float64(0)}, r.JSON(t))
		stack.SeedAppUser(t, p, "user-1", false)
		stack.SeedAppUser(t, p, "$RCAnonymousID", false) // not the anonymous prefix
		r = post(t, stack, syncPath(p.ID, "integrations/revenuecat/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		doc := r.JSON(t)
		require.Equal(t, float64(2), doc["total"])
		requireRouteRun(t, doc["job_run_id"].(string), "revenuecat_sync", p)

		// A deleted integration is not active.
		q := stack.SeedProject(t, owltest.WithAppUsers(1))
		id = stack.SeedIntegration(t, q, "revenuecat", true)
		_, err := stack.DB.Pool.Exec(context.Background(), `UPDATE project_integrations SET deleted_at = now() WHERE id = $1`, id)
		require.NoError(t, err)
		requireError(t, post(t, stack, syncPath(q.ID, "integrations/revenuecat/sync"), key.Token, ""),
			http.StatusNotFound, "RevenueCat integration not found or disabled")
	})

	t.Run("apple search ads", func(t *testing.T) {
		t.Parallel()
		p := stack.SeedProject(t)
		stack.SeedIntegration(t, p, "apple-search-ads", false)
		requireError(t, post(t, stack, syncPath(p.ID, "integrations/apple-search-ads/sync"), key.Token, ""),
			http.StatusNotFound, "Apple Search Ads integration not found or disabled")
		q := stack.SeedProject(t, owltest.WithIntegration("apple-search-ads"))
		r := post(t, stack, syncPath(q.ID, "integrations/apple-search-ads/sync"), key.Token, "")
		require.Equal(t, map[string]any{"syncing": false, "total": float64(0)}, r.JSON(t))
		stack.SeedAppUser(t, q, "anon", true) // every app user counts here
		stack.SeedAppUser(t, q, "known", false)
		r = post(t, stack, syncPath(q.ID, "integrations/apple-search-ads/sync"), key.Token, "")
		require.Equal(t, http.StatusOK, r.Status)
		doc := r.JSON(t)
		require.Equal(t, float64(2), doc["total"])
		requireRouteRun(t, doc["job_run_id"].(string), "apple_ads_sync", q)
	})

	t.Run("projects", func(t *testing.T) {
		t.Parallel()
		deleted := stack.SeedProject(t, owltest.WithIntegration("revenuecat"))
		stack.DeleteProject(t, deleted)
		goneTeam := stack.SeedTeam(t)
		inGoneTeam := stack.SeedProject(t, owltest.InTeam(goneTeam))
		stack.DeleteTeam(t, goneTeam)
		foreign := stack.SeedProject(t, owltest.InTeam(stack.SeedTeam(t)), owltest.WithIntegration("revenuecat"))
		for _, sr := range []string{"ads/sync", "ratings/sync", "integrations/app-store-connect/sync",
			"integrations/revenuecat/sync", "integrations/apple-search-ads/sync"} {
			for _, pid := range []string{deleted.ID, inGoneTeam.ID, foreign.ID, "00000000-0000-4000-8000-000000000000"} {
				requireError(t, post(t, stack, syncPath(pid, sr), key.Token, ""), http.StatusNotFound, "Project not found")
			}
			requireError(t, post(t, stack, syncPath("x", sr), key.Token, ""), http.StatusBadRequest, "Invalid projectId: must be a UUID")
		}
		require.Zero(t, countRuns(t, stack, foreign.ID))
	})
}

func TestSyncWithoutHandlers(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppleAdsSync))
	p := stack.SeedProject(t, owltest.WithIntegration("revenuecat"), owltest.WithIntegration("apple-search-ads"),
		owltest.WithAppleApps(1), owltest.WithAppUsers(1))
	requireError(t, post(t, stack, syncPath(p.ID, "ads/sync"), stack.Key.Token, ""),
		http.StatusNotImplemented, "revenuecat_sync has no handler in this build")
	requireError(t, post(t, stack, syncPath(p.ID, "ratings/sync"), stack.Key.Token, ""),
		http.StatusNotImplemented, "app_store_ratings_sync has no handler in this build")
	requireError(t, post(t, stack, syncPath(p.ID, "integrations/revenuecat/sync"), stack.Key.Token, ""),
		http.StatusNotImplemented, "revenuecat_sync has no handler in this build")
	require.Zero(t, countRuns(t, stack, p.ID), "ads/sync created neither run")
}
