package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/owltest"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Shutdown()
	if code == 0 {
		// Every stack stops its server, engine and background writers with its test.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// response is one answer of the API, read completely.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as one JSON object.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// Error returns the envelope's error message.
func (r response) Error(t testing.TB) string {
	t.Helper()
	msg, _ := r.JSON(t)["error"].(string)
	return msg
}

// req describes a request; zero values mean "none".
type req struct {
	method      string
	path        string
	token       string
	body        string
	contentType string
	header      map[string]string
}

var httpClient = &http.Client{Timeout: 40 * time.Second}

// call sends a request to the stack over its real listener.
func call(t testing.TB, s *owltest.Stack, q req) response {
	t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r, err := http.NewRequestWithContext(context.Background(), q.method, s.URL+q.path, body)
	require.NoError(t, err)
	if q.token != "" {
		r.Header.Set("Authorization", "Bearer "+q.token)
	}
	switch {
	case q.contentType != "":
		r.Header.Set("Content-Type", q.contentType)
	case q.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	resp, err := httpClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func get(t testing.TB, s *owltest.Stack, path, token string) response {
	t.Helper()
	return call(t, s, req{method: http.MethodGet, path: path, token: token})
}

func post(t testing.TB, s *owltest.Stack, path, token, body string) response {
	t.Helper()
	return call(t, s, req{method: http.MethodPost, path: path, token: token, body: body})
}

// requireError checks an error answer: status, message, and the JSON envelope.
func requireError(t testing.TB, r response, status int, msg string) {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r.Body)
	require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, msg, r.Error(t), "body: %s", r.Body)
}

// apiTime is the API's timestamp layout (api.md §1).
var apiTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// jobRunFields are the fields of a JobRun in the API (api.md §6.1).
var jobRunFields = []string{"id", "job_type", "status", "team_id", "project_id", "triggered_by", "params",
	"progress", "result", "error", "notify", "started_at", "completed_at", "created_at", "cancel_requested_at"}

// requireJobRunShape checks a JobRun object field by field: exactly the documented keys,
// and every timestamp in the API layout.
func requireJobRunShape(t testing.TB, run map[string]any) {
	t.Helper()
	keys := make([]string, 0, len(run))
	for k := range run {
		keys = append(keys, k)
	}
	require.ElementsMatch(t, jobRunFields, keys)
	for _, k := range []string{"started_at", "completed_at", "created_at", "cancel_requested_at"} {
		if v := run[k]; v != nil {
			s, ok := v.(string)
			require.True(t, ok, "%s is %T", k, v)
			require.Regexp(t, apiTime, s, k)
		}
	}
	require.Regexp(t, apiTime, run["created_at"])
	_, isBool := run["notify"].(bool)
	require.True(t, isBool, "notify is a boolean")
	require.IsType(t, "", run["id"])
	require.Equal(t, strings.ToLower(run["id"].(string)), run["id"])
}

// seedRun inserts a job_runs row directly, for tests that need runs in states or at
// times the engine would take long to produce. It returns the run id.
type seedRun struct {
	jobType   string
	status    string
	teamID    *string
	projectID *string
	createdAt time.Time
}

func insertRun(t testing.TB, s *owltest.Stack, r seedRun) string {
	t.Helper()
	if r.jobType == "" {
		r.jobType = "apple_ads_sync"
	}
	if r.status == "" {
		r.status = "completed"
	}
	if r.createdAt.IsZero() {
		r.createdAt = time.Now()
	}
	var pj []byte // NULL unless the run has a project
	if r.projectID != nil {
		var err error
		pj, err = json.Marshal(map[string]any{"project_id": *r.projectID})
		require.NoError(t, err)
	}
	var id string
	err := s.DB.Pool.QueryRow(context.Background(), `
		INSERT INTO job_runs (job_type, status, team_id, project_id, triggered_by, params, created_at,
		                      started_at, completed_at, owner_instance, heartbeat_at, result)
		VALUES ($1, $2::job_status, $3, $4, 'manual:cli:test@host', $5::jsonb, $6,
		        CASE WHEN $2 <> 'pending' THEN $6::timestamptz END,
		        CASE WHEN $2 IN ('completed','failed','cancelled') THEN $6::timestamptz + interval '1 second' END,
		        CASE WHEN $2 = 'running' THEN gen_random_uuid() END,
		        CASE WHEN $2 = 'running' THEN now() END,
		        CASE WHEN $2 = 'completed' THEN '{"ok": true}'::jsonb END)
		RETURNING id`, r.jobType, r.status, r.teamID, r.projectID, pj, r.createdAt).Scan(&id)
	require.NoError(t, err)
	return id
}

func ptr[T any](v T) *T { return &v }

// auditRows counts audit rows for a run with an action.
func auditRows(t testing.TB, s *owltest.Stack, runID, action string) []map[string]any {
	t.Helper()
	rows, err := s.DB.Pool.Query(context.Background(), `SELECT actor_type::text, actor_id, team_id::text, metadata
		FROM audit_logs WHERE resource_type = 'job_run' AND resource_id = $1 AND action = $2`, runID, action)
	require.NoError(t, err)
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var actorType, actorID, teamID string
		var meta map[string]any
		require.NoError(t, rows.Scan(&actorType, &actorID, &teamID, &meta))
		out = append(out, map[string]any{"actor_type": actorType, "actor_id": actorID, "team_id": teamID, "metadata": meta})
	}
	require.NoError(t, rows.Err())
	return out
}

// engineSettings shortens engine.Settings in option closures.
type engineSettings = engine.Settings

// activeRun inserts a pending or running run of team on a project of its own, so that
// active runs of one test never share an overlap key.
func activeRun(t testing.TB, s *owltest.Stack, team owltest.Team, status string) string {
	t.Helper()
	p := s.SeedProject(t, owltest.InTeam(team))
	return insertRun(t, s, seedRun{teamID: &team.ID, projectID: &p.ID, status: status})
}
