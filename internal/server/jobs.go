package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// listFilter is the parsed query of GET /v1/teams/{teamId}/jobs.
type listFilter struct {
	jobType   *string
	status    *string
	projectID *string
	since     pgtype.Timestamptz
	until     pgtype.Timestamptz
	cursor    *listCursor
	limit     int
}

// parseListFilter validates the query parameters of api.md §7.1 in table order.
func (s *Server) parseListFilter(r *http.Request) (listFilter, error) {
	q := r.URL.Query()
	f := listFilter{
		since: pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.NegativeInfinity},
		until: pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.Infinity},
	}
	if v := q.Get("job_type"); v != "" {
		if _, ok := jobtype.Lookup(v); !ok {
			return f, badRequest("%s", jobtype.InvalidTypeMessage(v))
		}
		f.jobType = &v
	}
	if v := q.Get("status"); v != "" {
		if !apitype.Status(v).Valid() {
			return f, badRequest("Invalid status %q. Valid statuses: pending, running, completed, failed, cancelled", v)
		}
		f.status = &v
	}
	if v := q.Get("project_id"); v != "" {
		id, ok := jobtype.ParseUUID(v)
		if !ok {
			return f, invalidUUID("project_id")
		}
		f.projectID = &id
	}
	now := s.now()
	if v := q.Get("since"); v != "" {
		t, err := parseTimeParam("since", v, now)
		if err != nil {
			return f, err
		}
		f.since = pgtype.Timestamptz{Time: t, Valid: true}
	}
	if v := q.Get("until"); v != "" {
		t, err := parseTimeParam("until", v, now)
		if err != nil {
			return f, err
		}
		f.until = pgtype.Timestamptz{Time: t, Valid: true}
	}
	if f.since.InfinityModifier == pgtype.Finite && f.until.InfinityModifier == pgtype.Finite && f.since.Time.After(f.until.Time) {
		return f, badRequest("since must not be later than until")
	}
	if v := q.Get("cursor"); v != "" {
		c, err := parseCursor(v)
		if err != nil {
			return f, err
		}
		f.cursor = &c
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return f, err
	}
	f.limit = limit
	return f, nil
}

// listRunsSQL reads one page of a team's runs. Absent filters are NULL; the time bounds
// and the cursor are always present (infinities when not given), so the keyset
// condition can use job_runs_team_list_idx.
const listRunsSQL = `SELECT ` + engine.RunColumns + `
  FROM job_runs
 WHERE team_id = $1
   AND ($2::varchar IS NULL OR job_type = $2)
   AND ($3::job_status IS NULL OR status = $3)
   AND ($4::uuid IS NULL OR project_id = $4)
   AND created_at >= $5 AND created_at <= $6
   AND (created_at, id) < ($7::timestamptz, $8::uuid)
 ORDER BY created_at DESC, id DESC
 LIMIT $9`

// listJobs answers GET /v1/teams/{teamId}/jobs (api.md §7.1).
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, p *principal) error {
	teamID, ok := jobtype.ParseUUID(r.PathValue("teamId"))
	if !ok {
		return invalidUUID("teamId")
	}
	f, err := s.parseListFilter(r)
	if err != nil {
		return err
	}
	if err := p.requireTeam(teamID); err != nil {
		return err
	}
	after := pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.Infinity}
	afterID := "ffffffff-ffff-ffff-ffff-ffffffffffff"
	if f.cursor != nil {
		after = pgtype.Timestamptz{Time: f.cursor.CreatedAt, Valid: true}
		afterID = f.cursor.ID
	}
	rows, err := s.pool.Query(r.Context(), listRunsSQL, teamID, f.jobType, f.status, f.projectID,
		f.since, f.until, after, afterID, f.limit+1)
	if err != nil {
		return err
	}
	recs, err := engine.CollectRuns(rows)
	if err != nil {
		return err
	}
	type page struct {
		JobRuns []apitype.JobRun `json:"job_runs"`
		Cursor  *string          `json:"cursor"`
		HasMore bool             `json:"has_more"`
	}
	out := page{JobRuns: []apitype.JobRun{}}
	if len(recs) > f.limit {
		out.HasMore = true
		recs = recs[:f.limit]
		last := recs[len(recs)-1]
		c := listCursor{CreatedAt: last.CreatedAt, ID: last.ID}.String()
		out.Cursor = &c
	}
	for _, rec := range recs {
		out.JobRuns = append(out.JobRuns, rec.API())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// triggerBody is the validated body of POST /v1/teams/{teamId}/jobs/trigger.
type triggerBody struct {
	jobType   jobtype.Type
	projectID string
	params    map[string]any
	notify    bool
}

// parseTriggerBody applies steps 1–6 of api.md §7.2 in order.
func parseTriggerBody(b []byte) (triggerBody, error) {
	var out triggerBody
	m, err := decodeObject(b)
	if err != nil {
		return out, err
	}

	raw := m["job_type"]
	if isNull(raw) {
		return out, badRequest("job_type is required")
	}
	var name string
	if json.Unmarshal(raw, &name) != nil {
		return out, badRequest("job_type must be a string")
	}
	t, ok := jobtype.Lookup(name)
	if !ok {
		return out, badRequest("%s", jobtype.InvalidTypeMessage(name))
	}
	if !t.APITriggerable() {
		return out, badRequest("%q is a system job and cannot be triggered through the API", t.Name)
	}
	out.jobType = t

	raw = m["project_id"]
	if isNull(raw) {
		return out, badRequest("project_id is required for project-scoped job %q", t.Name)
	}
	var pid string
	if json.Unmarshal(raw, &pid) != nil {
		return out, badRequest("project_id must be a UUID")
	}
	if out.projectID, ok = jobtype.ParseUUID(pid); !ok {
		return out, badRequest("project_id must be a UUID")
	}

	out.params = map[string]any{}
	if raw = m["params"]; !isNull(raw) {
		if out.params, ok = decodeParams(raw); !ok {
			return out, badRequest("params must be a JSON object")
		}
	}
	for k, v := range out.params {
		// Postgres cannot store U+0000 in jsonb: refuse it here rather than fail the insert.
		if str, isStr := v.(string); isStr && strings.ContainsRune(str, 0) {
			if _, declared := t.Param(k); declared {
				return out, badRequest("Invalid param %q: must not contain NUL characters", k)
			}
		}
	}
	// The run's project_id is authoritative (engine.md §2.3 rule 4): a type that takes
	// it as a param gets it from the body, and a differing params.project_id is refused.
	check := make(map[string]any, len(out.params)+1)
	for k, v := range out.params {
		check[k] = v
	}
	if p, ok := t.Param("project_id"); ok && p.AllowedAt(jobtype.EntryTrigger) {
		if _, has := check["project_id"]; !has {
			check["project_id"] = out.projectID
		}
	}
	valid, err := jobtype.ValidateParams(t, jobtype.EntryTrigger, check)
	if err != nil {
		return out, err
	}
	if given, has := valid["project_id"]; has && given != out.projectID {
		return out, badRequest("params.project_id must match project_id")
	}

	if raw = m["notify"]; !isNull(raw) {
		if json.Unmarshal(raw, &out.notify) != nil {
			return out, badRequest("notify must be a boolean")
		}
	}
	return out, nil
}

// triggerJob answers POST /v1/teams/{teamId}/jobs/trigger (api.md §7.2).
func (s *Server) triggerJob(w http.ResponseWriter, r *http.Request, p *principal) error {
	teamID, ok := jobtype.ParseUUID(r.PathValue("teamId"))
	if !ok {
		return invalidUUID("teamId")
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if err := p.requireTeam(teamID); err != nil {
		return err
	}
	body, err := parseTriggerBody(b)
	if err != nil {
		return err
	}
	projectTeam, err := s.projectTeam(r.Context(), body.projectID)
	if err != nil {
		return err
	}
	if projectTeam != teamID {
		return errorf(http.StatusNotFound, msgProjectNotFound)
	}
	rec, err := s.eng.Enqueue(r.Context(), engine.EnqueueRequest{
		JobType:     body.jobType.Name,
		Entry:       jobtype.EntryTrigger,
		TeamID:      &teamID,
		ProjectID:   &body.projectID,
		Params:      body.params,
		Notify:      body.notify,
		TriggeredBy: p.actor(),
		AfterInsert: auditRunCreated(p),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"job_run": rec.API()})
	return nil
}

// getJob answers GET /v1/jobs/{runId} (api.md §7.3).
func (s *Server) getJob(w http.ResponseWriter, r *http.Request, p *principal) error {
	rec, err := s.visibleRun(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"job_run": rec.API()})
	return nil
}

// cancelJob answers POST /v1/jobs/{runId}/cancel (api.md §7.4). The cancel and its audit
// row commit together.
func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, p *principal) error {
	rec, err := s.visibleRun(r, p)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var outcome engine.CancelOutcome
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, out, err := s.eng.CancelTx(ctx, tx, rec.ID, p.actor())
		if err != nil {
			return err
		}
		outcome = out
		return insertAudit(ctx, tx, *rec.TeamID, p, "update", cur.ID,
			map[string]any{"job_type": cur.JobType, "cancel": true})
	})
	if err != nil {
		return err
	}
	status := apitype.StatusRunning
	if outcome == engine.CancelDone {
		status = apitype.StatusCancelled
	}
	writeJSON(w, http.StatusOK, map[string]any{"cancelled": true, "status": status})
	return nil
}

// visibleRun parses {runId} and returns the run if the caller may see it: it exists, is a
// team run and belongs to one of the caller's teams (api.md §4.4); then the role check.
// Everything invisible is the same 404, system runs included.
func (s *Server) visibleRun(r *http.Request, p *principal) (engine.RunRecord, error) {
	runID, ok := jobtype.ParseUUID(r.PathValue("runId"))
	if !ok {
		return engine.RunRecord{}, invalidUUID("runId")
	}
	rec, err := s.eng.Get(r.Context(), runID)
	if errors.Is(err, engine.ErrRunNotFound) {
		return rec, errorf(http.StatusNotFound, msgRunNotFound)
	}
	if err != nil {
		return rec, err
	}
	if rec.TeamID == nil || !p.sees(*rec.TeamID) {
		return rec, errorf(http.StatusNotFound, msgRunNotFound)
	}
	if err := p.requireAdmin(*rec.TeamID); err != nil {
		return rec, err
	}
	return rec, nil
}

// projectTeam returns the team of a live project of a live team, or 404 Project not
// found.
func (s *Server) projectTeam(ctx context.Context, projectID string) (string, error) {
	var teamID string
	err := s.pool.QueryRow(ctx, `SELECT p.team_id FROM projects p JOIN teams t ON t.id = p.team_id
		WHERE p.id = $1 AND p.deleted_at IS NULL AND t.deleted_at IS NULL`, projectID).Scan(&teamID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", errorf(http.StatusNotFound, msgProjectNotFound)
	}
	return teamID, err
}

// auditRunCreated writes the audit row of a created run inside the enqueue transaction
// (api.md §7.2 effects).
func auditRunCreated(p *principal) func(context.Context, pgx.Tx, engine.RunRecord) error {
	return func(ctx context.Context, tx pgx.Tx, rec engine.RunRecord) error {
		if rec.TeamID == nil {
			return fmt.Errorf("audit run %s: no team", rec.ID)
		}
		return insertAudit(ctx, tx, *rec.TeamID, p, "create", rec.ID,
			map[string]any{"job_type": rec.JobType, "project_id": rec.ProjectID})
	}
}

// insertAudit records an action on a job run in audit_logs.
func insertAudit(ctx context.Context, tx pgx.Tx, teamID string, p *principal, action, runID string, metadata map[string]any) error {
	actorType, actorID := p.auditActor()
	meta, err := json.Marshal(metadata)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_logs (team_id, actor_type, actor_id, action, resource_type, resource_id, metadata)
		VALUES ($1, $2, $3, $4, 'job_run', $5, $6)`, teamID, actorType, actorID, action, runID, meta)
	if err != nil {
		return fmt.Errorf("write audit row: %w", err)
	}
	return nil
}

// activeRunID returns the active run of a keyed overlap key, or "".
func activeRunID(ctx context.Context, tx pgx.Tx, jobType, projectID string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM job_runs WHERE job_type = $1 AND project_id = $2
		AND status IN ('pending','running') LIMIT 1`, jobType, projectID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}
