package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// Integration providers as stored in project_integrations.provider.
const (
	providerRevenueCat      = "revenuecat"
	providerAppleSearchAds  = "apple-search-ads"
	providerAppStoreConnect = "app-store-connect"
)

// rcAnonymousPrefix starts the RevenueCat ids of anonymous users.
const rcAnonymousPrefix = "$RCAnonymousID:"

// syncRoute is one of the five run-creating project routes (api.md §7.6–§7.10).
type syncRoute struct {
	path string
	run  func(s *Server, ctx context.Context, w http.ResponseWriter, p *principal, projectID, teamID string) error
}

var syncRoutes = []syncRoute{
	{path: "ads/sync", run: (*Server).syncAds},
	{path: "ratings/sync", run: (*Server).syncRatings},
	{path: "integrations/app-store-connect/sync", run: (*Server).syncAppStoreConnect},
	{path: "integrations/revenuecat/sync", run: (*Server).syncRevenueCat},
	{path: "integrations/apple-search-ads/sync", run: (*Server).syncAppleSearchAds},
}

// syncHandler applies what the five routes share: the project id, the project's
// visibility (404 for anything the caller cannot see) and the role check.
func (s *Server) syncHandler(sr syncRoute) func(http.ResponseWriter, *http.Request, *principal) error {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		projectID, ok := jobtype.ParseUUID(r.PathValue("projectId"))
		if !ok {
			return invalidUUID("projectId")
		}
		teamID, err := s.projectTeam(r.Context(), projectID)
		if err != nil {
			return err
		}
		if !p.sees(teamID) {
			return errorf(http.StatusNotFound, msgProjectNotFound)
		}
		if err := p.requireAdmin(teamID); err != nil {
			return err
		}
		return sr.run(s, r.Context(), w, p, projectID, teamID)
	}
}

// routeRequest is the enqueue request of a sync route: a team run of the project with
// params {"project_id"}, notify off (api.md §7.6–§7.10, common part).
func routeRequest(p *principal, jobType string, entry jobtype.EntryPoint, projectID, teamID string) engine.EnqueueRequest {
	return engine.EnqueueRequest{
		JobType: jobType, Entry: entry, TeamID: &teamID, ProjectID: &projectID,
		TriggeredBy: p.actor(), AfterInsert: auditRunCreated(p),
	}
}

// startOne creates the single run of a route and answers with its id and total.
func (s *Server) startOne(ctx context.Context, w http.ResponseWriter, p *principal, jobType string,
	entry jobtype.EntryPoint, projectID, teamID string, total int64) error {
	rec, err := s.eng.Enqueue(ctx, routeRequest(p, jobType, entry, projectID, teamID))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"syncing": true, "total": total, "job_run_id": rec.ID})
	return nil
}

// requireIntegration answers 404 unless the project has an enabled, not deleted
// integration of the provider.
func (s *Server) requireIntegration(ctx context.Context, projectID, provider, label string) error {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM project_integrations
		WHERE project_id = $1 AND provider = $2 AND enabled AND deleted_at IS NULL)`, projectID, provider).Scan(&ok)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(http.StatusNotFound, "%s integration not found or disabled", label)
	}
	return nil
}

func (s *Server) count(ctx context.Context, sql string, args ...any) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// syncAds answers POST /v1/projects/{projectId}/ads/sync (api.md §7.6): one run per
// active integration, all created in one transaction or none.
func (s *Server) syncAds(ctx context.Context, w http.ResponseWriter, p *principal, projectID, teamID string) error {
	rows, err := s.pool.Query(ctx, `SELECT provider FROM project_integrations
		WHERE project_id = $1 AND enabled AND deleted_at IS NULL AND provider IN ($2, $3)`,
		projectID, providerRevenueCat, providerAppleSearchAds)
	if err != nil {
		return err
	}
	providers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	active := map[string]bool{}
	for _, pr := range providers {
		active[pr] = true
	}
	runIDs := map[string]*string{jobtype.RevenueCatSync: nil, jobtype.AppleAdsSync: nil}
	if len(active) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"syncing": false, "revenuecat_job_run_id": nil, "apple_ads_job_run_id": nil})
		return nil
	}
	plan := []struct{ provider, jobType string }{
		{providerRevenueCat, jobtype.RevenueCatSync}, // RevenueCat first, also for the 409
		{providerAppleSearchAds, jobtype.AppleAdsSync},
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var first *apitype.ConflictError
		existing := map[string]string{jobtype.RevenueCatSync: "", jobtype.AppleAdsSync: ""}
		for _, step := range plan {
			if !active[step.provider] {
				continue
			}
			if first != nil {
				// Nothing will be created: only report what holds this key too.
				id, err := activeRunID(ctx, tx, step.jobType, projectID)
				if err != nil {
					return err
				}
				existing[step.jobType] = id
				continue
			}
			rec, err := s.eng.EnqueueTx(ctx, tx, routeRequest(p, step.jobType, jobtype.EntryRouteAds, projectID, teamID))
			var conflict *apitype.ConflictError
			if errors.As(err, &conflict) {
				first = conflict
				existing[step.jobType] = conflict.ExistingRunID
				continue
			}
			if err != nil {
				return err
			}
			id := rec.ID
			runIDs[step.jobType] = &id
		}
		if first != nil {
			first.ExistingRunIDs = existing
			return first // rolls back the run created before the conflict, if any
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"syncing": true,
		"revenuecat_job_run_id": runIDs[jobtype.RevenueCatSync], "apple_ads_job_run_id": runIDs[jobtype.AppleAdsSync]})
	return nil
}

// syncRatings answers POST /v1/projects/{projectId}/ratings/sync (api.md §7.7).
func (s *Server) syncRatings(ctx context.Context, w http.ResponseWriter, p *principal, projectID, teamID string) error {
	total, err := s.count(ctx, `SELECT count(*) FROM apps WHERE project_id = $1 AND platform = 'apple'
		AND deleted_at IS NULL AND bundle_id IS NOT NULL AND bundle_id <> ''`, projectID)
	if err != nil {
		return err
	}
	if total == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"syncing": false, "total": 0})
		return nil
	}
	return s.startOne(ctx, w, p, jobtype.AppStoreRatingsSync, jobtype.EntryRouteRatings, projectID, teamID, total)
}

// syncAppStoreConnect answers POST …/integrations/app-store-connect/sync (api.md §7.8).
func (s *Server) syncAppStoreConnect(ctx context.Context, w http.ResponseWriter, p *principal, projectID, teamID string) error {
	if err := s.requireIntegration(ctx, projectID, providerAppStoreConnect, "App Store Connect"); err != nil {
		return err
	}
	total, err := s.count(ctx, `SELECT count(*) FROM apps WHERE project_id = $1 AND platform = 'apple'
		AND deleted_at IS NULL AND apple_app_store_id IS NOT NULL`, projectID)
	if err != nil {
		return err
	}
	if total == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"syncing": false, "total": 0})
		return nil
	}
	return s.startOne(ctx, w, p, jobtype.AppStoreConnectReviewsSync, jobtype.EntryRouteASC, projectID, teamID, total)
}

// syncRevenueCat answers POST …/integrations/revenuecat/sync (api.md §7.9). Anonymous
// RevenueCat ids are not counted: the sync cannot look them up.
func (s *Server) syncRevenueCat(ctx context.Context, w http.ResponseWriter, p *principal, projectID, teamID string) error {
	if err := s.requireIntegration(ctx, projectID, providerRevenueCat, "RevenueCat"); err != nil {
		return err
	}
	total, err := s.count(ctx, `SELECT count(*) FROM app_users WHERE project_id = $1 AND NOT is_anonymous
		AND left(user_id, length($2)) <> $2`, projectID, rcAnonymousPrefix)
	if err != nil {
		return err
	}
	if total == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"syncing": false, "synced": 0, "total": 0})
		return nil
	}
	return s.startOne(ctx, w, p, jobtype.RevenueCatSync, jobtype.EntryRouteRC, projectID, teamID, total)
}

// syncAppleSearchAds answers POST …/integrations/apple-search-ads/sync (api.md §7.10).
func (s *Server) syncAppleSearchAds(ctx context.Context, w http.ResponseWriter, p *principal, projectID, teamID string) error {
	if err := s.requireIntegration(ctx, projectID, providerAppleSearchAds, "Apple Search Ads"); err != nil {
		return err
	}
	total, err := s.count(ctx, `SELECT count(*) FROM app_users WHERE project_id = $1`, projectID)
	if err != nil {
		return err
	}
	if total == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"syncing": false, "total": 0})
		return nil
	}
	return s.startOne(ctx, w, p, jobtype.AppleAdsSync, jobtype.EntryRouteASA, projectID, teamID, total)
}
