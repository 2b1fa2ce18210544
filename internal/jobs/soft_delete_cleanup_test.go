package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// exec runs statements that must succeed.
func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	_, err := pool.Exec(bg, sql, args...)
	require.NoError(t, err)
}

func insertID(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) string {
	t.Helper()
	var id string
	require.NoError(t, pool.QueryRow(bg, sql+` RETURNING id::text`, args...).Scan(&id))
	return id
}

func apiKey(t *testing.T, pool *pgxpool.Pool, team string, app *string, user string) string {
	t.Helper()
	return insertID(t, pool, `INSERT INTO api_keys (secret, secret_hash, key_type, app_id, team_id, name, created_by, permissions)
		VALUES ('owl_…', md5(random()::text) || md5(random()::text), 'client', $1, $2, 'k', $3, '[]')`, app, team, user)
}

// seedAppDependents gives an app an issue with occurrences, an attachment row, an
// app-level questionnaire with a response, and feedback with a comment.
func seedAppDependents(t *testing.T, pool *pgxpool.Pool, project, app string) {
	t.Helper()
	issue := insertID(t, pool, `INSERT INTO issues (app_id, project_id, title, first_seen_at, last_seen_at) VALUES ($1, $2, 'boom', now(), now())`, app, project)
	exec(t, pool, `INSERT INTO issue_occurrences (issue_id, session_id, "timestamp") SELECT $1, gen_random_uuid(), now() FROM generate_series(1, 2)`, issue)
	exec(t, pool, `INSERT INTO event_attachments (project_id, app_id, original_filename, content_type, size_bytes, sha256, storage_path)
		VALUES ($1, $2, 'a.png', 'image/png', 1, 'x', '')`, project, app)
	q := insertID(t, pool, `INSERT INTO questionnaires (project_id, app_id, slug, name, schema) VALUES ($1, $2, 'q', 'Q', '{}')`, project, app)
	exec(t, pool, `INSERT INTO questionnaire_responses (questionnaire_id, slug, app_id, project_id, answers) VALUES ($1, 'q', $2, $3, '{}')`, q, app, project)
	f := insertID(t, pool, `INSERT INTO feedback (app_id, project_id, message) VALUES ($1, $2, 'hi')`, app, project)
	exec(t, pool, `INSERT INTO feedback_comments (feedback_id, author_type, author_id, author_name, body) VALUES ($1, 'user', gen_random_uuid(), 'a', 'b')`, f)
}

// seedProjectDependents gives a project app users, definitions, a project-level
// questionnaire answered through app, and a finished run.
func seedProjectDependents(t *testing.T, pool *pgxpool.Pool, project, app string, users int) {
	t.Helper()
	exec(t, pool, `INSERT INTO app_users (project_id, user_id, is_anonymous) SELECT $1, 'u' || g, false FROM generate_series(1, $2) g`, project, users)
	exec(t, pool, `INSERT INTO metric_definitions (project_id, name, slug) VALUES ($1, 'M', 'm')`, project)
	q := insertID(t, pool, `INSERT INTO questionnaires (project_id, slug, name, schema) VALUES ($1, 'pq', 'PQ', '{}')`, project)
	exec(t, pool, `INSERT INTO questionnaire_responses (questionnaire_id, slug, app_id, project_id, answers) VALUES ($1, 'pq', $2, $3, '{}')`, q, app, project)
	exec(t, pool, `INSERT INTO job_runs (job_type, status, project_id, triggered_by, completed_at) VALUES ('apple_ads_sync', 'completed', $1, 'x', now())`, project)
}

func TestSoftDeleteCleanupRemovesExpiredEntitiesInDependencyOrder(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	now := t0(t, pool)
	m0 := db.MonthStart(now)
	ensureMonths(t, pool, m0.AddDate(0, -1, 0), 1)
	user := seedUser(t, pool)

	// An expired team whose project and one app are live, the other app soft-deleted
	// later than the team: all of it goes.
	t1 := seedTeam(t, pool)
	p1 := seedProject(t, pool, t1)
	a1, a2 := seedApp(t, pool, p1), seedApp(t, pool, p1)
	softDelete(t, pool, "apps", a2, day)
	apiKey(t, pool, t1, &a1, user)
	apiKey(t, pool, t1, nil, user)
	seedAppDependents(t, pool, p1, a1)
	seedProjectDependents(t, pool, p1, a1, 2)
	exec(t, pool, `INSERT INTO funnel_definitions (project_id, name, slug, steps) VALUES ($1, 'F', 'f', '[]')`, p1)
	exec(t, pool, `INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)`, t1, user)
	exec(t, pool, `INSERT INTO team_invitations (team_id, email, invited_by_user_id, expires_at) VALUES ($1, 'x@example.com', $2, now())`, t1, user)
	exec(t, pool, `INSERT INTO audit_logs (team_id, actor_type, actor_id, action, resource_type, resource_id)
		SELECT $1, 'system', 'x', 'create', 'job_run', 'r' FROM generate_series(1, 2)`, t1)
	insertEvents(t, pool, "events", a1, m0.Add(time.Hour), 3, time.Minute, "e")
	insertEvents(t, pool, "events", a1, m0.AddDate(0, -1, 0).Add(time.Hour), 2, time.Minute, "e")
	insertEvents(t, pool, "metric_events", a1, m0.Add(time.Hour), 2, time.Minute, "m")
	insertEvents(t, pool, "funnel_events", a1, m0.Add(time.Hour), 2, time.Minute, "f")
	insertEvents(t, pool, "events", a2, m0.Add(time.Hour), 1, 0, "e")
	softDelete(t, pool, "teams", t1, 8*day)

	// A live team with an expired app, an app soft-deleted too recently, a live app, and
	// an expired project.
	t2 := seedTeam(t, pool)
	p2 := seedProject(t, pool, t2)
	a3, a4, a6 := seedApp(t, pool, p2), seedApp(t, pool, p2), seedApp(t, pool, p2)
	apiKey(t, pool, t2, &a3, user)
	keep := apiKey(t, pool, t2, &a6, user)
	insertEvents(t, pool, "events", a3, m0.Add(time.Hour), 4, time.Minute, "e")
	insertEvents(t, pool, "events", a4, m0.Add(time.Hour), 2, time.Minute, "e")
	insertEvents(t, pool, "events", a6, m0.Add(time.Hour), 1, 0, "e")
	softDelete(t, pool, "apps", a3, 8*day)
	softDelete(t, pool, "apps", a4, 6*day)
	p3 := seedProject(t, pool, t2)
	a5 := seedApp(t, pool, p3)
	seedProjectDependents(t, pool, p3, a5, 1)
	insertEvents(t, pool, "events", a5, m0.Add(time.Hour), 1, 0, "e")
	softDelete(t, pool, "projects", p3, 9*day)

	res, err, prog := runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.SoftDeleteCleanup, nil)
	require.NoError(t, err)
	want := map[string]int64{
		"teams": 1, "projects": 2, "apps": 4, "apiKeys": 3, "metricDefinitions": 2, "funnelDefinitions": 1,
		"events": 11, "metricEvents": 2, "funnelEvents": 2, "appUsers": 3, "auditLogs": 2, "teamMembers": 1,
		"teamInvitations": 1, "questionnaireResponses": 3,
	}
	for _, k := range []string{"teams", "projects", "apps", "apiKeys", "metricDefinitions", "funnelDefinitions", "events",
		"metricEvents", "funnelEvents", "appUsers", "auditLogs", "teamMembers", "teamInvitations", "questionnaireResponses",
		"feedback", "feedbackComments", "issueComments", "projectIntegrations", "questionnaires", "questionnaireResponseComments", "deferred"} {
		require.Equal(t, want[k], res[k], k)
	}
	require.Equal(t, false, res["_silent"])

	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT count(*) FROM teams WHERE id = $1`, []any{t1}},
		{`SELECT count(*) FROM projects WHERE id = ANY($1::uuid[])`, []any{[]string{p1, p3}}},
		{`SELECT count(*) FROM apps WHERE id = ANY($1::uuid[])`, []any{[]string{a1, a2, a3, a5}}},
		{`SELECT count(*) FROM events WHERE app_id = ANY($1::uuid[])`, []any{[]string{a1, a2, a3, a5}}},
		{`SELECT count(*) FROM metric_events`, nil},
		{`SELECT count(*) FROM funnel_events`, nil},
		{`SELECT count(*) FROM issues`, nil},
		{`SELECT count(*) FROM issue_occurrences`, nil},
		{`SELECT count(*) FROM event_attachments`, nil},
		{`SELECT count(*) FROM questionnaires`, nil},
		{`SELECT count(*) FROM feedback`, nil},
		{`SELECT count(*) FROM job_runs`, nil},
		{`SELECT count(*) FROM app_users`, nil},
	} {
		require.Zero(t, count(t, pool, q.sql, q.args...), q.sql)
	}
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM teams WHERE id = $1`, t2))
	require.Equal(t, []string{"e"}, labels(t, pool, "events", a4), "soft-deleted six days ago: kept")
	require.Equal(t, []string{"e"}, labels(t, pool, "events", a6))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM api_keys WHERE id = $1`, keep))
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM apps WHERE id = ANY($1::uuid[])`, []string{a4, a6}))

	sums, _ := audits(t, pool, "soft_delete_cleanup")
	require.Equal(t, map[auditKey]int64{{p2, "events"}: 4, {"", "events"}: 7, {"", "metric_events"}: 2, {"", "funnel_events"}: 2}, sums,
		"audit rows of projects that are gone lose their project through ON DELETE SET NULL")
	var cutoff time.Time
	require.NoError(t, pool.QueryRow(bg, `SELECT cutoff_date FROM event_deletions WHERE project_id = $1`, p2).Scan(&cutoff))
	require.WithinDuration(t, now.Add(-7*day), cutoff, time.Minute)

	last := prog.last()
	require.Equal(t, int64(4), last.total)
	require.Equal(t, int64(4), last.processed)
	require.Equal(t, "4 of 4 entities · 15 event rows deleted", last.message)

	res, err, _ = runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.SoftDeleteCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, true, res["_silent"])
}

// An entity with an active run waits for the next run; one restored before its turn is
// left alone.
func TestSoftDeleteCleanupDefersBusyAndSkipsRestoredEntities(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	m0 := db.MonthStart(t0(t, pool))
	team := seedTeam(t, pool)
	busy := seedProject(t, pool, team)
	busyApp := seedApp(t, pool, busy)
	insertEvents(t, pool, "events", busyApp, m0.Add(time.Hour), 2, time.Minute, "e")
	exec(t, pool, `INSERT INTO job_runs (job_type, status, team_id, project_id, triggered_by, started_at, heartbeat_at, owner_node, owner_instance)
		VALUES ('apple_ads_sync', 'running', $1, $2, 'x', now(), now(), 'n', gen_random_uuid())`, team, busy)
	softDelete(t, pool, "projects", busy, 10*day)
	live := seedProject(t, pool, team)
	gone, restored := seedApp(t, pool, live), seedApp(t, pool, live)
	insertEvents(t, pool, "events", gone, m0.Add(time.Hour), 2, time.Minute, "e")
	insertEvents(t, pool, "events", restored, m0.Add(time.Hour), 2, time.Minute, "e")
	softDelete(t, pool, "apps", gone, 9*day)
	softDelete(t, pool, "apps", restored, 8*day)

	deps := testDeps(newFakeClock(time.Now()))
	var seen int
	deps.CheckpointFunc = func(_ context.Context, p jobs.Checkpoint) {
		if p == jobs.CheckpointSoftDeleteEntity {
			if seen++; seen == 3 {
				exec(t, pool, `UPDATE apps SET deleted_at = NULL WHERE id = $1`, restored)
			}
		}
	}
	res, err, _ := runHandler(bg, t, pool, deps, jobtype.SoftDeleteCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), res["deferred"])
	require.Equal(t, int64(1), res["apps"])
	require.Equal(t, int64(0), res["projects"])
	require.Equal(t, int64(2), res["events"])
	require.Equal(t, []string{"e"}, labels(t, pool, "events", busyApp))
	require.Equal(t, []string{"e"}, labels(t, pool, "events", restored))
	require.Equal(t, []string{}, labels(t, pool, "events", gone))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM projects WHERE id = $1`, busy))
}

func TestSoftDeleteCleanupSweepsIndependentRows(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	user := seedUser(t, pool)
	team := seedTeam(t, pool)
	project := seedProject(t, pool, team)
	app := seedApp(t, pool, project)
	expired := func(table, id string) { softDelete(t, pool, table, id, 8*day) }

	q1 := insertID(t, pool, `INSERT INTO questionnaires (project_id, slug, name, schema) VALUES ($1, 'q1', 'Q', '{}')`, project)
	r1 := insertID(t, pool, `INSERT INTO questionnaire_responses (questionnaire_id, slug, app_id, project_id, answers) VALUES ($1, 'q1', $2, $3, '{}')`, q1, app, project)
	expired("questionnaires", q1) // still answered by a live response: survives
	q2 := insertID(t, pool, `INSERT INTO questionnaires (project_id, slug, name, schema) VALUES ($1, 'q2', 'Q', '{}')`, project)
	r2 := insertID(t, pool, `INSERT INTO questionnaire_responses (questionnaire_id, slug, app_id, project_id, answers) VALUES ($1, 'q2', $2, $3, '{}')`, q2, app, project)
	expired("questionnaires", q2)
	expired("questionnaire_responses", r2) // swept first, so q2 goes in the same run
	q3 := insertID(t, pool, `INSERT INTO questionnaires (project_id, slug, name, schema) VALUES ($1, 'q3', 'Q', '{}')`, project)
	softDelete(t, pool, "questionnaires", q3, 3*day)
	rc := insertID(t, pool, `INSERT INTO questionnaire_response_comments (questionnaire_response_id, author_type, author_id, author_name, body)
		VALUES ($1, 'user', gen_random_uuid(), 'a', 'b')`, r1)
	expired("questionnaire_response_comments", rc)

	f1 := insertID(t, pool, `INSERT INTO feedback (app_id, project_id, message) VALUES ($1, $2, 'old')`, app, project)
	insertID(t, pool, `INSERT INTO feedback_comments (feedback_id, author_type, author_id, author_name, body) VALUES ($1, 'user', gen_random_uuid(), 'a', 'b')`, f1)
	expired("feedback", f1)
	f2 := insertID(t, pool, `INSERT INTO feedback (app_id, project_id, message) VALUES ($1, $2, 'live')`, app, project)
	c2 := insertID(t, pool, `INSERT INTO feedback_comments (feedback_id, author_type, author_id, author_name, body) VALUES ($1, 'user', gen_random_uuid(), 'a', 'b')`, f2)
	expired("feedback_comments", c2)

	issue := insertID(t, pool, `INSERT INTO issues (app_id, project_id, title, first_seen_at, last_seen_at) VALUES ($1, $2, 'boom', now(), now())`, app, project)
	ic1 := insertID(t, pool, `INSERT INTO issue_comments (issue_id, author_type, author_id, author_name, body) VALUES ($1, 'user', gen_random_uuid(), 'a', 'b')`, issue)
	ic2 := insertID(t, pool, `INSERT INTO issue_comments (issue_id, author_type, author_id, author_name, body) VALUES ($1, 'user', gen_random_uuid(), 'a', 'b')`, issue)
	expired("issue_comments", ic1)
	softDelete(t, pool, "issue_comments", ic2, 2*day)
	pi1 := insertID(t, pool, `INSERT INTO project_integrations (project_id, provider, config) VALUES ($1, 'revenuecat', '{}')`, project)
	insertID(t, pool, `INSERT INTO project_integrations (project_id, provider, config) VALUES ($1, 'apple-search-ads', '{}')`, project)
	expired("project_integrations", pi1)
	key := apiKey(t, pool, team, &app, user)
	expired("api_keys", key)

	res, err, _ := runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.SoftDeleteCleanup, nil)
	require.NoError(t, err)
	for k, v := range map[string]int64{
		"questionnaireResponses": 1, "questionnaires": 1, "feedback": 1, "feedbackComments": 1,
		"questionnaireResponseComments": 1, "issueComments": 1, "projectIntegrations": 1, "apiKeys": 0, "apps": 0,
	} {
		require.Equal(t, v, res[k], k)
	}
	require.Equal(t, false, res["_silent"])
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM questionnaires WHERE id = ANY($1::uuid[])`, []string{q1, q3}))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM questionnaires WHERE id = $1`, q2))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM feedback`))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM issue_comments`))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM project_integrations`))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM api_keys WHERE id = $1`, key), "independently soft-deleted keys are kept")
}

// The companion tables are optional: when one is missing, its counter stays 0.
func TestSoftDeleteCleanupToleratesMissingTables(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	exec(t, pool, `DROP TABLE feedback_comments, questionnaire_response_comments, questionnaire_responses, team_invitations`)
	user := seedUser(t, pool)
	team := seedTeam(t, pool)
	project := seedProject(t, pool, team)
	app := seedApp(t, pool, project)
	exec(t, pool, `INSERT INTO questionnaires (project_id, slug, name, schema) VALUES ($1, 'q', 'Q', '{}')`, project)
	exec(t, pool, `INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)`, team, user)
	f := insertID(t, pool, `INSERT INTO feedback (app_id, project_id, message) VALUES ($1, $2, 'old')`, app, project)
	softDelete(t, pool, "feedback", f, 8*day)
	softDelete(t, pool, "teams", team, 8*day)

	res, err, _ := runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.SoftDeleteCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), res["teams"])
	require.Equal(t, int64(1), res["teamMembers"])
	require.Equal(t, int64(0), res["teamInvitations"])
	require.Equal(t, int64(0), res["questionnaireResponses"])
	require.Equal(t, int64(0), res["feedback"], "the feedback went with its team")
	require.Zero(t, count(t, pool, `SELECT count(*) FROM questionnaires`))
}

// Cancelled between event batches, the entity keeps its row and the rest of its events;
// the next run finishes it.
func TestSoftDeleteCleanupStopsBetweenEventBatches(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	m0 := db.MonthStart(t0(t, pool))
	project := seedProject(t, pool, seedTeam(t, pool))
	app := seedApp(t, pool, project)
	insertEvents(t, pool, "events", app, m0.Add(time.Hour), 12000, time.Millisecond, "e")
	softDelete(t, pool, "apps", app, 8*day)

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	deps := testDeps(newFakeClock(time.Now()))
	deps.CheckpointFunc = cancelAt(jobs.CheckpointSoftDeleteBatch, 2, cancel)
	_, err, _ := runHandler(ctx, t, pool, deps, jobtype.SoftDeleteCleanup, nil)
	partial := stoppedResult(t, err)
	require.Equal(t, int64(5000), partial["events"])
	require.Equal(t, int64(0), partial["apps"])
	require.Equal(t, int64(7000), count(t, pool, `SELECT count(*) FROM events WHERE app_id = $1`, app))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM apps WHERE id = $1`, app))

	res, err, _ := runHandler(bg, t, pool, testDeps(newFakeClock(time.Now())), jobtype.SoftDeleteCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(7000), res["events"])
	require.Equal(t, int64(1), res["apps"])
	sums, _ := audits(t, pool, "soft_delete_cleanup")
	require.Equal(t, int64(12000), sums[auditKey{project, "events"}])
}
