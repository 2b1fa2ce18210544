package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
)

// softDeleteGrace is how long a soft-deleted row may still be restored (jobs.md §6.3).
const softDeleteGrace = 7 * 24 * time.Hour

// SoftDeleteCleanup hard-deletes teams, projects, apps and other rows soft-deleted more
// than seven days ago, with the event rows of every app it removes (jobs.md §6).
type SoftDeleteCleanup struct {
	deps *Deps
}

// softDeleteCounters are the camelCase counters of jobs.md §6.7, in result order.
var softDeleteCounters = []string{
	"teams", "projects", "apps", "apiKeys", "metricDefinitions", "funnelDefinitions", "events",
	"metricEvents", "funnelEvents", "appUsers", "auditLogs", "teamMembers", "teamInvitations",
	"questionnaireResponses", "feedback", "feedbackComments", "issueComments", "projectIntegrations",
	"questionnaires", "questionnaireResponseComments", "deferred",
}

// eventCounter maps an event table to its camelCase counter.
var eventCounter = map[string]string{"events": "events", "metric_events": "metricEvents", "funnel_events": "funnelEvents"}

// optionalTables are the tables the job processes only when they exist (jobs.md §6.3).
var optionalTables = []string{
	"metric_definitions", "funnel_definitions", "team_invitations", "feedback", "feedback_comments",
	"questionnaires", "questionnaire_responses", "questionnaire_response_comments", "issue_comments",
	"project_integrations",
}

type entityKind string

const (
	kindTeam    entityKind = "teams"
	kindProject entityKind = "projects"
	kindApp     entityKind = "apps"
)

type softDeleteEntity struct {
	kind entityKind
	id   string
}

// scopeApp is an app an entity contains, with its project for the audit rows.
type scopeApp struct {
	id, project string
}

// softDeleteRun is the state of one run.
type softDeleteRun struct {
	d       *Deps
	run     *engine.Run
	cutoff  time.Time
	exists  map[string]bool
	counts  map[string]int64
	batches *batchRunner
	done    int64
	total   int64
}

func (s *softDeleteRun) result() engine.Result {
	res := engine.Result{}
	silent := true
	for _, k := range softDeleteCounters {
		res[k] = s.counts[k]
		if s.counts[k] != 0 {
			silent = false
		}
	}
	res["_silent"] = silent
	return res
}

func (s *softDeleteRun) progress() {
	rows := s.counts["events"] + s.counts["metricEvents"] + s.counts["funnelEvents"]
	report(s.run, s.done, s.total, fmt.Sprintf("%d of %d entities · %s event rows deleted", s.done, s.total, formatCount(rows)))
}

// Run executes one soft_delete_cleanup run.
func (h *SoftDeleteCleanup) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	d := h.deps
	t0, err := dbNow(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	s := &softDeleteRun{d: d, run: run, cutoff: t0.Add(-softDeleteGrace), exists: map[string]bool{}, counts: map[string]int64{},
		batches: newBatchRunner(d, run.DB, CheckpointSoftDeleteBatch)}
	for _, t := range optionalTables {
		var ok bool
		if err := run.DB.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t).Scan(&ok); err != nil {
			return nil, fmt.Errorf("look up table %s: %w", t, err)
		}
		s.exists[t] = ok
	}

	var entities []softDeleteEntity
	for _, kind := range []entityKind{kindTeam, kindProject, kindApp} {
		rows, err := run.DB.Query(ctx, fmt.Sprintf(`SELECT id::text FROM %s WHERE deleted_at IS NOT NULL AND deleted_at < $1 ORDER BY deleted_at, id`, kind), s.cutoff)
		if err != nil {
			return nil, fmt.Errorf("list expired %s: %w", kind, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("list expired %s: %w", kind, err)
		}
		for _, id := range ids {
			entities = append(entities, softDeleteEntity{kind: kind, id: id})
		}
	}
	s.total = int64(len(entities)) + 1
	s.progress()

	for _, e := range entities {
		if err := d.stopPoint(ctx, CheckpointSoftDeleteEntity); err != nil {
			return nil, engine.Stopped(s.result())
		}
		if err := s.entity(ctx, e); err != nil {
			if errors.Is(err, errStopped) {
				return nil, engine.Stopped(s.result())
			}
			return nil, fmt.Errorf("%s %s: %w", singular(e.kind), e.id, err)
		}
		s.done++
		s.progress()
	}
	if err := d.stopPoint(ctx, CheckpointSoftDeleteEntity); err != nil {
		return nil, engine.Stopped(s.result())
	}
	if err := s.sweeps(ctx); err != nil {
		if errors.Is(err, errStopped) {
			return nil, engine.Stopped(s.result())
		}
		return nil, err
	}
	s.done++
	s.progress()
	return s.result(), nil
}

func singular(k entityKind) string {
	switch k {
	case kindTeam:
		return "team"
	case kindProject:
		return "project"
	}
	return "app"
}

// entity removes one expired team, project or app (jobs.md §6.3 step 1).
func (s *softDeleteRun) entity(ctx context.Context, e softDeleteEntity) error {
	pool := s.run.DB
	var present bool
	if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s WHERE id = $1 AND deleted_at IS NOT NULL AND deleted_at < $2)`, e.kind),
		e.id, s.cutoff).Scan(&present); err != nil {
		return stopped(ctx, err)
	}
	if !present {
		return nil // removed with its parent, or restored
	}
	projects, apps, err := scope(ctx, pool, e)
	if err != nil {
		return stopped(ctx, err)
	}
	// a. An entity with an active run is retried next time.
	busy, err := activeRuns(ctx, pool, e, projects, apps)
	if err != nil {
		return stopped(ctx, err)
	}
	if busy {
		s.counts["deferred"]++
		return nil
	}

	// b. Event rows of every app it contains, whatever the apps' own state.
	infinity := pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	for _, t := range eventTables {
		children, err := attachedChildren(ctx, pool, t.name)
		if err != nil {
			return stopped(ctx, err)
		}
		audits := map[string]*auditRow{}
		for _, app := range apps {
			a, ok := audits[app.project]
			if !ok {
				project := app.project
				a = newAudit(&project, t.name, "soft_delete_cleanup", s.cutoff)
				audits[app.project] = a
			}
			for _, ch := range children {
				err := s.batches.deleteEventRows(ctx, t, ch.Name, app.id, infinity, a, func(n int64) {
					s.counts[eventCounter[t.name]] += n
					s.progress()
				})
				if err != nil {
					return err
				}
			}
		}
	}

	// c. Other large children, by primary key.
	appIDs := make([]string, len(apps))
	for i, a := range apps {
		appIDs[i] = a.id
	}
	if len(appIDs) > 0 {
		err := s.batches.deleteByID(ctx, "issue_occurrences",
			`SELECT o.id FROM issue_occurrences o JOIN issues i ON i.id = o.issue_id WHERE i.app_id = ANY($1::uuid[]) LIMIT $2`,
			[]any{appIDs}, nil)
		if err != nil {
			return err
		}
	}
	if len(projects) > 0 {
		err := s.batches.deleteByID(ctx, "app_users", `SELECT id FROM app_users WHERE project_id = ANY($1::uuid[]) LIMIT $2`,
			[]any{projects}, func(n int64) { s.counts["appUsers"] += n })
		if err != nil {
			return err
		}
	}

	// d. The rows themselves, in one transaction that re-checks the entity.
	var counts map[string]int64
	err = s.d.inTx(ctx, pool, func(tx pgx.Tx) error {
		counts = map[string]int64{}
		return s.deleteEntityTx(ctx, tx, e, counts)
	})
	if err != nil {
		return stopped(ctx, err)
	}
	for k, v := range counts {
		s.counts[k] += v
	}
	return nil
}

// scope returns the projects an entity contains (none for an app: its project stays)
// and its apps, each with its project.
func scope(ctx context.Context, q db.DBTX, e softDeleteEntity) ([]string, []scopeApp, error) {
	var (
		projects []string
		appsSQL  string
	)
	switch e.kind {
	case kindTeam:
		rows, err := q.Query(ctx, `SELECT id::text FROM projects WHERE team_id = $1 ORDER BY id`, e.id)
		if err != nil {
			return nil, nil, err
		}
		if projects, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, nil, err
		}
		appsSQL = `SELECT id::text, project_id::text FROM apps
			WHERE team_id = $1 OR project_id IN (SELECT id FROM projects WHERE team_id = $1) ORDER BY id`
	case kindProject:
		projects = []string{e.id}
		appsSQL = `SELECT id::text, project_id::text FROM apps WHERE project_id = $1 ORDER BY id`
	default:
		appsSQL = `SELECT id::text, project_id::text FROM apps WHERE id = $1`
	}
	rows, err := q.Query(ctx, appsSQL, e.id)
	if err != nil {
		return nil, nil, err
	}
	apps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (scopeApp, error) {
		var a scopeApp
		return a, r.Scan(&a.id, &a.project)
	})
	return projects, apps, err
}

// activeRuns reports whether a pending or running run belongs to the entity: to one of
// its projects, to its team, or for an app to the app's project.
func activeRuns(ctx context.Context, q db.DBTX, e softDeleteEntity, projects []string, apps []scopeApp) (bool, error) {
	ids := append([]string{}, projects...)
	team := ""
	switch e.kind {
	case kindTeam:
		team = e.id
	case kindApp:
		for _, a := range apps {
			ids = append(ids, a.project)
		}
	}
	var busy bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM job_runs WHERE status IN ('pending', 'running')
		AND (project_id = ANY($1::uuid[]) OR team_id = NULLIF($2, '')::uuid))`, ids, team).Scan(&busy)
	return busy, err
}

// deleteEntityTx deletes the entity and what it contains explicitly, counting each kind
// (jobs.md §6.3 step 1d). It locks the entity's row first and does nothing when the row
// is gone or no longer expired, or when a run became active meanwhile.
func (s *softDeleteRun) deleteEntityTx(ctx context.Context, tx pgx.Tx, e softDeleteEntity, counts map[string]int64) error {
	var ok bool
	err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT true FROM %s WHERE id = $1 AND deleted_at IS NOT NULL AND deleted_at < $2 FOR UPDATE`, e.kind),
		e.id, s.cutoff).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	projects, apps, err := scope(ctx, tx, e)
	if err != nil {
		return err
	}
	busy, err := activeRuns(ctx, tx, e, projects, apps)
	if err != nil {
		return err
	}
	if busy {
		counts["deferred"]++
		return nil
	}
	appIDs := make([]string, len(apps))
	for i, a := range apps {
		appIDs[i] = a.id
	}
	del := func(counter, table, sql string, args ...any) error {
		if known, optional := s.exists[table]; optional && !known {
			return nil
		}
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("delete %s: %w", table, err)
		}
		counts[counter] += tag.RowsAffected()
		return nil
	}
	// Responses reference questionnaires with RESTRICT, so the ones whose questionnaire
	// goes with an app or a project are deleted first (schema.md §9).
	if s.exists["questionnaires"] && (len(appIDs) > 0 || len(projects) > 0) {
		if err := del("questionnaireResponses", "questionnaire_responses", `DELETE FROM questionnaire_responses WHERE questionnaire_id IN
			(SELECT id FROM questionnaires WHERE app_id = ANY($1::uuid[]) OR project_id = ANY($2::uuid[]))`, appIDs, projects); err != nil {
			return err
		}
	}
	if len(appIDs) > 0 {
		if err := del("apiKeys", "api_keys", `DELETE FROM api_keys WHERE app_id = ANY($1::uuid[])`, appIDs); err != nil {
			return err
		}
		if err := del("apps", "apps", `DELETE FROM apps WHERE id = ANY($1::uuid[])`, appIDs); err != nil {
			return err
		}
	}
	if len(projects) > 0 {
		for _, step := range []struct{ counter, table string }{
			{"metricDefinitions", "metric_definitions"}, {"funnelDefinitions", "funnel_definitions"},
			{"appUsers", "app_users"}, {"projects", "projects"},
		} {
			col := "project_id"
			if step.table == "projects" {
				col = "id"
			}
			if err := del(step.counter, step.table, fmt.Sprintf(`DELETE FROM %s WHERE %s = ANY($1::uuid[])`, step.table, col), projects); err != nil {
				return err
			}
		}
	}
	if e.kind == kindTeam {
		for _, step := range []struct{ counter, table, col string }{
			{"teamInvitations", "team_invitations", "team_id"}, {"teamMembers", "team_members", "team_id"},
			{"auditLogs", "audit_logs", "team_id"}, {"apiKeys", "api_keys", "team_id"}, {"teams", "teams", "id"},
		} {
			if err := del(step.counter, step.table, fmt.Sprintf(`DELETE FROM %s WHERE %s = $1`, step.table, step.col), e.id); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweeps removes independently soft-deleted rows past the cutoff (jobs.md §6.3 step 2).
func (s *softDeleteRun) sweeps(ctx context.Context) error {
	for _, sw := range []struct{ table, counter, extra string }{
		{"questionnaire_responses", "questionnaireResponses", ""},
		{"feedback_comments", "feedbackComments", ""},
		{"feedback", "feedback", ""},
		{"questionnaire_response_comments", "questionnaireResponseComments", ""},
		{"questionnaires", "questionnaires", ` AND NOT EXISTS (SELECT 1 FROM questionnaire_responses r WHERE r.questionnaire_id = t.id)`},
		{"issue_comments", "issueComments", ""},
		{"project_integrations", "projectIntegrations", ""},
	} {
		if !s.exists[sw.table] {
			continue
		}
		extra := sw.extra
		if sw.table == "questionnaires" && !s.exists["questionnaire_responses"] {
			extra = ""
		}
		sel := fmt.Sprintf(`SELECT t.id FROM %s t WHERE t.deleted_at IS NOT NULL AND t.deleted_at < $1%s LIMIT $2`, sw.table, extra)
		counter := sw.counter
		if err := s.batches.deleteByID(ctx, sw.table, sel, []any{s.cutoff}, func(n int64) { s.counts[counter] += n }); err != nil {
			return err
		}
	}
	return nil
}
