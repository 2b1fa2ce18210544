package server_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/owltest"
)

var cursorFormat = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\|[0-9a-f-]{36}$`)

func listPath(teamID string, q url.Values) string {
	p := "/v1/teams/" + teamID + "/jobs"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

// page is one decoded list answer.
type page struct {
	ids     []string
	cursor  any
	hasMore bool
	runs    []map[string]any
}

func listPage(t *testing.T, s *owltest.Stack, token, path string) page {
	t.Helper()
	r := get(t, s, path, token)
	require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
	doc := r.JSON(t)
	keys := []string{}
	for k := range doc {
		keys = append(keys, k)
	}
	require.ElementsMatch(t, []string{"job_runs", "cursor", "has_more"}, keys)
	var p page
	p.cursor, p.hasMore = doc["cursor"], doc["has_more"].(bool)
	for _, x := range doc["job_runs"].([]any) {
		run := x.(map[string]any)
		requireJobRunShape(t, run)
		p.runs = append(p.runs, run)
		p.ids = append(p.ids, run["id"].(string))
	}
	return p
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)
	team := stack.SeedTeam(t)
	key := stack.SeedKey(t, team, []string{"jobs:read"}).Token
	p1 := stack.SeedProject(t, owltest.InTeam(team))
	p2 := stack.SeedProject(t, owltest.InTeam(team))
	// A day a month ago: every run is older than an hour and younger than 100 years.
	day := time.Now().UTC().AddDate(0, 0, -30).Truncate(24 * time.Hour)
	base := day.Add(10*time.Hour + 30*time.Minute + 123456*time.Microsecond)

	// Eight runs at distinct times, and five that share one instant to the microsecond,
	// so only the id breaks the tie between them.
	var all []string
	for i, st := range []string{"completed", "failed", "cancelled", "pending", "running", "completed", "completed", "failed"} {
		pid := &p1.ID
		jt := "apple_ads_sync"
		if i%2 == 1 {
			pid, jt = &p2.ID, "revenuecat_sync"
		}
		all = append(all, insertRun(t, stack, seedRun{jobType: jt, status: st, teamID: &team.ID, projectID: pid,
			createdAt: base.Add(time.Duration(i) * time.Hour)}))
	}
	for range 5 {
		all = append(all, insertRun(t, stack, seedRun{status: "completed", teamID: &team.ID, projectID: &p1.ID,
			createdAt: base.Add(3*time.Hour + 30*time.Minute)}))
	}
	// Noise that must never show: another team's run and a system run.
	other := stack.SeedTeam(t)
	insertRun(t, stack, seedRun{teamID: &other.ID, createdAt: base})
	insertRun(t, stack, seedRun{jobType: "retention_cleanup", createdAt: base})

	// The expected order, straight from the database.
	rows, err := stack.DB.Pool.Query(context.Background(), `SELECT id FROM job_runs WHERE team_id = $1
		ORDER BY created_at DESC, id DESC`, team.ID)
	require.NoError(t, err)
	var want []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		want = append(want, id)
	}
	require.NoError(t, rows.Err())
	require.ElementsMatch(t, all, want)

	t.Run("first page shape", func(t *testing.T) {
		t.Parallel()
		p := listPage(t, stack, key, listPath(team.ID, nil))
		require.Equal(t, want, p.ids)
		require.False(t, p.hasMore)
		require.Nil(t, p.cursor)
		first := p.runs[0]
		require.Equal(t, team.ID, first["team_id"])
		require.Equal(t, "manual:cli:test@host", first["triggered_by"])
		require.Equal(t, false, first["notify"])
		require.Nil(t, first["cancel_requested_at"])
	})

	t.Run("pages neither skip nor repeat", func(t *testing.T) {
		t.Parallel()
		for _, limit := range []string{"1", "2", "3", "5"} {
			var got []string
			q := url.Values{"limit": {limit}}
			for n := 0; ; n++ {
				require.Less(t, n, 20, "pagination does not end")
				p := listPage(t, stack, key, listPath(team.ID, q))
				got = append(got, p.ids...)
				if !p.hasMore {
					require.Nil(t, p.cursor)
					break
				}
				c, ok := p.cursor.(string)
				require.True(t, ok)
				require.Regexp(t, cursorFormat, c)
				q.Set("cursor", c)
			}
			require.Equal(t, want, got, "limit %s", limit)
		}
	})

	t.Run("cursor encodings", func(t *testing.T) {
		t.Parallel()
		p := listPage(t, stack, key, listPath(team.ID, url.Values{"limit": {"4"}}))
		c := p.cursor.(string)
		raw := listPage(t, stack, key, "/v1/teams/"+team.ID+"/jobs?limit=4&cursor="+c) // a literal |
		enc := listPage(t, stack, key, listPath(team.ID, url.Values{"limit": {"4"}, "cursor": {c}}))
		require.Equal(t, want[4:8], raw.ids)
		require.Equal(t, raw.ids, enc.ids)
		// Fewer fractional digits and another zone name the same position.
		ts, _ := time.Parse(time.RFC3339Nano, c[:27])
		id := c[28:]
		shifted := ts.In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.999999999-07:00") + "|" + id
		require.Equal(t, want[4:8], listPage(t, stack, key, listPath(team.ID, url.Values{"limit": {"4"}, "cursor": {shifted}})).ids)
		// Upper-case ids are accepted.
		require.Equal(t, want[4:8], listPage(t, stack, key, listPath(team.ID, url.Values{"limit": {"4"},
			"cursor": {c[:28] + upper(id)}})).ids)
	})

	t.Run("filters", func(t *testing.T) {
		t.Parallel()
		filter := func(q url.Values) []string { return listPage(t, stack, key, listPath(team.ID, q)).ids }
		only := func(pred func(id string) bool) []string {
			var out []string
			for _, id := range want {
				if pred(id) {
					out = append(out, id)
				}
			}
			return out
		}
		column := func(col, id string) string {
			var v string
			require.NoError(t, stack.DB.Pool.QueryRow(context.Background(), `SELECT `+col+`::text FROM job_runs WHERE id = $1`, id).Scan(&v))
			return v
		}
		created := func(id string) time.Time {
			var ts time.Time
			require.NoError(t, stack.DB.Pool.QueryRow(context.Background(), `SELECT created_at FROM job_runs WHERE id = $1`, id).Scan(&ts))
			return ts
		}
		require.Equal(t, only(func(id string) bool { return column("job_type", id) == "revenuecat_sync" }),
			filter(url.Values{"job_type": {"revenuecat_sync"}}))
		require.Equal(t, only(func(id string) bool { return column("status", id) == "completed" }),
			filter(url.Values{"status": {"completed"}}))
		require.Equal(t, only(func(id string) bool { return column("project_id", id) == p2.ID }),
			filter(url.Values{"project_id": {upper(p2.ID)}}))
		require.Equal(t, only(func(id string) bool {
			return column("project_id", id) == p1.ID && column("status", id) == "completed"
		}), filter(url.Values{"project_id": {p1.ID}, "status": {"completed"}}))
		require.Empty(t, filter(url.Values{"project_id": {stack.SeedProject(t, owltest.InTeam(other)).ID}}),
			"a project of another team yields an empty page")
		require.Empty(t, filter(url.Values{"job_type": {"retention_cleanup"}}), "system runs never show")

		// since and until are inclusive.
		since, until := base.Add(2*time.Hour), base.Add(5*time.Hour)
		require.Equal(t, only(func(id string) bool {
			c := created(id)
			return !c.Before(since) && !c.After(until)
		}), filter(url.Values{"since": {since.Format(time.RFC3339Nano)}, "until": {until.Format(time.RFC3339Nano)}}))
		require.Equal(t, want, filter(url.Values{"since": {day.Format("2006-01-02")},
			"until": {day.Add(24*time.Hour).Format("2006-01-02") + "T00:00:00+01:00"}}))
		require.Empty(t, filter(url.Values{"since": {"1h"}}), "all runs are older than an hour")
		require.Equal(t, want, filter(url.Values{"until": {"1m"}, "since": {"5200w"}}))
	})

	t.Run("limit", func(t *testing.T) {
		t.Parallel()
		big := stack.SeedTeam(t)
		bigKey := stack.SeedKey(t, big, []string{"jobs:read"}).Token
		_, err := stack.DB.Pool.Exec(context.Background(), `INSERT INTO job_runs (job_type, status, team_id, triggered_by, created_at, started_at, completed_at)
			SELECT 'apple_ads_sync', 'completed', $1, 'schedule', now() - make_interval(secs => g), now(), now() FROM generate_series(1, 205) g`, big.ID)
		require.NoError(t, err)
		for v, n := range map[string]int{"": 50, "0": 50, "-0": 50, "1": 1, "-5": 1, "+3": 3, "200": 200, "201": 200,
			"1000": 200, "9999999999": 200, "-9999999999": 1, "0007": 7} {
			q := url.Values{}
			if v != "" {
				q.Set("limit", v)
			}
			p := listPage(t, stack, bigKey, listPath(big.ID, q))
			require.Len(t, p.ids, n, "limit %q", v)
			require.True(t, p.hasMore)
		}
	})

	t.Run("malformed parameters", func(t *testing.T) {
		t.Parallel()
		timeMsg := func(v, name string) string {
			return `Invalid time input "` + v + `" for ` + name + `: use a relative duration (30s, 15m, 2h, 7d, 1w), an RFC 3339 timestamp or YYYY-MM-DD`
		}
		cases := map[string]string{
			"job_type=nope":                       `Invalid job_type "nope". Valid types: retention_cleanup, db_pruning, soft_delete_cleanup, partition_creation, attachment_cleanup, issue_scan, issue_notify, app_version_sync, app_store_ratings_sync, apple_ads_sync, app_store_connect_reviews_sync, revenuecat_sync, revenuecat_user_backfill`,
			"status=done":                         `Invalid status "done". Valid statuses: pending, running, completed, failed, cancelled`,
			"status=Completed":                    `Invalid status "Completed". Valid statuses: pending, running, completed, failed, cancelled`,
			"project_id=nope":                     "Invalid project_id: must be a UUID",
			"project_id=" + p1.ID + "0":           "Invalid project_id: must be a UUID",
			"since=1h30m":                         timeMsg("1h30m", "since"),
			"since=-1h":                           timeMsg("-1h", "since"),
			"since=1H":                            timeMsg("1H", "since"),
			"since=1y":                            timeMsg("1y", "since"),
			"since=1000000000s":                   timeMsg("1000000000s", "since"),
			"since=5219w":                         timeMsg("5219w", "since"),
			"since=2026-11-01T00:00:00":           timeMsg("2026-11-01T00:00:00", "since"),
			"since=2026-13-01":                    timeMsg("2026-13-01", "since"),
			"since=2026-02-30":                    timeMsg("2026-02-30", "since"),
			"since=yesterday":                     timeMsg("yesterday", "since"),
			"until=2026-11-01+00:00":              timeMsg("2026-11-01 00:00", "until"),
			"until=1700000000":                    timeMsg("1700000000", "until"),
			"since=2026-11-02&until=2026-11-01":   "since must not be later than until",
			"cursor=abc":                          "Invalid cursor",
			"cursor=2026-11-29T10:30:00Z":         "Invalid cursor",
			"cursor=2026-11-29T10:30:00Z|nope":    "Invalid cursor",
			"cursor=yesterday|" + p1.ID:           "Invalid cursor",
			"cursor=2026-11-29T10:30:00|" + p1.ID: "Invalid cursor",
			"limit=abc":                           `Invalid limit "abc": must be an integer`,
			"limit=1.5":                           `Invalid limit "1.5": must be an integer`,
			"limit=12345678901":                   `Invalid limit "12345678901": must be an integer`,
			"limit=%2B":                           `Invalid limit "+": must be an integer`,
		}
		for q, msg := range cases {
			r := get(t, stack, "/v1/teams/"+team.ID+"/jobs?"+q, key)
			requireError(t, r, http.StatusBadRequest, msg)
		}
		// Unknown parameters are ignored; empty values are "not given".
		require.Equal(t, want, listPage(t, stack, key, "/v1/teams/"+team.ID+"/jobs?foo=bar&status=&since=").ids)
	})
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
