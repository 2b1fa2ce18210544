package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

// AppVersionSync is the app_version_sync handler (jobs.md §11). It refreshes each live
// app's latest_app_version — the App Store version for Apple apps, else the newest
// version seen in production events of the last 90 days — and learns the Apple numeric
// id of Apple apps from iTunes (upstreams.md §1.2).
//
// Lookups run concurrently up to the iTunes concurrency cap under the process's shared
// pacer. A failed lookup is counted and leaves a known version alone (jobs.md §1.4 D11);
// database errors fail the run.
type AppVersionSync struct {
	deps *Deps
}

// The values of apps.latest_app_version_source.
const (
	versionSourceAppStore = "app_store"
	versionSourceComputed = "computed"
)

// Bounds of the version columns and of the computed-version window (jobs.md §11.3).
const (
	maxVersionLength = 50 // apps.latest_app_version and app_store_ratings.app_version are varchar(50)
	computedWindow   = 90 * 24 * time.Hour
	// finalWriteTimeout bounds a unit's final write, which runs detached from the
	// cancellation (jobs.md §3.1 rule 1).
	finalWriteTimeout = 30 * time.Second
)

// versionApp is one app app_version_sync visits.
type versionApp struct {
	ID       string
	Platform string
	BundleID string
}

// versionCounters are app_version_sync's result counters (jobs.md §11.7).
type versionCounters struct {
	AppsProcessed      int64
	AppStoreSynced     int64
	ComputedSynced     int64
	NoVersionAvailable int64
	Errors             int64
	VersionsChanged    int64
}

func (c versionCounters) result() engine.Result {
	return engine.Result{
		"apps_processed":       c.AppsProcessed,
		"app_store_synced":     c.AppStoreSynced,
		"computed_synced":      c.ComputedSynced,
		"no_version_available": c.NoVersionAvailable,
		"errors":               c.Errors,
		"versions_changed":     c.VersionsChanged,
		"_silent":              c.VersionsChanged == 0 && c.Errors == 0,
	}
}

// versionOutcome is what syncing one app added to the counters.
type versionOutcome struct {
	dropped  bool // stopped by cancellation before its write: not counted
	counters versionCounters
}

// Run visits the live apps (or the one of params.app_id) in creation order.
func (h *AppVersionSync) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	t0, err := dbNow(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	appID := run.ParamString("app_id")
	apps, err := listVersionApps(ctx, run.DB, appID)
	if err != nil {
		if ctx.Err() != nil {
			return nil, engine.Stopped(versionCounters{}.result())
		}
		return nil, err
	}
	if appID != "" && len(apps) == 0 {
		return nil, fmt.Errorf("app %s not found or deleted", appID)
	}
	total := int64(len(apps))
	report(run, 0, total, fmt.Sprintf("0 of %d apps", total))

	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var (
		mu       sync.Mutex
		counters versionCounters
		failure  error
		wg       sync.WaitGroup
	)
	queue := make(chan versionApp)
	for range min(h.deps.ITunes.Pacer().Concurrency(), len(apps)) {
		wg.Go(func() {
			for app := range queue {
				// The cancellation point of jobs.md §11.6: no app starts once the run
				// is stopping.
				if workCtx.Err() != nil {
					continue
				}
				out, err := h.syncApp(workCtx, run, t0, app)
				mu.Lock()
				switch {
				case err != nil:
					if failure == nil {
						failure = err
						stopWork()
					}
				case !out.dropped:
					counters.add(out.counters)
					counters.AppsProcessed++
					report(run, counters.AppsProcessed, total, fmt.Sprintf("%d of %d apps", counters.AppsProcessed, total))
				}
				mu.Unlock()
			}
		})
	}
	for _, app := range apps {
		if workCtx.Err() != nil {
			break
		}
		select {
		case queue <- app:
		case <-workCtx.Done():
		}
	}
	close(queue)
	wg.Wait()

	switch {
	case failure != nil:
		return nil, failure
	case counters.AppsProcessed < total && ctx.Err() != nil:
		return nil, engine.Stopped(counters.result())
	}
	return counters.result(), nil
}

func (c *versionCounters) add(o versionCounters) {
	c.AppStoreSynced += o.AppStoreSynced
	c.ComputedSynced += o.ComputedSynced
	c.NoVersionAvailable += o.NoVersionAvailable
	c.Errors += o.Errors
	c.VersionsChanged += o.VersionsChanged
}

// syncApp performs steps 1–3 of jobs.md §11.3 for one app. An error is a database error
// that fails the run; an app stopped by cancellation before its write comes back
// dropped.
func (h *AppVersionSync) syncApp(ctx context.Context, run *engine.Run, t0 time.Time, app versionApp) (versionOutcome, error) {
	var (
		out          versionOutcome
		candidate    string
		source       string
		trackID      *int64
		lookupFailed bool
	)
	if app.Platform == "apple" && strings.TrimSpace(app.BundleID) != "" {
		res, _, err := h.deps.lookupWithRetry(ctx, itunes.LookupParams{BundleID: app.BundleID, Country: "us"}, versionLookupAttempts)
		if err != nil {
			return versionOutcome{dropped: true}, nil
		}
		switch res.Outcome {
		case itunes.OutcomeFound:
			if id := res.App.TrackID; id > 0 {
				trackID = &id
			}
			if v, ok := usableVersion(res.App.Version); ok {
				candidate, source = v, versionSourceAppStore
				out.counters.AppStoreSynced++
			}
		case itunes.OutcomeNotFound:
		default:
			out.counters.Errors++
			lookupFailed = true
			h.deps.log(run).Warn("app store version lookup failed", "app_id", app.ID,
				"outcome", string(res.Outcome), "status", res.Status, "message", res.Message)
		}
	}
	if candidate == "" {
		versions, err := computedVersions(ctx, run.DB, app.ID, t0.Add(-computedWindow))
		if err != nil {
			if ctx.Err() != nil {
				return versionOutcome{dropped: true}, nil
			}
			return out, fmt.Errorf("read event versions of app %s: %w", app.ID, err)
		}
		if v, ok := newestVersion(versions); ok {
			candidate, source = v, versionSourceComputed
			out.counters.ComputedSynced++
		}
	}
	if ctx.Err() != nil {
		return versionOutcome{dropped: true}, nil
	}

	// The final write: once started it completes even if the run is being stopped.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	switch {
	case candidate != "":
		old, found, err := writeVersion(wctx, run.DB, app.ID, &candidate, &source, trackID)
		if err != nil {
			return out, fmt.Errorf("write version of app %s: %w", app.ID, err)
		}
		if found && (old == nil || *old != candidate) {
			out.counters.VersionsChanged++
		}
	case lookupFailed:
		// D11: a known version is kept when the lookup failed.
	default:
		old, _, err := writeVersion(wctx, run.DB, app.ID, nil, nil, trackID)
		if err != nil {
			return out, fmt.Errorf("clear version of app %s: %w", app.ID, err)
		}
		out.counters.NoVersionAvailable++
		if old != nil {
			out.counters.VersionsChanged++
		}
	}
	return out, nil
}

// usableVersion trims v and reports whether it can be stored: not blank and within the
// column's 50 characters (a cut version would be a wrong one).
func usableVersion(v string) (string, bool) {
	v = strings.TrimSpace(v)
	return v, v != "" && utf8.RuneCountInString(v) <= maxVersionLength
}

const sqlVersionApps = `
SELECT a.id::text, a.platform::text, coalesce(a.bundle_id, '')
  FROM apps a
  JOIN projects p ON p.id = a.project_id
  JOIN teams t ON t.id = p.team_id
 WHERE a.deleted_at IS NULL AND p.deleted_at IS NULL AND t.deleted_at IS NULL
   AND ($1::uuid IS NULL OR a.id = $1::uuid)
 ORDER BY a.created_at, a.id`

// listVersionApps returns the live apps, or the live app appID when it is not empty.
func listVersionApps(ctx context.Context, q db.DBTX, appID string) ([]versionApp, error) {
	rows, err := q.Query(ctx, sqlVersionApps, nullIfEmpty(appID))
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	apps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (versionApp, error) {
		var a versionApp
		err := r.Scan(&a.ID, &a.Platform, &a.BundleID)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

// sqlEventVersions reads the distinct production versions of an app's recent events
// through app_dev_ts_idx (app_id, is_dev, "timestamp") of every partition.
const sqlEventVersions = `
SELECT DISTINCT app_version
  FROM events
 WHERE app_id = $1 AND is_dev = false AND "timestamp" > $2 AND app_version IS NOT NULL`

// computedVersions returns the candidates of the computed version (jobs.md §11.3 step
// 2), blank values left out.
func computedVersions(ctx context.Context, q db.DBTX, appID string, since time.Time) ([]string, error) {
	rows, err := q.Query(ctx, sqlEventVersions, appID, since)
	if err != nil {
		return nil, err
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, v := range all {
		if strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// sqlWriteVersion sets (or, with NULLs, clears) an app's version and learns its Apple id,
// returning the version it replaced. updated_at comes from the database clock.
const sqlWriteVersion = `
WITH old AS (SELECT id, latest_app_version FROM apps WHERE id = $1 FOR UPDATE)
UPDATE apps a
   SET latest_app_version = $2,
       latest_app_version_source = $3,
       latest_app_version_updated_at = now(),
       apple_app_store_id = coalesce($4, a.apple_app_store_id)
  FROM old
 WHERE a.id = old.id
RETURNING old.latest_app_version`

// writeVersion writes step 3 of jobs.md §11.3 and returns the previous version (nil when
// there was none) and whether the app still existed.
func writeVersion(ctx context.Context, q db.DBTX, appID string, version, source *string, trackID *int64) (*string, bool, error) {
	var old *string
	err := q.QueryRow(ctx, sqlWriteVersion, appID, version, source, trackID).Scan(&old)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return old, err == nil, err
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
