package jobs_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

func ptr[T any](v T) *T { return &v }

// event is one seeded event: its version, whether it is a dev event and its age.
type event struct {
	Version *string
	Dev     bool
	Age     time.Duration
}

// seedEvents inserts events for app, creating the monthly partitions the ages need.
func (b *testBundle) seedEvents(t *testing.T, app seededApp, events ...event) {
	t.Helper()
	ctx := context.Background()
	var now time.Time
	b.scalar(t, &now, `SELECT now()`)
	for _, e := range events {
		_, err := db.EnsurePartitions(ctx, b.tdb.Pool, now.Add(-e.Age), db.PartitionOptions{})
		require.NoError(t, err)
		b.exec(t, `INSERT INTO events (app_id, session_id, level, message, app_version, is_dev, "timestamp")
			VALUES ($1, gen_random_uuid(), 'info', 'hello', $2, $3, now() - make_interval(secs => $4))`,
			app.ID, e.Version, e.Dev, e.Age.Seconds())
	}
}

type versionRow struct {
	Version   *string
	Source    *string
	AppleID   *int64
	UpdatedAt *time.Time
}

func (b *testBundle) version(t *testing.T, app seededApp) versionRow {
	t.Helper()
	var v versionRow
	require.NoError(t, b.tdb.Pool.QueryRow(context.Background(),
		`SELECT latest_app_version, latest_app_version_source, apple_app_store_id, latest_app_version_updated_at FROM apps WHERE id = $1`,
		app.ID).Scan(&v.Version, &v.Source, &v.AppleID, &v.UpdatedAt))
	return v
}

// lookups returns the journal's lookups, decoded.
func (b *testBundle) lookups(t *testing.T) []url.Values {
	t.Helper()
	var out []url.Values
	for _, e := range b.emu.Requests(emukit.Filter{Path: "/lookup"}) {
		q, err := url.ParseQuery(e.Query)
		require.NoError(t, err)
		out = append(out, q)
	}
	return out
}

func (b *testBundle) fault(t *testing.T, rule emukit.FaultRule) {
	t.Helper()
	_, err := b.emu.AddFault(rule)
	require.NoError(t, err)
}

// extraApp is an App Store app outside the universe, sold only in the given storefronts.
func extraApp(trackID int64, bundle, version string, storefronts ...string) emuitunes.App {
	a := emuitunes.App{TrackID: trackID, BundleID: bundle, Name: bundle, Version: version, Storefronts: map[string]emuitunes.Rating{}}
	for i, cc := range storefronts {
		a.Storefronts[cc] = emuitunes.Rating{Average: 4 + float64(i)/10, Count: int64(10 * (i + 1))}
	}
	return a
}

func withApps(apps ...emuitunes.App) func(*setupOptions) {
	return func(o *setupOptions) { o.emu.State.Apps = append(o.emu.State.Apps, apps...) }
}

func TestAppVersionSync(t *testing.T) {
	t.Parallel()

	t.Run("store versions, learnt ids, computed fallback and clearing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withApps(extraApp(1600000101, "com.example.desk", "9.0", "de")))
		team := b.seedTeam(t, 1)
		p := b.seedProject(t, team)
		tidepool := b.seedApp(t, p, appSpec{Name: "Tidepool iOS", Bundle: universe.TidepoolBundleID, Version: ptr("3.0.0")})
		snapframe := b.seedApp(t, p, appSpec{Name: "Snapframe iOS", Bundle: universe.SnapframeBundleID, AppleID: ptr(universe.SnapframeAppleID), Version: ptr("4.12.0")})
		desk := b.seedApp(t, p, appSpec{Name: "Desk iOS", Bundle: "com.example.desk"})
		android := b.seedApp(t, p, appSpec{Name: "Desk Android", Platform: "android", Bundle: "com.example.desk.android"})
		backend := b.seedApp(t, p, appSpec{Name: "API", Platform: "backend", Version: ptr("0.1")})
		noBundle := b.seedApp(t, p, appSpec{Name: "No bundle"})
		deleted := b.seedApp(t, p, appSpec{Name: "Gone", Bundle: universe.TidepoolBundleID, Version: ptr("0.0.1")})
		b.exec(t, `UPDATE apps SET deleted_at = now() WHERE id = $1`, deleted.ID)
		gone := b.seedProject(t, team)
		inGone := b.seedApp(t, gone, appSpec{Name: "In deleted project", Platform: "android", Version: ptr("7")})
		b.exec(t, `UPDATE projects SET deleted_at = now() WHERE id = $1`, gone.ID)
		b.seedEvents(t, inGone, event{Version: ptr("8"), Age: time.Hour})

		// Desk iOS is not sold in the US: its version comes from production events of the
		// last 90 days. Dev events, older events, NULL and blank versions do not count.
		b.seedEvents(t, desk,
			event{Version: ptr("1.9.0"), Age: time.Hour},
			event{Version: ptr("1.10.0"), Age: 40 * 24 * time.Hour},
			event{Version: ptr("1.10.0-beta"), Age: 2 * time.Hour},
			event{Version: ptr("2.0.0"), Dev: true, Age: time.Hour},
			event{Version: ptr("3.0.0"), Age: 100 * 24 * time.Hour},
			event{Version: nil, Age: time.Hour},
			event{Version: ptr("  "), Age: time.Hour},
		)
		b.seedEvents(t, android, event{Version: ptr("2024.9.30"), Age: time.Hour}, event{Version: ptr("2024.10.15"), Age: 80 * 24 * time.Hour})
		b.seedEvents(t, snapframe, event{Version: ptr("99.0"), Age: time.Hour}) // the store wins for Apple apps

		rec := b.run(t, jobtype.AppVersionSync, nil)
		requireCompleted(t, rec)
		require.Equal(t, map[string]int64{
			"apps_processed": 6, "app_store_synced": 2, "computed_synced": 2,
			"no_version_available": 2, "errors": 0, "versions_changed": 4,
		}, counters(t, rec))
		require.Equal(t, false, rec.Result["_silent"])

		got := b.version(t, tidepool)
		require.Equal(t, "3.1.0", *got.Version)
		require.Equal(t, "app_store", *got.Source)
		require.Equal(t, universe.TidepoolAppleID, *got.AppleID, "the Apple id is learnt from iTunes")
		require.NotNil(t, got.UpdatedAt)

		got = b.version(t, snapframe)
		require.Equal(t, "4.12.0", *got.Version)
		require.Equal(t, "app_store", *got.Source)
		require.NotNil(t, got.UpdatedAt, "an unchanged version is still stamped")

		got = b.version(t, desk)
		require.Equal(t, "1.10.0", *got.Version)
		require.Equal(t, "computed", *got.Source)
		require.Nil(t, got.AppleID, "not sold in the US: no id to learn")

		got = b.version(t, android)
		require.Equal(t, "2024.10.15", *got.Version)
		require.Equal(t, "computed", *got.Source)

		got = b.version(t, backend)
		require.Nil(t, got.Version, "no version available clears the stored one")
		require.Nil(t, got.Source)
		require.NotNil(t, got.UpdatedAt)

		got = b.version(t, noBundle)
		require.Nil(t, got.Version)
		require.NotNil(t, got.UpdatedAt)

		got = b.version(t, deleted)
		require.Equal(t, "0.0.1", *got.Version, "soft-deleted apps are not visited")
		require.Nil(t, got.UpdatedAt)
		got = b.version(t, inGone)
		require.Equal(t, "7", *got.Version, "apps of deleted projects are not visited")

		// One US lookup per Apple app with a bundle id.
		var bundles []string
		for _, q := range b.lookups(t) {
			require.Equal(t, "us", q.Get("country"))
			bundles = append(bundles, q.Get("bundleId"))
		}
		require.ElementsMatch(t, []string{universe.TidepoolBundleID, universe.SnapframeBundleID, "com.example.desk"}, bundles)

		require.Equal(t, int64(6), rec.Progress.Processed)
		require.Equal(t, int64(6), rec.Progress.Total)
		require.Equal(t, "6 of 6 apps", rec.Progress.Message)

		// A second run changes nothing and is silent.
		again := b.run(t, jobtype.AppVersionSync, nil)
		requireCompleted(t, again)
		require.Equal(t, int64(0), counters(t, again)["versions_changed"])
		require.Equal(t, true, again.Result["_silent"])
	})

	t.Run("the store version wins over a newer computed one", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.seedProject(t, b.seedTeam(t, 0))
		app := b.seedApp(t, p, appSpec{Bundle: universe.TidepoolBundleID})
		b.seedEvents(t, app, event{Version: ptr("9.0.0"), Age: time.Hour})
		rec := b.run(t, jobtype.AppVersionSync, map[string]any{"app_id": app.ID})
		requireCompleted(t, rec)
		got := b.version(t, app)
		require.Equal(t, "3.1.0", *got.Version)
		require.Equal(t, "app_store", *got.Source)
	})

	t.Run("a failed lookup keeps the known version", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withApps(extraApp(1600000102, "com.example.flaky", "2.0", "us"), extraApp(1600000103, "com.example.broken", "2.0", "us")))
		p := b.seedProject(t, b.seedTeam(t, 0))
		flaky := b.seedApp(t, p, appSpec{Bundle: "com.example.flaky", Version: ptr("1.5")})
		withEvents := b.seedApp(t, p, appSpec{Bundle: universe.TidepoolBundleID, Version: ptr("1.0")})
		broken := b.seedApp(t, p, appSpec{Bundle: "com.example.broken", Version: ptr("1.7")})
		b.seedEvents(t, withEvents, event{Version: ptr("3.2"), Age: time.Hour})
		b.fault(t, emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"bundleId": "com.example.flaky"}}, Action: emukit.FaultAction{Status: http.StatusBadGateway}})
		b.fault(t, emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"bundleId": universe.TidepoolBundleID}}, Action: emukit.FaultAction{MalformedJSON: true}})
		b.fault(t, emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"bundleId": "com.example.broken"}}, Action: emukit.FaultAction{Status: http.StatusBadRequest}})

		rec := b.run(t, jobtype.AppVersionSync, nil)
		requireCompleted(t, rec)
		require.Equal(t, map[string]int64{
			"apps_processed": 3, "app_store_synced": 0, "computed_synced": 1,
			"no_version_available": 0, "errors": 3, "versions_changed": 1,
		}, counters(t, rec))
		require.Equal(t, false, rec.Result["_silent"])

		got := b.version(t, flaky)
		require.Equal(t, "1.5", *got.Version, "D11: the known version stays")
		require.Nil(t, got.UpdatedAt, "nothing was written")
		require.Equal(t, "1.7", *b.version(t, broken).Version)
		got = b.version(t, withEvents)
		require.Equal(t, "3.2", *got.Version, "no candidate from the store: the computed version applies")
		require.Equal(t, "computed", *got.Source)

		// Transient failures are tried 3 times, a plain error once.
		attempts := map[string]int{}
		for _, q := range b.lookups(t) {
			attempts[q.Get("bundleId")]++
		}
		require.Equal(t, map[string]int{"com.example.flaky": 3, universe.TidepoolBundleID: 3, "com.example.broken": 1}, attempts)
		sleeps := b.clock.Sleeps()
		require.Len(t, sleeps, 4, "two backoffs for each retried app")
		for _, d := range sleeps {
			require.True(t, (d >= 750*time.Millisecond && d <= 1250*time.Millisecond) || (d >= 1500*time.Millisecond && d <= 2500*time.Millisecond),
				"backoff %v is 1 s or 2 s ± 25 %%", d)
		}
	})

	t.Run("throttled lookups are retried", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.seedProject(t, b.seedTeam(t, 0))
		app := b.seedApp(t, p, appSpec{Bundle: universe.TidepoolBundleID})
		b.emu.Throttle(2)
		rec := b.run(t, jobtype.AppVersionSync, nil)
		requireCompleted(t, rec)
		c := counters(t, rec)
		require.Equal(t, int64(0), c["errors"])
		require.Equal(t, int64(1), c["app_store_synced"])
		require.Equal(t, "3.1.0", *b.version(t, app).Version)
		statuses := []int{}
		for _, e := range b.emu.Requests(emukit.Filter{Path: "/lookup"}) {
			statuses = append(statuses, e.Status)
		}
		require.Equal(t, []int{http.StatusForbidden, http.StatusForbidden, http.StatusOK}, statuses)
		require.Greater(t, b.pacer.Interval(), itunes.DefaultConfig().MinInterval, "the pacer widened its interval after the throttling")

		b.emu.Throttle(3) // one more than the attempts
		b.exec(t, `UPDATE apps SET latest_app_version = '0.9' WHERE id = $1`, app.ID)
		rec = b.run(t, jobtype.AppVersionSync, nil)
		requireCompleted(t, rec)
		require.Equal(t, int64(1), counters(t, rec)["errors"])
		require.Equal(t, "0.9", *b.version(t, app).Version)
	})

	t.Run("an app id limits the run to that app", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.seedProject(t, b.seedTeam(t, 0))
		one := b.seedApp(t, p, appSpec{Bundle: universe.TidepoolBundleID})
		other := b.seedApp(t, p, appSpec{Bundle: universe.SnapframeBundleID})
		rec := b.run(t, jobtype.AppVersionSync, map[string]any{"app_id": one.ID})
		requireCompleted(t, rec)
		require.Equal(t, int64(1), counters(t, rec)["apps_processed"])
		require.Equal(t, "3.1.0", *b.version(t, one).Version)
		require.Nil(t, b.version(t, other).UpdatedAt)
	})

	t.Run("an app that is gone when the run starts fails it", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.seedProject(t, b.seedTeam(t, 0))
		app := b.seedApp(t, p, appSpec{Bundle: universe.TidepoolBundleID})
		b.exec(t, `UPDATE apps SET deleted_at = now() WHERE id = $1`, app.ID)
		// The trigger refuses a deleted app; the handler re-checks for runs created
		// before the deletion.
		_, err := b.handlers[jobtype.AppVersionSync].Run(context.Background(), &engine.Run{
			ID: "00000000-0000-4000-8000-000000000001", JobType: jobtype.AppVersionSync,
			Params: map[string]any{"app_id": app.ID}, DB: b.tdb.Pool,
		})
		require.EqualError(t, err, "app "+app.ID+" not found or deleted")
		require.Empty(t, b.lookups(t))
	})

	t.Run("cancellation stops before the next app", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *setupOptions) { o.pacer.Concurrency = 1 },
			withApps(extraApp(1600000104, "com.example.slow", "2.0", "us")))
		p := b.seedProject(t, b.seedTeam(t, 0))
		first := b.seedApp(t, p, appSpec{Bundle: universe.TidepoolBundleID})
		slow := b.seedApp(t, p, appSpec{Bundle: "com.example.slow", Version: ptr("1.0")})
		never := b.seedApp(t, p, appSpec{Bundle: universe.SnapframeBundleID})
		b.fault(t, emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"bundleId": "com.example.slow"}},
			Action: emukit.FaultAction{Delay: emukit.Duration(10 * time.Minute)}})

		run := b.enqueue(t, jobtype.AppVersionSync, nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, b.emu.WaitArrivals(ctx, 2), "the second app's lookup is in flight")
		_, _, err := b.eng.Cancel(ctx, run.ID, "manual:test")
		require.NoError(t, err)
		rec := b.wait(t, run.ID)
		require.Equal(t, "cancelled", string(rec.Status))
		require.Equal(t, int64(1), counters(t, rec)["apps_processed"])

		require.Equal(t, "3.1.0", *b.version(t, first).Version)
		require.Equal(t, "1.0", *b.version(t, slow).Version, "the abandoned app is not written")
		require.Nil(t, b.version(t, slow).UpdatedAt)
		require.Nil(t, b.version(t, never).UpdatedAt, "no app starts after the cancel")
		require.NoError(t, b.emu.WaitRecorded(ctx, 2))
		for _, q := range b.lookups(t) {
			require.NotEqual(t, universe.SnapframeBundleID, q.Get("bundleId"))
		}
		abandoned := b.emu.Requests(emukit.Filter{Path: "/lookup"})[1]
		require.True(t, strings.Contains(abandoned.Error, "client went away"), "the in-flight lookup was abandoned: %+v", abandoned)
	})
}
