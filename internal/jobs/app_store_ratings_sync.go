package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/notify"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

// AppStoreRatingsSync is the app_store_ratings_sync handler (jobs.md §12). It snapshots
// the App Store rating of every Apple app with a bundle id in each of the 249
// storefronts of upstreams.md Appendix A, writes tombstones for storefronts that stopped
// answering, refreshes the worldwide figures cached on apps, and tells the team when the
// worldwide rating count grew.
//
// All (app, storefront) pairs go through one worker pool of the iTunes concurrency cap,
// every request paced by the process's shared pacer, so the pacer alone sets the
// throughput (jobs.md §1.4 D12). Throttled and transient answers are retried up to 8
// times with exponential backoff. An app is finalised in one transaction as soon as its
// last pair is done; a cancelled run still finalises the apps it finished and stores
// what it fetched for the app it was working on.
//
// Lookup failures are counted per storefront, but an upstream that is down — 16
// storefronts in a row giving up after all their attempts — stops the run, stores what
// it fetched like a cancellation does and fails it with the last answer, so a waited
// sync reports the outage instead of finishing with nothing but errors.
type AppStoreRatingsSync struct {
	deps *Deps
}

// ratingsStore is app_store_ratings.store for App Store snapshots.
const ratingsStore = "app_store"

// ratingsApp is one target app and what the run gathered for it.
type ratingsApp struct {
	// Index is the app's 1-based position among the targets, for progress messages.
	Index     int
	ID        string
	BundleID  string
	ProjectID string

	// prevActive is jobs.md §12.3's previously_active: storefronts whose latest row has
	// an average. The producer sets it before queueing the app's pairs.
	prevActive map[string]bool
	// rows and finished belong to the collector.
	rows     []ratingRow
	finished int
}

// ratingRow is one app_store_ratings row to upsert. A tombstone has no average, count 0
// and no current-version fields or version.
type ratingRow struct {
	Country        string
	Average        *string // decimal text, rounded to 2 places by the database
	Count          int64
	CurrentAverage *string
	CurrentCount   *int64
	AppVersion     *string
}

// ratingsCounters are the result counters of jobs.md §12.7.
type ratingsCounters struct {
	AppsProcessed      int64
	AppsSkipped        int64
	AppsPartial        int64
	StorefrontsFetched int64
	RowsUpserted       int64
	TombstonesWritten  int64
	NotificationsSent  int64
	Errors             int64
	ThrottleHits       int64
	TransientHits      int64
	Retries            int64
	RetriesExhausted   int64
}

func (c ratingsCounters) result(finalDelay int64) engine.Result {
	return engine.Result{
		"apps_processed":      c.AppsProcessed,
		"apps_skipped":        c.AppsSkipped,
		"apps_partial":        c.AppsPartial,
		"storefronts_fetched": c.StorefrontsFetched,
		"rows_upserted":       c.RowsUpserted,
		"tombstones_written":  c.TombstonesWritten,
		"notifications_sent":  c.NotificationsSent,
		"errors":              c.Errors,
		"throttle_hits":       c.ThrottleHits,
		"transient_hits":      c.TransientHits,
		"retries":             c.Retries,
		"retries_exhausted":   c.RetriesExhausted,
		"final_delay_ms":      finalDelay,
		"_silent":             c.AppsProcessed == 0 && c.AppsSkipped == 0 && c.Errors == 0 && c.NotificationsSent == 0,
	}
}

type ratingsPair struct {
	app     *ratingsApp
	country string
}

type pairResult struct {
	pair      ratingsPair
	abandoned bool // the run stopped while the pair was in flight: dropped, not counted
	res       itunes.LookupResult
	stats     lookupStats
}

// ratingsRun is the state of one run.
type ratingsRun struct {
	h        *AppStoreRatingsSync
	run      *engine.Run
	snapshot string // the UTC date of T0, YYYY-MM-DD
	apps     []*ratingsApp
	total    int64

	// stopLookups ends the lookups early; failing is set (by the collector) when the
	// upstream failed hard.
	stopLookups context.CancelFunc
	failing     error
	streak      int // pairs in a row that gave up after their retries

	mu       sync.Mutex
	counters ratingsCounters
	pairs    int64 // pairs finished
	current  int   // highest app index with a finished pair
}

// hardFailureStreak is how many storefront lookups in a row may give up after all their
// attempts before the run stops and fails: two waves of the default concurrency, each
// of which spent about two minutes of backoff. A storefront that answers resets the
// count, so a flaky upstream only costs the storefronts it failed, while an upstream
// that is down fails the run in minutes instead of grinding through every storefront.
const hardFailureStreak = 16

// Run snapshots the ratings of the target apps (jobs.md §12.3).
func (h *AppStoreRatingsSync) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	t0, err := dbNow(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	projectID, appID := run.ParamString("project_id"), run.ParamString("app_id")
	if err := checkRatingsFilters(ctx, run.DB, projectID, appID); err != nil {
		return nil, err
	}
	apps, skipped, err := listRatingsApps(ctx, run.DB, projectID, appID)
	if err != nil {
		return nil, err
	}
	storefronts := itunes.Storefronts()
	r := &ratingsRun{
		h: h, run: run, snapshot: t0.Format("2006-01-02"), apps: apps,
		total: int64(len(apps) * len(storefronts)),
	}
	r.counters.AppsSkipped = skipped
	if len(apps) == 0 {
		return r.counters.result(h.finalDelay()), nil
	}
	r.report()

	lookCtx, stopLookups := context.WithCancel(ctx)
	defer stopLookups()
	r.stopLookups = stopLookups

	// The producer reads each app's previously active storefronts, then queues its pairs,
	// apps in order; it stops queueing when the run stops.
	pairs := make(chan ratingsPair)
	var producerErr error
	go func() {
		defer close(pairs)
		for _, app := range apps {
			if lookCtx.Err() != nil {
				return
			}
			prev, err := previouslyActive(lookCtx, run.DB, app.ID)
			if err != nil {
				if lookCtx.Err() == nil {
					producerErr = fmt.Errorf("read latest ratings of app %s: %w", app.ID, err)
					stopLookups()
				}
				return
			}
			app.prevActive = prev
			for _, cc := range storefronts {
				select {
				case pairs <- ratingsPair{app: app, country: cc}:
				case <-lookCtx.Done():
					return
				}
			}
		}
	}()

	workers := min(h.deps.ITunes.Pacer().Concurrency(), int(r.total))
	results := make(chan pairResult, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p := range pairs {
				results <- h.lookupPair(lookCtx, p)
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	// The finaliser writes each app as soon as its last pair is in, off the collector's
	// path so the lookups never wait for the database.
	finalize := make(chan *ratingsApp, len(apps))
	finalized := make(chan error, 1)
	go func() {
		var ferr error
		for app := range finalize {
			if ferr != nil {
				continue
			}
			if ferr = r.finalize(ctx, app, true); ferr != nil {
				stopLookups()
			}
		}
		finalized <- ferr
	}()

	for res := range results {
		if res.abandoned {
			continue
		}
		app := res.pair.app
		r.record(res)
		if app.finished == len(storefronts) {
			finalize <- app
		}
	}
	close(finalize)
	finalErr := <-finalized

	switch {
	case producerErr != nil:
		return nil, producerErr
	case finalErr != nil:
		return nil, finalErr
	}

	// Stopped early — cancelled, or the upstream failed hard: store what the unfinished
	// apps fetched, without notifying (jobs.md §12.6). Apps never started stay untouched.
	stopped := false
	for _, app := range apps {
		if app.finished == len(storefronts) {
			continue
		}
		stopped = true
		if app.finished > 0 {
			if err := r.finalize(ctx, app, false); err != nil {
				return nil, err
			}
		}
	}
	if r.failing != nil {
		return nil, r.failing
	}
	r.mu.Lock()
	result := r.counters.result(h.finalDelay())
	r.mu.Unlock()
	if stopped {
		return nil, engine.Stopped(result)
	}
	return result, nil
}

// lookupPair fetches one storefront of one app with the retry policy of jobs.md §12.3.
func (h *AppStoreRatingsSync) lookupPair(ctx context.Context, p ratingsPair) pairResult {
	if ctx.Err() != nil {
		return pairResult{pair: p, abandoned: true}
	}
	res, st, err := h.deps.lookupWithRetry(ctx, itunes.LookupParams{BundleID: p.app.BundleID, Country: p.country}, ratingsLookupAttempts)
	return pairResult{pair: p, res: res, stats: st, abandoned: err != nil}
}

// record applies one finished pair to its app and the counters, and reports progress.
// Only the collector calls it.
func (r *ratingsRun) record(pr pairResult) {
	app, cc := pr.pair.app, pr.pair.country
	var tombstone bool
	var errored bool
	switch {
	case pr.stats.Exhausted:
		errored = true
	case pr.res.Outcome == itunes.OutcomeFound:
		if row, ok := ratingRowFrom(cc, pr.res.App); ok {
			app.rows = append(app.rows, row)
		} else {
			tombstone = app.prevActive[cc]
		}
	case pr.res.Outcome == itunes.OutcomeNotFound:
		tombstone = app.prevActive[cc]
	default:
		errored = true
	}
	if tombstone {
		app.rows = append(app.rows, ratingRow{Country: cc})
	}
	if errored {
		r.h.deps.log(r.run).Debug("storefront lookup failed", "app_id", app.ID, "country", cc,
			"outcome", string(pr.res.Outcome), "status", pr.res.Status, "message", pr.res.Message,
			"retries_exhausted", pr.stats.Exhausted)
	}
	r.watchHealth(pr)
	app.finished++

	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.counters
	c.StorefrontsFetched++
	c.ThrottleHits += int64(pr.stats.Throttled)
	c.TransientHits += int64(pr.stats.Transient)
	c.Retries += int64(pr.stats.Retries)
	if errored {
		c.Errors++
	}
	if pr.stats.Exhausted {
		c.RetriesExhausted++
	}
	if tombstone {
		c.TombstonesWritten++
	}
	r.pairs++
	r.current = max(r.current, app.Index)
	r.reportLocked()
}

// watchHealth fails the run once hardFailureStreak pairs in a row gave up after all
// their attempts, with no storefront answering in between. Plain errors (a 400 for one
// storefront) neither count nor reset. Only the collector calls it.
func (r *ratingsRun) watchHealth(pr pairResult) {
	switch {
	case pr.stats.Exhausted:
		r.streak++
	case pr.res.Outcome == itunes.OutcomeFound || pr.res.Outcome == itunes.OutcomeNotFound:
		r.streak = 0
	}
	if r.streak < hardFailureStreak || r.failing != nil {
		return
	}
	last := string(pr.res.Outcome)
	if pr.res.Status != 0 {
		last += " " + strconv.Itoa(pr.res.Status)
	}
	if pr.res.Message != "" {
		last += ": " + pr.res.Message
	}
	r.failing = fmt.Errorf("iTunes Lookup is failing: %d storefront lookups in a row gave up after %d attempts each (last answer: %s)",
		r.streak, ratingsLookupAttempts, last)
	r.stopLookups()
}

func (r *ratingsRun) report() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reportLocked()
}

// reportLocked sends "app <i> of <n> · <throttles> throttled · delay <d> ms" (jobs.md
// §12.5); it runs under r.mu.
func (r *ratingsRun) reportLocked() {
	msg := fmt.Sprintf("app %d of %d · %d throttled · delay %d ms",
		max(r.current, 1), len(r.apps), r.counters.ThrottleHits, r.h.finalDelay())
	report(r.run, r.pairs, r.total, msg)
}

// finalDelay is the pacer's interval in whole milliseconds (final_delay_ms).
func (h *AppStoreRatingsSync) finalDelay() int64 {
	return int64(math.Round(float64(h.deps.ITunes.Pacer().Interval()) / 1e6))
}

// ratingRowFrom turns a found answer into a row; false means the answer carries no
// rating at all (no average and count 0), which counts as not found.
func ratingRowFrom(country string, app *itunes.App) (ratingRow, bool) {
	row := ratingRow{Country: country, Average: ratingText(app.AverageUserRating)}
	if app.UserRatingCount != nil {
		row.Count = clampCount(*app.UserRatingCount)
	}
	if row.Average == nil && row.Count == 0 {
		return ratingRow{}, false
	}
	row.CurrentAverage = ratingText(app.AverageUserRatingForCurrentVersion)
	if n := app.UserRatingCountForCurrentVersion; n != nil {
		v := clampCount(*n)
		row.CurrentCount = &v
	}
	if v, ok := usableVersion(app.Version); ok {
		row.AppVersion = &v
	}
	return row, true
}

// ratingText renders an average as the shortest decimal that reads back as the same
// number, which is the text the API sent, so the database rounds the upstream's decimal
// rather than a binary approximation of it. An average off the 0–5 scale cannot be
// stored (numeric(3,2)) and counts as absent.
func ratingText(v *float64) *string {
	if v == nil || math.IsNaN(*v) || *v < 0 || *v > 5 {
		return nil
	}
	s := strconv.FormatFloat(*v, 'f', -1, 64)
	return &s
}

// clampCount keeps a count within the integer columns.
func clampCount(n int64) int64 {
	return min(max(n, 0), math.MaxInt32)
}

// finalize writes an app in one transaction (jobs.md §12.3 "Finalise an app"): lock the
// app row and read the baseline, upsert the rows, recompute the worldwide cache from the
// latest row per storefront and, when notifyGrowth is set and the count grew, notify the
// team. It is the app's final write, so it runs detached from the cancellation.
func (r *ratingsRun) finalize(ctx context.Context, app *ratingsApp, notifyGrowth bool) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	var upserted int64
	var sent bool
	err := pgx.BeginFunc(wctx, r.run.DB, func(tx pgx.Tx) error {
		upserted, sent = 0, false
		var (
			baseline *int64
			name     string
		)
		err := tx.QueryRow(wctx, sqlLockRatingsApp, app.ID).Scan(&baseline, &name)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // removed meanwhile: nothing left to write
		}
		if err != nil {
			return fmt.Errorf("lock app: %w", err)
		}
		if len(app.rows) > 0 {
			tag, err := tx.Exec(wctx, sqlUpsertRatings, upsertArgs(app.ID, r.snapshot, app.rows)...)
			if err != nil {
				return fmt.Errorf("upsert ratings: %w", err)
			}
			upserted = tag.RowsAffected()
		}
		var (
			count   *int64
			average *string
		)
		if err := tx.QueryRow(wctx, sqlRecomputeWorldwide, app.ID).Scan(&count, &average); err != nil {
			return fmt.Errorf("recompute worldwide ratings: %w", err)
		}
		if !notifyGrowth || baseline == nil || count == nil || *count <= *baseline {
			return nil
		}
		sent, err = r.notifyGrowth(wctx, tx, app, name, *baseline, *count, average)
		return err
	})
	if err != nil {
		return fmt.Errorf("finalise ratings of app %s: %w", app.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counters.RowsUpserted += upserted
	if sent {
		r.counters.NotificationsSent++
	}
	if notifyGrowth {
		r.counters.AppsProcessed++
	} else {
		r.counters.AppsPartial++
	}
	return nil
}

// notifyGrowth dispatches app.rating_changed to the members of the app's team (jobs.md
// §12.3 step 3) and reports whether anyone received it.
func (r *ratingsRun) notifyGrowth(ctx context.Context, tx pgx.Tx, app *ratingsApp, name string, oldCount, newCount int64, average *string) (bool, error) {
	teamID, members, err := notify.ProjectRecipients(ctx, tx, app.ProjectID)
	if err != nil {
		return false, err
	}
	if len(members) == 0 {
		return false, nil
	}
	delta := newCount - oldCount
	title := fmt.Sprintf("%d new ratings on %s", delta, name)
	if delta == 1 {
		title = fmt.Sprintf("1 new rating on %s", name)
	}
	body := fmt.Sprintf("Now at %d ratings.", newCount)
	var avg any
	if average != nil {
		body = fmt.Sprintf("Average is now %s★ across %d ratings.", *average, newCount)
		avg = *average
	}
	ins, err := r.h.deps.inserter(r.run.DB)
	if err != nil {
		return false, err
	}
	n, err := notify.Dispatch(ctx, tx, ins, notify.Notification{
		Type:       notify.TypeAppRatingChanged,
		TeamID:     &teamID,
		Recipients: members,
		Title:      title,
		Body:       body,
		Link:       "/dashboard/projects/" + app.ProjectID,
		Data: map[string]any{
			"app_id":         app.ID,
			"app_name":       name,
			"project_id":     app.ProjectID,
			"old_count":      oldCount,
			"new_count":      newCount,
			"delta":          delta,
			"average_rating": avg,
		},
	})
	return n > 0, err
}

func upsertArgs(appID, snapshot string, rows []ratingRow) []any {
	var (
		countries = make([]string, len(rows))
		averages  = make([]*string, len(rows))
		counts    = make([]int64, len(rows))
		curAvgs   = make([]*string, len(rows))
		curCounts = make([]*int64, len(rows))
		versions  = make([]*string, len(rows))
	)
	for i, row := range rows {
		countries[i], averages[i], counts[i] = row.Country, row.Average, row.Count
		curAvgs[i], curCounts[i], versions[i] = row.CurrentAverage, row.CurrentCount, row.AppVersion
	}
	return []any{appID, snapshot, countries, averages, counts, curAvgs, curCounts, versions}
}

// checkRatingsFilters applies jobs.md §12.2: a given project must be live (§3.2.2 rule
// 1) and a given app a live Apple app.
func checkRatingsFilters(ctx context.Context, q db.DBTX, projectID, appID string) error {
	if projectID != "" {
		var live bool
		if err := q.QueryRow(ctx, sqlLiveProject, projectID).Scan(&live); err != nil {
			return fmt.Errorf("check project %s: %w", projectID, err)
		}
		if !live {
			return fmt.Errorf("project %s not found or deleted", projectID)
		}
	}
	if appID != "" {
		var platform string
		err := q.QueryRow(ctx, sqlLiveAppPlatform, appID).Scan(&platform)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("app %s not found or deleted", appID)
		case err != nil:
			return fmt.Errorf("check app %s: %w", appID, err)
		case platform != "apple":
			return fmt.Errorf("app %s is not an Apple app", appID)
		}
	}
	return nil
}

// listRatingsApps returns the target apps with a bundle id, in creation order, and how
// many targets have none (apps_skipped).
func listRatingsApps(ctx context.Context, q db.DBTX, projectID, appID string) ([]*ratingsApp, int64, error) {
	rows, err := q.Query(ctx, sqlRatingsApps, nullIfEmpty(projectID), nullIfEmpty(appID))
	if err != nil {
		return nil, 0, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	var apps []*ratingsApp
	var skipped int64
	for rows.Next() {
		a := &ratingsApp{}
		var bundle *string
		if err := rows.Scan(&a.ID, &a.ProjectID, &bundle); err != nil {
			return nil, 0, fmt.Errorf("list apps: %w", err)
		}
		if bundle == nil {
			skipped++
			continue
		}
		a.BundleID = *bundle
		a.Index = len(apps) + 1
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list apps: %w", err)
	}
	return apps, skipped, nil
}

// previouslyActive returns the storefronts whose latest row for the app has an average.
func previouslyActive(ctx context.Context, q db.DBTX, appID string) (map[string]bool, error) {
	rows, err := q.Query(ctx, sqlPreviouslyActive, appID, ratingsStore)
	if err != nil {
		return nil, err
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(codes))
	for _, cc := range codes {
		out[cc] = true
	}
	return out, nil
}

const sqlLiveProject = `
SELECT EXISTS (
  SELECT 1 FROM projects p JOIN teams t ON t.id = p.team_id
   WHERE p.id = $1 AND p.deleted_at IS NULL AND t.deleted_at IS NULL)`

const sqlLiveAppPlatform = `
SELECT a.platform::text
  FROM apps a
  JOIN projects p ON p.id = a.project_id
  JOIN teams t ON t.id = p.team_id
 WHERE a.id = $1 AND a.deleted_at IS NULL AND p.deleted_at IS NULL AND t.deleted_at IS NULL`

// sqlRatingsApps lists the Apple apps of jobs.md §3.2.1 matching the optional filters;
// a blank bundle id reads as none.
const sqlRatingsApps = `
SELECT a.id::text, a.project_id::text, nullif(btrim(a.bundle_id), '')
  FROM apps a
  JOIN projects p ON p.id = a.project_id
  JOIN teams t ON t.id = p.team_id
 WHERE a.platform = 'apple'
   AND a.deleted_at IS NULL AND p.deleted_at IS NULL AND t.deleted_at IS NULL
   AND ($1::uuid IS NULL OR a.project_id = $1::uuid)
   AND ($2::uuid IS NULL OR a.id = $2::uuid)
 ORDER BY a.created_at, a.id`

// sqlPreviouslyActive finds the storefronts whose latest snapshot has an average,
// through the (app_id, store, country_code, snapshot_date) unique index.
const sqlPreviouslyActive = `
SELECT country_code FROM (
  SELECT DISTINCT ON (country_code) country_code, average_rating
    FROM app_store_ratings
   WHERE app_id = $1 AND store = $2
   ORDER BY country_code, snapshot_date DESC) latest
 WHERE average_rating IS NOT NULL`

// sqlLockRatingsApp locks the app row so the baseline read and the cache write of two
// overlapping runs never interleave (jobs.md §12.8).
const sqlLockRatingsApp = `
SELECT worldwide_rating_count::int8, name FROM apps WHERE id = $1 FOR UPDATE`

// sqlUpsertRatings writes an app's rows of one snapshot date; a re-run of the same UTC
// day overwrites that day's rows. Averages arrive as decimal text and are rounded half
// away from zero by numeric's round.
const sqlUpsertRatings = `
INSERT INTO app_store_ratings AS r (team_id, project_id, app_id, store, country_code, average_rating, rating_count,
                                    current_version_average_rating, current_version_rating_count, app_version, snapshot_date)
SELECT a.team_id, a.project_id, a.id, 'app_store', v.cc, round(v.avg::numeric, 2), v.cnt::int,
       round(v.cavg::numeric, 2), v.ccnt::int, v.ver, $2::date
  FROM apps a,
       unnest($3::text[], $4::text[], $5::int8[], $6::text[], $7::int8[], $8::text[]) AS v(cc, avg, cnt, cavg, ccnt, ver)
 WHERE a.id = $1
ON CONFLICT (app_id, store, country_code, snapshot_date) DO UPDATE
   SET average_rating = EXCLUDED.average_rating,
       rating_count = EXCLUDED.rating_count,
       current_version_average_rating = EXCLUDED.current_version_average_rating,
       current_version_rating_count = EXCLUDED.current_version_rating_count,
       app_version = EXCLUDED.app_version`

// sqlRecomputeWorldwide rebuilds the worldwide cache from the latest row per storefront
// (jobs.md §12.3 step 2): count-weighted averages over rows with an average and a
// positive count, NULL when nothing counts.
const sqlRecomputeWorldwide = `
WITH latest AS (
  SELECT DISTINCT ON (country_code) average_rating, rating_count, current_version_average_rating, current_version_rating_count
    FROM app_store_ratings
   WHERE app_id = $1 AND store = 'app_store'
   ORDER BY country_code, snapshot_date DESC
), totals AS (
  SELECT sum(average_rating * rating_count) FILTER (WHERE average_rating IS NOT NULL AND rating_count > 0) AS weighted,
         sum(rating_count) FILTER (WHERE average_rating IS NOT NULL AND rating_count > 0) AS n,
         sum(current_version_average_rating * current_version_rating_count)
           FILTER (WHERE current_version_average_rating IS NOT NULL AND current_version_rating_count > 0) AS cur_weighted,
         sum(current_version_rating_count)
           FILTER (WHERE current_version_average_rating IS NOT NULL AND current_version_rating_count > 0) AS cur_n
    FROM latest
)
UPDATE apps a
   SET worldwide_average_rating = CASE WHEN t.n > 0 THEN round(t.weighted / t.n, 2) END,
       worldwide_rating_count = CASE WHEN t.n > 0 THEN least(t.n, 2147483647)::int END,
       worldwide_current_version_rating = CASE WHEN t.cur_n > 0 THEN round(t.cur_weighted / t.cur_n, 2) END,
       worldwide_current_version_rating_count = CASE WHEN t.cur_n > 0 THEN least(t.cur_n, 2147483647)::int END,
       ratings_synced_at = now()
  FROM totals t
 WHERE a.id = $1
RETURNING a.worldwide_rating_count::int8, a.worldwide_average_rating::text`
