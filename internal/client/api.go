package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// JobRunListParams are the filters of GET /v1/teams/{team}/jobs (api.md §7.1). Empty
// fields are left out of the query.
type JobRunListParams struct {
	TeamID    string
	JobType   string
	Status    string
	ProjectID string
	Since     string
	Until     string
	Cursor    string
	Limit     int
}

// JobRunList returns one page of a team's runs, newest first.
func (c *Client) JobRunList(ctx context.Context, p JobRunListParams) (apitype.JobRunList, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("job_type", p.JobType)
	set("status", p.Status)
	set("project_id", p.ProjectID)
	set("since", p.Since)
	set("until", p.Until)
	set("cursor", p.Cursor)
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var out apitype.JobRunList
	err := c.getJSON(ctx, "/v1/teams/"+url.PathEscape(p.TeamID)+"/jobs", q, &out)
	return out, err
}

// JobRunGet returns one run. A run of another team, or a system run, is an *APIError
// with status 404, exactly like a run that does not exist.
func (c *Client) JobRunGet(ctx context.Context, runID string) (apitype.JobRun, error) {
	return c.jobRunGet(ctx, runID, false)
}

func (c *Client) jobRunGet(ctx context.Context, runID string, noRetry bool) (apitype.JobRun, error) {
	path := "/v1/jobs/" + url.PathEscape(runID)
	body, err := c.do(ctx, request{method: http.MethodGet, path: path, noRetry: noRetry})
	if err != nil {
		return apitype.JobRun{}, err
	}
	var out apitype.JobRunEnvelope
	if err := decode(http.MethodGet, path, body, &out); err != nil {
		return apitype.JobRun{}, err
	}
	return out.JobRun, nil
}

// JobRunTriggerParams is a run to start through the generic trigger route.
type JobRunTriggerParams struct {
	TeamID string
	apitype.TriggerRequest
}

// JobRunTrigger starts a run (api.md §7.2). An active run with the same key is an
// *APIError with status 409 that unwraps to *apitype.ConflictError.
func (c *Client) JobRunTrigger(ctx context.Context, p JobRunTriggerParams) (apitype.JobRun, error) {
	var out apitype.JobRunEnvelope
	err := c.sendJSON(ctx, http.MethodPost, "/v1/teams/"+url.PathEscape(p.TeamID)+"/jobs/trigger", p.TriggerRequest, &out)
	return out.JobRun, err
}

// JobRunCancel asks a run to stop (api.md §7.4). It sends no body.
func (c *Client) JobRunCancel(ctx context.Context, runID string) (apitype.CancelResponse, error) {
	var out apitype.CancelResponse
	err := c.sendJSON(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(runID)+"/cancel", nil, &out)
	return out, err
}

// AdsSync starts the RevenueCat and Apple Ads syncs of a project (api.md §7.6).
func (c *Client) AdsSync(ctx context.Context, projectID string) (apitype.SyncResponse, error) {
	var out apitype.SyncResponse
	err := c.sendJSON(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(projectID)+"/ads/sync", nil, &out)
	return out, err
}

// RatingsSync starts the App Store ratings sync of a project (api.md §7.7).
func (c *Client) RatingsSync(ctx context.Context, projectID string) (apitype.SyncResponse, error) {
	var out apitype.SyncResponse
	err := c.sendJSON(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(projectID)+"/ratings/sync", nil, &out)
	return out, err
}

// IntegrationSync starts the bulk sync of one provider (api.md §7.8–§7.10).
func (c *Client) IntegrationSync(ctx context.Context, projectID, provider string) (apitype.SyncResponse, error) {
	var out apitype.SyncResponse
	path := "/v1/projects/" + url.PathEscape(projectID) + "/integrations/" + url.PathEscape(provider) + "/sync"
	err := c.sendJSON(ctx, http.MethodPost, path, nil, &out)
	return out, err
}

// IntegrationUserSyncParams names one user of one provider.
type IntegrationUserSyncParams struct {
	ProjectID string
	Provider  string
	UserID    string
}

// IntegrationUserSync syncs one user synchronously (api.md §7.16, §7.17).
func (c *Client) IntegrationUserSync(ctx context.Context, p IntegrationUserSyncParams) (apitype.UserSyncResponse, error) {
	var out apitype.UserSyncResponse
	path := "/v1/projects/" + url.PathEscape(p.ProjectID) + "/integrations/" + url.PathEscape(p.Provider) + "/sync/" + url.PathEscape(p.UserID)
	err := c.sendJSON(ctx, http.MethodPost, path, nil, &out)
	return out, err
}

// IntegrationList returns a project's integrations (api.md §7.15).
func (c *Client) IntegrationList(ctx context.Context, projectID string) ([]apitype.Integration, error) {
	var out apitype.IntegrationList
	if err := c.getJSON(ctx, "/v1/projects/"+url.PathEscape(projectID)+"/integrations", nil, &out); err != nil {
		return nil, err
	}
	if out.Integrations == nil {
		out.Integrations = []apitype.Integration{}
	}
	return out.Integrations, nil
}

// AuthWhoAmI names the caller (api.md §7.14).
func (c *Client) AuthWhoAmI(ctx context.Context) (apitype.WhoAmI, error) {
	var out apitype.WhoAmI
	err := c.getJSON(ctx, "/v1/auth/whoami", nil, &out)
	return out, err
}
