package jobs_test

import (
	"context"
	"encoding/json"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// ratingRow is one app_store_ratings row as the tests compare it.
type ratingRow struct {
	Avg      *string
	Count    int64
	CurAvg   *string
	CurCount *int64
	Version  *string
}

// today is the database's UTC date, the snapshot date of a run started now.
func (b *testBundle) today(t *testing.T) time.Time {
	t.Helper()
	var d time.Time
	b.scalar(t, &d, `SELECT (now() AT TIME ZONE 'UTC')::date`)
	return d
}

// snapshot returns an app's rows of one snapshot date by storefront.
func (b *testBundle) snapshot(t *testing.T, app seededApp, date time.Time) map[string]ratingRow {
	t.Helper()
	rs, err := b.tdb.Pool.Query(context.Background(), `
		SELECT country_code, average_rating::text, rating_count, current_version_average_rating::text,
		       current_version_rating_count, app_version, team_id::text, project_id::text, store
		  FROM app_store_ratings WHERE app_id = $1 AND snapshot_date = $2`, app.ID, date)
	require.NoError(t, err)
	out := map[string]ratingRow{}
	var teamID string
	require.NoError(t, b.tdb.Pool.QueryRow(context.Background(), `SELECT team_id::text FROM apps WHERE id = $1`, app.ID).Scan(&teamID))
	for rs.Next() {
		var (
			cc, team, project, store string
			r                        ratingRow
			count                    int32
			cur                      *int32
		)
		require.NoError(t, rs.Scan(&cc, &r.Avg, &count, &r.CurAvg, &cur, &r.Version, &team, &project, &store))
		require.Equal(t, teamID, team)
		require.Equal(t, app.ProjectID, project)
		require.Equal(t, "app_store", store)
		r.Count = int64(count)
		if cur != nil {
			r.CurCount = ptr(int64(*cur))
		}
		out[cc] = r
	}
	require.NoError(t, rs.Err())
	return out
}

// rowCount counts an app's rows over all dates.
func (b *testBundle) rowCount(t *testing.T, app seededApp) int {
	t.Helper()
	var n int
	b.scalar(t, &n, `SELECT count(*) FROM app_store_ratings WHERE app_id = $1`, app.ID)
	return n
}

// seedRating inserts a row daysAgo days before today; a nil average with count 0 is a
// tombstone.
func (b *testBundle) seedRating(t *testing.T, app seededApp, country string, daysAgo int, avg *string, count int64) {
	t.Helper()
	b.exec(t, `INSERT INTO app_store_ratings (team_id, project_id, app_id, store, country_code, average_rating, rating_count, snapshot_date)
		SELECT team_id, project_id, id, 'app_store', $2, $3::numeric, $4, (now() AT TIME ZONE 'UTC')::date - $5::int
		  FROM apps WHERE id = $1`, app.ID, country, avg, count, daysAgo)
}

// worldwide is the cache on apps.
type worldwide struct {
	Avg      *string
	Count    *int64
	CurAvg   *string
	CurCount *int64
	SyncedAt *time.Time
}

func (b *testBundle) worldwide(t *testing.T, app seededApp) worldwide {
	t.Helper()
	var w worldwide
	require.NoError(t, b.tdb.Pool.QueryRow(context.Background(), `
		SELECT worldwide_average_rating::text, worldwide_rating_count::int8, worldwide_current_version_rating::text,
		       worldwide_current_version_rating_count::int8, ratings_synced_at
		  FROM apps WHERE id = $1`, app.ID).Scan(&w.Avg, &w.Count, &w.CurAvg, &w.CurCount, &w.SyncedAt))
	return w
}

// emuApp returns the emulator's current entry for a bundle id.
func (b *testBundle) emuApp(t *testing.T, bundle string) emuitunes.App {
	t.Helper()
	for _, a := range b.emu.State().Apps {
		if a.BundleID == bundle {
			return a
		}
	}
	t.Fatalf("no app %s in the emulator", bundle)
	return emuitunes.App{}
}

// round2 is the upstream decimal rounded to 2 places, half away from zero, computed
// with exact rationals from the text the API sends.
func round2(v float64) string {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'f', -1, 64))
	if !ok {
		panic("bad float")
	}
	return r.FloatString(2)
}

// expectedRows is what a snapshot of a fully-rated app must hold: one row per storefront
// that sells it, as the emulator serves it.
func expectedRows(a emuitunes.App) map[string]ratingRow {
	out := map[string]ratingRow{}
	for cc, r := range a.Storefronts {
		curAvg, curCount := r.Average, r.Count
		if r.CurrentAverage != nil {
			curAvg = *r.CurrentAverage
		}
		if r.CurrentCount != nil {
			curCount = *r.CurrentCount
		}
		out[cc] = ratingRow{Avg: ptr(round2(r.Average)), Count: r.Count, CurAvg: ptr(round2(curAvg)), CurCount: ptr(curCount), Version: ptr(a.Version)}
	}
	return out
}

// expectedWorldwide computes the cache of jobs.md §12.3 step 2 from the latest rows.
func expectedWorldwide(t *testing.T, latest map[string]ratingRow) worldwide {
	t.Helper()
	avg, n := weighted(t, latest, func(r ratingRow) (*string, int64) { return r.Avg, r.Count })
	cur, cn := weighted(t, latest, func(r ratingRow) (*string, int64) {
		if r.CurCount == nil {
			return r.CurAvg, 0
		}
		return r.CurAvg, *r.CurCount
	})
	return worldwide{Avg: avg, Count: n, CurAvg: cur, CurCount: cn}
}

func weighted(t *testing.T, rows map[string]ratingRow, pick func(ratingRow) (*string, int64)) (*string, *int64) {
	t.Helper()
	sum, total := new(big.Rat), int64(0)
	for _, r := range rows {
		avg, count := pick(r)
		if avg == nil || count <= 0 {
			continue
		}
		a, ok := new(big.Rat).SetString(*avg)
		require.True(t, ok)
		sum.Add(sum, new(big.Rat).Mul(a, new(big.Rat).SetInt64(count)))
		total += count
	}
	if total == 0 {
		return nil, nil
	}
	s := new(big.Rat).Quo(sum, new(big.Rat).SetInt64(total)).FloatString(2)
	return &s, &total
}

// requireWorldwide compares the cache with the expectation, ignoring the sync time.
func requireWorldwide(t *testing.T, want, got worldwide) {
	t.Helper()
	got.SyncedAt = nil
	require.Equal(t, want, got)
}

// notification is one notifications row.
type notification struct {
	UserID string
	TeamID string
	Title  string
	Body   string
	Link   string
	Data   map[string]any
}

func (b *testBundle) notifications(t *testing.T) []notification {
	t.Helper()
	rs, err := b.tdb.Pool.Query(context.Background(), `
		SELECT user_id::text, team_id::text, title, coalesce(body, ''), coalesce(link, ''), data
		  FROM notifications WHERE type = 'app.rating_changed' ORDER BY title, user_id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (notification, error) {
		var n notification
		var data []byte
		err := r.Scan(&n.UserID, &n.TeamID, &n.Title, &n.Body, &n.Link, &data)
		if err == nil {
			err = json.Unmarshal(data, &n.Data)
		}
		return n, err
	})
	require.NoError(t, err)
	return out
}

// runDirect calls a handler outside the engine, for checks at the handler's own
// boundary (params re-checked at start, overlapping runs).
func (b *testBundle) runDirect(ctx context.Context, jobType string, params map[string]any) (engine.Result, error) {
	return b.handlers[jobType].Run(ctx, &engine.Run{
		ID: "00000000-0000-4000-8000-000000000001", JobType: jobType, Params: params, DB: b.tdb.Pool,
	})
}

// ratingsTeamRun creates the team run of POST /v1/projects/:id/ratings/sync.
func (b *testBundle) ratingsTeamRun(t *testing.T, p seededProject) engine.RunRecord {
	t.Helper()
	rec, err := b.eng.Enqueue(context.Background(), engine.EnqueueRequest{
		JobType: jobtype.AppStoreRatingsSync, Entry: jobtype.EntryRouteRatings,
		TeamID: &p.TeamID, ProjectID: &p.ID, Params: map[string]any{}, TriggeredBy: "api_key:test",
	})
	require.NoError(t, err)
	return b.wait(t, rec.ID)
}
