package jobs_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

// ratingsWorld is the usual fixture: a team with members, one project with the
// universe's two App Store apps (Snapframe rated in 5 storefronts, Tidepool in 2).
type ratingsWorld struct {
	*testBundle
	team      seededTeam
	project   seededProject
	snapframe seededApp
	tidepool  seededApp
}

func newRatingsWorld(t *testing.T, members int, mutate ...func(*setupOptions)) *ratingsWorld {
	t.Helper()
	b := setup(t, mutate...)
	w := &ratingsWorld{testBundle: b, team: b.seedTeam(t, members)}
	w.project = b.seedProject(t, w.team)
	w.snapframe = b.seedApp(t, w.project, appSpec{Name: "Snapframe iOS", Bundle: universe.SnapframeBundleID})
	w.tidepool = b.seedApp(t, w.project, appSpec{Name: "Tidepool iOS", Bundle: universe.TidepoolBundleID})
	return w
}

// grow adds ratings to an emulator app in one storefront.
func (b *testBundle) grow(t *testing.T, bundle, country string, by int64) {
	t.Helper()
	a := b.emuApp(t, bundle)
	r := a.Storefronts[country]
	r.Count += by
	a.Storefronts[country] = r
	require.NoError(t, b.emu.PutApps(a))
}

var progressMessage = regexp.MustCompile(`^app \d+ of \d+ · \d+ throttled · delay \d+ ms$`)

func TestAppStoreRatingsSync(t *testing.T) {
	t.Parallel()

	t.Run("first sync snapshots every storefront and notifies nobody", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 2)
		b := w.testBundle
		b.seedApp(t, w.project, appSpec{Name: "Snapframe Android", Platform: "android", Bundle: "com.example.snapframe.android"})
		noBundle := b.seedApp(t, w.project, appSpec{Name: "No bundle"})
		blank := b.seedApp(t, w.project, appSpec{Name: "Blank bundle", Bundle: "  "})
		deleted := b.seedApp(t, w.project, appSpec{Name: "Deleted", Bundle: universe.TidepoolBundleID})
		b.exec(t, `UPDATE apps SET deleted_at = now() WHERE id = $1`, deleted.ID)
		deadTeam := b.seedTeam(t, 1)
		inDeadTeam := b.seedApp(t, b.seedProject(t, deadTeam), appSpec{Bundle: universe.TidepoolBundleID})
		b.exec(t, `UPDATE teams SET deleted_at = now() WHERE id = $1`, deadTeam.ID)

		rec := b.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, rec)
		require.Equal(t, map[string]int64{
			"apps_processed": 2, "apps_skipped": 2, "apps_partial": 0, "storefronts_fetched": 2 * 249,
			"rows_upserted": 7, "tombstones_written": 0, "notifications_sent": 0, "errors": 0,
			"throttle_hits": 0, "transient_hits": 0, "retries": 0, "retries_exhausted": 0, "final_delay_ms": 150,
		}, counters(t, rec))
		require.Equal(t, false, rec.Result["_silent"])

		today := b.today(t)
		for _, app := range []seededApp{w.snapframe, w.tidepool} {
			bundle := universe.SnapframeBundleID
			if app == w.tidepool {
				bundle = universe.TidepoolBundleID
			}
			want := expectedRows(b.emuApp(t, bundle))
			got := b.snapshot(t, app, today)
			require.Equal(t, want, got, "one row per storefront that sells the app, nothing elsewhere")
			require.Equal(t, len(want), b.rowCount(t, app))
			ww := b.worldwide(t, app)
			require.NotNil(t, ww.SyncedAt)
			requireWorldwide(t, expectedWorldwide(t, want), ww)
		}
		require.Len(t, b.snapshot(t, w.tidepool, today), 2, "an app sold in 2 storefronts has 2 rows")
		for _, app := range []seededApp{noBundle, blank, deleted, inDeadTeam} {
			require.Nil(t, b.worldwide(t, app).SyncedAt)
			require.Zero(t, b.rowCount(t, app))
		}
		require.Empty(t, b.notifications(t), "the first sync has no baseline")

		// Every storefront of Appendix A once per app, and never a throttled answer.
		perApp := map[string][]string{}
		for _, q := range b.lookups(t) {
			perApp[q.Get("bundleId")] = append(perApp[q.Get("bundleId")], q.Get("country"))
		}
		require.Len(t, perApp, 2)
		for bundle, countries := range perApp {
			slices.Sort(countries)
			require.Equal(t, itunes.Storefronts(), countries, bundle)
		}
		for _, e := range b.emu.Requests(emukit.Filter{Path: "/lookup"}) {
			require.Equal(t, http.StatusOK, e.Status)
		}

		require.Equal(t, int64(498), rec.Progress.Processed)
		require.Equal(t, int64(498), rec.Progress.Total)
		require.Equal(t, "app 2 of 2 · 0 throttled · delay 150 ms", rec.Progress.Message)
	})

	t.Run("growth notifies the team once per app and a same-day re-run overwrites", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 2, withApps(
			extraApp(1600000201, "com.example.grow", "1.0", "us", "gb"),
			extraApp(1600000202, "com.example.steady", "1.0", "us"),
		))
		b := w.testBundle
		grow := b.seedApp(t, w.project, appSpec{Name: "Grow iOS", Bundle: "com.example.grow"})
		steady := b.seedApp(t, w.project, appSpec{Name: "Steady iOS", Bundle: "com.example.steady"})
		// One member wants rating e-mails too.
		b.exec(t, `UPDATE users SET preferences = '{"notifications": {"types": {"app.rating_changed": {"email": true}}}}' WHERE id = $1`, w.team.Members[0])

		first := b.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, first)
		rowsBefore := b.rowCount(t, w.snapframe) + b.rowCount(t, w.tidepool) + b.rowCount(t, grow) + b.rowCount(t, steady)
		before := map[seededApp]worldwide{}
		for _, app := range []seededApp{w.snapframe, w.tidepool, grow} {
			before[app] = b.worldwide(t, app)
		}

		b.grow(t, universe.SnapframeBundleID, "jp", 1) // +1: singular title
		b.grow(t, "com.example.grow", "us", 3)
		b.grow(t, "com.example.grow", "gb", 2) // +5 over two storefronts
		b.grow(t, universe.TidepoolBundleID, "us", -4)

		rec := b.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, rec)
		c := counters(t, rec)
		require.Equal(t, int64(4), c["apps_processed"])
		require.Equal(t, int64(2), c["notifications_sent"], "Snapframe and Grow grew; Tidepool shrank; Steady did not move")
		require.Equal(t, int64(5+2+2+1), c["rows_upserted"])
		require.Equal(t, rowsBefore, b.rowCount(t, w.snapframe)+b.rowCount(t, w.tidepool)+b.rowCount(t, grow)+b.rowCount(t, steady),
			"the same UTC day updates its rows")
		require.Equal(t, *before[w.tidepool].Count-4, *b.worldwide(t, w.tidepool).Count)

		got := b.notifications(t)
		require.Len(t, got, 4, "one row per member for each of the two notifications")
		snap := b.worldwide(t, w.snapframe)
		gw := b.worldwide(t, grow)
		members := append([]string(nil), w.team.Members...)
		slices.Sort(members)
		for i, n := range got {
			require.Equal(t, members[i%2], n.UserID)
			require.Equal(t, w.team.ID, n.TeamID)
			require.Equal(t, "/dashboard/projects/"+w.project.ID, n.Link)
		}
		require.Equal(t, "1 new rating on Snapframe iOS", got[0].Title)
		require.Equal(t, "Average is now "+*snap.Avg+"★ across "+itoa(*snap.Count)+" ratings.", got[0].Body)
		require.Equal(t, map[string]any{
			"app_id": w.snapframe.ID, "app_name": "Snapframe iOS", "project_id": w.project.ID,
			"old_count": float64(*before[w.snapframe].Count), "new_count": float64(*snap.Count), "delta": float64(1),
			"average_rating": *snap.Avg,
		}, got[0].Data)
		require.Equal(t, "5 new ratings on Grow iOS", got[2].Title)
		require.Equal(t, "Average is now "+*gw.Avg+"★ across "+itoa(*gw.Count)+" ratings.", got[2].Body)
		require.Equal(t, float64(5), got[2].Data["delta"])

		// In-app deliveries are sent; the member who wants e-mails has one pending, with
		// its River job inserted in the same transaction.
		var inApp, email, jobs int
		b.scalar(t, &inApp, `SELECT count(*) FROM notification_deliveries WHERE channel = 'in_app' AND status = 'sent'`)
		b.scalar(t, &email, `SELECT count(*) FROM notification_deliveries WHERE channel = 'email' AND status = 'pending'`)
		b.scalar(t, &jobs, `SELECT count(*) FROM river_job WHERE kind = 'email_delivery'`)
		require.Equal(t, 4, inApp)
		require.Equal(t, 2, email)
		require.Equal(t, 2, jobs)

		// Nothing grew since: no notification the third time.
		third := b.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, third)
		require.Equal(t, int64(0), counters(t, third)["notifications_sent"])
		require.Len(t, b.notifications(t), 4)
	})

	t.Run("a team without members gets no notification", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 0)
		requireCompleted(t, w.run(t, jobtype.AppStoreRatingsSync, nil))
		w.grow(t, universe.TidepoolBundleID, "ca", 10)
		rec := w.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, rec)
		require.Equal(t, int64(0), counters(t, rec)["notifications_sent"])
		require.Empty(t, w.notifications(t))
	})

	t.Run("tombstones for storefronts that stopped answering", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		app := w.snapframe
		b.seedRating(t, app, "it", 1, ptr("4.20"), 50)  // active yesterday, gone today: tombstone
		b.seedRating(t, app, "es", 2, ptr("3.10"), 40)  // active before,
		b.seedRating(t, app, "es", 1, nil, 0)           // already tombstoned: nothing new
		b.seedRating(t, app, "gb", 2, ptr("1.00"), 999) // tombstoned yesterday and back today:
		b.seedRating(t, app, "gb", 1, nil, 0)           // today's data supersedes the tombstone
		b.seedRating(t, app, "br", 3, ptr("2.00"), 7)   // never answered again, tombstone is older history
		b.seedRating(t, app, "br", 3-1, nil, 0)
		b.seedRating(t, app, "de", 1, ptr("2.50"), 5) // yesterday's value, replaced by today's

		rec := b.run(t, jobtype.AppStoreRatingsSync, map[string]any{"app_id": app.ID})
		requireCompleted(t, rec)
		c := counters(t, rec)
		require.Equal(t, int64(1), c["tombstones_written"])
		require.Equal(t, int64(5+1), c["rows_upserted"])

		today := b.today(t)
		rows := b.snapshot(t, app, today)
		require.Equal(t, ratingRow{}, rows["it"], "a tombstone: no average, count 0, no current-version fields, no version")
		require.NotContains(t, rows, "es")
		require.NotContains(t, rows, "br")
		want := expectedRows(b.emuApp(t, universe.SnapframeBundleID))
		for cc, r := range want {
			require.Equal(t, r, rows[cc], cc)
		}
		// The cache counts the latest row of each storefront: today's five, not the
		// tombstoned ones, not yesterday's "it".
		requireWorldwide(t, expectedWorldwide(t, want), b.worldwide(t, app))

		again := b.run(t, jobtype.AppStoreRatingsSync, map[string]any{"app_id": app.ID})
		requireCompleted(t, again)
		require.Equal(t, int64(0), counters(t, again)["tombstones_written"], "today's tombstone is the latest row now")
		require.Equal(t, ratingRow{}, b.snapshot(t, app, today)["it"])
	})

	t.Run("rating shapes", func(t *testing.T) {
		t.Parallel()
		noRatings := extraApp(1600000301, "com.example.unrated", "1.0", "us", "gb")
		noRatings.Variant = emuitunes.VariantNoRatings
		zero := extraApp(1600000302, "com.example.zero", "1.0", "us")
		zero.Variant = emuitunes.VariantZeroCount
		noCurrent := extraApp(1600000303, "com.example.nocurrent", "2.0", "us", "de")
		noCurrent.Variant = emuitunes.VariantNoCurrentVersion
		b := setup(t, withApps(noRatings, zero, noCurrent))
		p := b.seedProject(t, b.seedTeam(t, 1))
		unrated := b.seedApp(t, p, appSpec{Bundle: "com.example.unrated"})
		zeroApp := b.seedApp(t, p, appSpec{Bundle: "com.example.zero"})
		cur := b.seedApp(t, p, appSpec{Bundle: "com.example.nocurrent"})
		b.seedRating(t, unrated, "gb", 1, ptr("4.00"), 3)

		rec := b.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, rec)
		c := counters(t, rec)
		require.Equal(t, int64(1), c["tombstones_written"], "an answer without any rating reads as not found")
		require.Equal(t, int64(0), c["errors"])

		today := b.today(t)
		require.Equal(t, map[string]ratingRow{"gb": {}}, b.snapshot(t, unrated, today))
		require.Equal(t, worldwide{}, func() worldwide { ww := b.worldwide(t, unrated); ww.SyncedAt = nil; return ww }())

		require.Equal(t, map[string]ratingRow{"us": {Avg: ptr("0.00"), Count: 0, CurAvg: ptr("0.00"), CurCount: ptr(int64(0)), Version: ptr("1.0")}},
			b.snapshot(t, zeroApp, today), "an average of 0 is a rating")
		requireWorldwide(t, worldwide{}, b.worldwide(t, zeroApp))

		rows := b.snapshot(t, cur, today)
		require.Len(t, rows, 2)
		for _, r := range rows {
			require.Nil(t, r.CurAvg)
			require.Nil(t, r.CurCount)
		}
		ww := b.worldwide(t, cur)
		require.NotNil(t, ww.Avg)
		require.Nil(t, ww.CurAvg)
		require.Nil(t, ww.CurCount)
	})

	t.Run("a throttle storm slows the run down and loses nothing", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		// Seven throttled answers in a row: fewer than the 8 attempts of one pair, so
		// however they fall on the pairs in flight, every storefront ends up fetched.
		const storm = 7
		b.emu.Throttle(storm)
		rec := b.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, rec)
		c := counters(t, rec)
		require.Equal(t, int64(storm), c["throttle_hits"])
		require.Equal(t, int64(storm), c["retries"])
		require.Equal(t, int64(0), c["errors"])
		require.Equal(t, int64(0), c["retries_exhausted"])
		require.Equal(t, int64(498), c["storefronts_fetched"])
		require.Equal(t, int64(7), c["rows_upserted"])
		require.Regexp(t, progressMessage, rec.Progress.Message)
		require.Contains(t, rec.Progress.Message, "· 7 throttled ·")

		entries := b.emu.Requests(emukit.Filter{Path: "/lookup"})
		require.Len(t, entries, 498+storm)
		throttled := 0
		for _, e := range entries {
			if e.Status == http.StatusForbidden {
				throttled++
			}
		}
		require.Equal(t, storm, throttled, "only the storm's answers were throttled")
		// The throttling widened the pacer's interval to its 10 s ceiling, and it came
		// back only gradually: the run took far longer in emulator time than the
		// baseline pace and the backoffs together explain.
		var slept time.Duration
		for _, d := range b.clock.Sleeps() {
			slept += d
		}
		span := entries[len(entries)-1].Time.Sub(entries[0].Time)
		require.Greater(t, span, 2*(498*150*time.Millisecond+slept), "emulator time %v, backoffs %v", span, slept)
		for _, app := range []seededApp{w.snapframe, w.tidepool} {
			require.Equal(t, 249, countFor(entries, app == w.snapframe, http.StatusOK))
		}
		requireWorldwide(t, expectedWorldwide(t, expectedRows(b.emuApp(t, universe.SnapframeBundleID))), b.worldwide(t, w.snapframe))
	})

	t.Run("a budget at the baseline causes no throttling", func(t *testing.T) {
		t.Parallel()
		// 400/min is exactly the 150 ms baseline: the pacer never gets ahead of the
		// bucket, whatever the concurrency.
		w := newRatingsWorld(t, 1, func(o *setupOptions) {
			o.emu.Limits = &emuitunes.Limits{Throttle: emuitunes.Throttle{Enabled: true, PerMinute: 400, Burst: 20, Status: http.StatusTooManyRequests}}
		})
		rec := w.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, rec)
		require.Equal(t, int64(0), counters(t, rec)["throttle_hits"])
		for _, e := range w.emu.Requests(emukit.Filter{Path: "/lookup"}) {
			require.Equal(t, http.StatusOK, e.Status)
		}
	})

	t.Run("a budget below the baseline: the pacer adapts and nothing is lost", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1, func(o *setupOptions) {
			o.emu.Limits = &emuitunes.Limits{Throttle: emuitunes.Throttle{Enabled: true, PerMinute: 200, Burst: 5, Status: http.StatusTooManyRequests}}
		})
		rec := w.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, rec)
		c := counters(t, rec)
		require.Equal(t, int64(0), c["errors"])
		require.Equal(t, int64(7), c["rows_upserted"])
		require.Positive(t, c["throttle_hits"])
		require.Equal(t, c["throttle_hits"], c["retries"])
		entries := w.emu.Requests(emukit.Filter{Path: "/lookup"})
		require.Len(t, entries, 498+int(c["throttle_hits"]))
		require.Less(t, int(c["throttle_hits"])*5, len(entries), "under 20 %% of the requests were throttled: %d of %d", c["throttle_hits"], len(entries))
		t.Logf("budget 200/min with a 150 ms baseline: %d throttled of %d requests, final delay %d ms",
			c["throttle_hits"], len(entries), c["final_delay_ms"])
	})

	t.Run("upstream faults", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		app := w.snapframe
		b.seedRating(t, app, "de", 1, ptr("3.00"), 10)
		q := func(country string) emukit.FaultMatch {
			return emukit.FaultMatch{Path: "/lookup", Query: map[string]string{"bundleId": universe.SnapframeBundleID, "country": country}}
		}
		b.fault(t, emukit.FaultRule{Match: q("de"), Action: emukit.FaultAction{Status: http.StatusBadRequest}})                   // plain error: once
		b.fault(t, emukit.FaultRule{Match: q("jp"), Action: emukit.FaultAction{Status: http.StatusServiceUnavailable}, Times: 2}) // transient twice
		b.fault(t, emukit.FaultRule{Match: q("us"), Action: emukit.FaultAction{MalformedJSON: true}, Times: 1})                   // unparsable once
		b.fault(t, emukit.FaultRule{Match: q("gb"), Action: emukit.FaultAction{Status: http.StatusInternalServerError}})          // always
		b.fault(t, emukit.FaultRule{Match: q("zw"), Action: emukit.FaultAction{Status: http.StatusNotFound}})                     // 404 is not found

		rec := b.run(t, jobtype.AppStoreRatingsSync, map[string]any{"app_id": app.ID})
		requireCompleted(t, rec)
		require.Equal(t, map[string]int64{
			"apps_processed": 1, "apps_skipped": 0, "apps_partial": 0, "storefronts_fetched": 249,
			"rows_upserted": 3, "tombstones_written": 0, "notifications_sent": 0, "errors": 2,
			"throttle_hits": 0, "transient_hits": 2 + 1 + 8, "retries": 2 + 1 + 7, "retries_exhausted": 1, "final_delay_ms": counters(t, rec)["final_delay_ms"],
		}, counters(t, rec))
		require.Equal(t, false, rec.Result["_silent"])

		attempts := map[string]int{}
		for _, qv := range b.lookups(t) {
			attempts[qv.Get("country")]++
		}
		require.Equal(t, 1, attempts["de"])
		require.Equal(t, 3, attempts["jp"])
		require.Equal(t, 2, attempts["us"])
		require.Equal(t, 8, attempts["gb"])
		require.Equal(t, 1, attempts["zw"])

		rows := b.snapshot(t, app, b.today(t))
		want := expectedRows(b.emuApp(t, universe.SnapframeBundleID))
		require.Equal(t, []string{"fr", "jp", "us"}, sortedKeys(rows))
		// de failed: yesterday's row stays its latest and counts in the cache.
		latest := map[string]ratingRow{"fr": want["fr"], "jp": want["jp"], "us": want["us"], "de": {Avg: ptr("3.00"), Count: 10}}
		requireWorldwide(t, expectedWorldwide(t, latest), b.worldwide(t, app))

		// Backoffs: 1 s × 2^(attempt−1) ± 25 %, capped at 60 s — three after a first
		// attempt (jp, us, gb), two after a second (jp, gb), one each after gb's 3rd–7th.
		bands := map[int]int{}
		for _, d := range b.clock.Sleeps() {
			band := -1
			for a := 1; a <= 7; a++ {
				base := min(time.Duration(1<<(a-1))*time.Second, 60*time.Second)
				lo, hi := base*3/4, min(base*5/4, 60*time.Second)
				if d >= lo && d <= hi {
					band = a
					break
				}
			}
			require.NotEqual(t, -1, band, "backoff %v fits no attempt", d)
			bands[band]++
		}
		require.Equal(t, map[int]int{1: 3, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1}, bands)
	})

	t.Run("an upstream that is down fails the run", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		// Snapframe is fetched in full, then every lookup answers 503.
		b.fault(t, emukit.FaultRule{Match: emukit.FaultMatch{Path: "/lookup"}, After: 249, Action: emukit.FaultAction{Status: http.StatusServiceUnavailable}})
		rec := b.run(t, jobtype.AppStoreRatingsSync, nil)
		require.Equal(t, "failed", string(rec.Status))
		require.NotNil(t, rec.Error)
		require.Regexp(t, `^iTunes Lookup is failing: 16 storefront lookups in a row gave up after 8 attempts each \(last answer: error 503: `, *rec.Error)

		// It stopped instead of spending 8 attempts on each of Tidepool's 249 storefronts.
		failed := 0
		for _, e := range b.emu.Requests(emukit.Filter{Path: "/lookup"}) {
			if e.Status == http.StatusServiceUnavailable {
				failed++
			}
		}
		require.GreaterOrEqual(t, failed, 16*8)
		require.Less(t, failed, (16+8)*8)
		// The app finished before the outage keeps its snapshot and cache.
		require.Len(t, b.snapshot(t, w.snapframe, b.today(t)), 5)
		require.NotNil(t, b.worldwide(t, w.snapframe).SyncedAt)
	})

	t.Run("a flaky upstream costs only the storefronts it failed", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		// Every other storefront fails all 8 attempts; the ones between keep the run alive.
		for i, cc := range itunes.Storefronts() {
			if i%2 == 0 {
				b.fault(t, emukit.FaultRule{
					Match:  emukit.FaultMatch{Path: "/lookup", Query: map[string]string{"bundleId": universe.TidepoolBundleID, "country": cc}},
					Action: emukit.FaultAction{Status: http.StatusBadGateway},
				})
			}
		}
		rec := b.run(t, jobtype.AppStoreRatingsSync, map[string]any{"app_id": w.tidepool.ID})
		requireCompleted(t, rec)
		c := counters(t, rec)
		require.Equal(t, int64(125), c["retries_exhausted"])
		require.Equal(t, int64(125), c["errors"])
		require.Equal(t, int64(1), c["apps_processed"])
	})

	t.Run("Retry-After is honoured up to 300 s", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		header := func(v string) map[string]*string { return map[string]*string{"Retry-After": &v} }
		q := func(country string) emukit.FaultMatch {
			return emukit.FaultMatch{Path: "/lookup", Query: map[string]string{"bundleId": universe.TidepoolBundleID, "country": country}}
		}
		b.fault(t, emukit.FaultRule{Match: q("ca"), Times: 1, Action: emukit.FaultAction{Status: http.StatusTooManyRequests, Headers: header("90")}})
		b.fault(t, emukit.FaultRule{Match: q("us"), Action: emukit.FaultAction{Status: http.StatusTooManyRequests, Headers: header("3600")}})
		rec := b.run(t, jobtype.AppStoreRatingsSync, map[string]any{"app_id": w.tidepool.ID})
		requireCompleted(t, rec)
		c := counters(t, rec)
		require.Equal(t, int64(2), c["throttle_hits"])
		require.Equal(t, int64(1), c["retries"], "an hour is not waited for")
		require.Equal(t, int64(1), c["retries_exhausted"])
		require.Equal(t, int64(1), c["errors"])
		require.Contains(t, b.snapshot(t, w.tidepool, b.today(t)), "ca")

		var caTimes []time.Time
		usAttempts := 0
		for _, e := range b.emu.Requests(emukit.Filter{Path: "/lookup"}) {
			switch e.Query {
			case "bundleId=" + universe.TidepoolBundleID + "&country=ca":
				caTimes = append(caTimes, e.Time)
			case "bundleId=" + universe.TidepoolBundleID + "&country=us":
				usAttempts++
			}
		}
		require.Len(t, caTimes, 2)
		require.GreaterOrEqual(t, caTimes[1].Sub(caTimes[0]), 90*time.Second, "the retry came after the wait asked for")
		require.Equal(t, 1, usAttempts)
		require.Contains(t, b.clock.Sleeps(), 90*time.Second)
	})

	t.Run("lookups run concurrently up to the cap", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		// The first 8 lookups are held for a while; had the run gone one storefront at a
		// time, the second would arrive only after the first was answered.
		b.fault(t, emukit.FaultRule{Match: emukit.FaultMatch{Path: "/lookup"}, Action: emukit.FaultAction{Delay: emukit.Duration(2 * time.Second)}, Times: 8})
		run := b.enqueue(t, jobtype.AppStoreRatingsSync, map[string]any{"app_id": w.tidepool.ID})
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, b.emu.WaitArrivals(ctx, 8))
		require.Empty(t, b.emu.Requests(emukit.Filter{Path: "/lookup"}), "8 lookups in flight and none answered yet")
		require.Equal(t, int64(8), b.emu.Arrivals(), "never more than the cap in flight")
		requireCompleted(t, b.wait(t, run.ID))
	})

	t.Run("cancellation mid-fan-out", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 2, withApps(extraApp(1600000401, "com.example.third", "1.0", "us")))
		b := w.testBundle
		third := b.seedApp(t, w.project, appSpec{Name: "Third", Bundle: "com.example.third"})
		requireCompleted(t, b.run(t, jobtype.AppStoreRatingsSync, nil)) // baselines
		thirdSynced := b.worldwide(t, third).SyncedAt

		// Every app grows, so a finished app would notify.
		b.grow(t, universe.SnapframeBundleID, "de", 2)
		b.grow(t, universe.SnapframeBundleID, "us", 4)
		b.grow(t, universe.TidepoolBundleID, "ca", 3)
		b.grow(t, universe.TidepoolBundleID, "us", 1)
		b.grow(t, "com.example.third", "us", 1)

		// Snapframe (the first app) runs through; Tidepool's lookups from storefront
		// index 40 on hang, so exactly 40 of its storefronts finish — "ca" (index 36)
		// among them, "us" (231) not.
		storefronts := itunes.Storefronts()
		const done = 40
		for _, cc := range storefronts[done:] {
			b.fault(t, emukit.FaultRule{
				Match:  emukit.FaultMatch{Path: "/lookup", Query: map[string]string{"bundleId": universe.TidepoolBundleID, "country": cc}},
				Action: emukit.FaultAction{Delay: emukit.Duration(10 * time.Minute)},
			})
		}
		seq := b.emu.LastSeq()
		arrivals := b.emu.Arrivals()
		run := b.enqueue(t, jobtype.AppStoreRatingsSync, nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		// All 8 workers are parked in held lookups: every other lookup is answered and
		// handed over.
		require.NoError(t, b.emu.WaitArrivals(ctx, arrivals+249+done+8))
		require.NoError(t, b.emu.WaitRecorded(ctx, seq+249+done))
		require.Equal(t, seq+249+done, b.emu.LastSeq(), "the held lookups are not answered")
		_, _, err := b.eng.Cancel(ctx, run.ID, "manual:test")
		require.NoError(t, err)
		rec := b.wait(t, run.ID)
		require.Equal(t, "cancelled", string(rec.Status))
		require.Equal(t, map[string]int64{
			"apps_processed": 1, "apps_skipped": 0, "apps_partial": 1, "storefronts_fetched": 249 + done,
			"rows_upserted": 5 + 1, "tombstones_written": 0, "notifications_sent": 1, "errors": 0,
			"throttle_hits": 0, "transient_hits": 0, "retries": 0, "retries_exhausted": 0, "final_delay_ms": 150,
		}, counters(t, rec))
		require.Equal(t, int64(249+done), rec.Progress.Processed, "the progress of the moment it stopped")
		require.Equal(t, int64(3*249), rec.Progress.Total)

		// The finished app notified; the partial one stored its fetched row and
		// recomputed its cache, without notifying.
		got := b.notifications(t)
		require.Len(t, got, 2)
		require.Equal(t, "6 new ratings on Snapframe iOS", got[0].Title)
		today := b.today(t)
		tide := expectedRows(b.emuApp(t, universe.TidepoolBundleID))
		rows := b.snapshot(t, w.tidepool, today)
		require.Equal(t, tide["ca"], rows["ca"], "the grown storefront fetched before the cancel is stored")
		require.Equal(t, tide["us"].Count-1, rows["us"].Count, "us was not fetched: the baseline run's row stays")
		tw := b.worldwide(t, w.tidepool)
		requireWorldwide(t, expectedWorldwide(t, rows), tw)
		require.True(t, tw.SyncedAt.After(*b.worldwide(t, third).SyncedAt))
		// The third app never started.
		require.Equal(t, thirdSynced, b.worldwide(t, third).SyncedAt)
		for _, e := range b.emu.Requests(emukit.Filter{Path: "/lookup", Since: seq}) {
			require.NotContains(t, e.Query, "com.example.third")
		}
		// The held lookups were abandoned, not waited for.
		require.NoError(t, b.emu.WaitRecorded(ctx, seq+249+done+8))
		for _, e := range b.emu.Requests(emukit.Filter{Path: "/lookup", Since: seq + 249 + done}) {
			require.Contains(t, e.Error, "client went away")
		}
	})

	t.Run("a project run sees only its project", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		other := b.seedProject(t, w.team)
		elsewhere := b.seedApp(t, other, appSpec{Bundle: universe.SnapframeBundleID})
		rec := b.ratingsTeamRun(t, w.project)
		requireCompleted(t, rec)
		require.Equal(t, int64(2), counters(t, rec)["apps_processed"])
		require.Zero(t, b.rowCount(t, elsewhere))
		require.NotZero(t, b.rowCount(t, w.tidepool))

		rec = b.run(t, jobtype.AppStoreRatingsSync, map[string]any{"project_id": other.ID, "app_id": elsewhere.ID})
		requireCompleted(t, rec)
		require.Equal(t, int64(1), counters(t, rec)["apps_processed"])
		require.NotZero(t, b.rowCount(t, elsewhere))
	})

	t.Run("nothing to do is silent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.seedProject(t, b.seedTeam(t, 1))
		b.seedApp(t, p, appSpec{Platform: "web", Bundle: "com.example.web"})
		rec := b.run(t, jobtype.AppStoreRatingsSync, nil)
		requireCompleted(t, rec)
		require.Equal(t, true, rec.Result["_silent"])
		require.Equal(t, int64(0), counters(t, rec)["apps_processed"])
		require.Empty(t, b.lookups(t))
	})

	t.Run("filters are checked when the run starts", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		android := b.seedApp(t, w.project, appSpec{Platform: "android", Bundle: "com.example.a"})
		ctx := context.Background()

		_, err := b.runDirect(ctx, jobtype.AppStoreRatingsSync, map[string]any{"app_id": android.ID})
		require.EqualError(t, err, "app "+android.ID+" is not an Apple app")

		b.exec(t, `UPDATE apps SET deleted_at = now() WHERE id = $1`, w.tidepool.ID)
		_, err = b.runDirect(ctx, jobtype.AppStoreRatingsSync, map[string]any{"app_id": w.tidepool.ID})
		require.EqualError(t, err, "app "+w.tidepool.ID+" not found or deleted")

		b.exec(t, `UPDATE projects SET deleted_at = now() WHERE id = $1`, w.project.ID)
		_, err = b.runDirect(ctx, jobtype.AppStoreRatingsSync, map[string]any{"project_id": w.project.ID})
		require.EqualError(t, err, "project "+w.project.ID+" not found or deleted")
		require.Empty(t, b.lookups(t))
	})

	t.Run("overlapping runs never notify the same growth twice", func(t *testing.T) {
		t.Parallel()
		w := newRatingsWorld(t, 1)
		b := w.testBundle
		b.exec(t, `UPDATE users SET preferences = '{"notifications": {"types": {"app.rating_changed": {"email": true}}}}' WHERE id = $1`, w.team.Members[0])
		requireCompleted(t, b.run(t, jobtype.AppStoreRatingsSync, nil))
		b.grow(t, universe.SnapframeBundleID, "fr", 7)
		b.grow(t, universe.TidepoolBundleID, "us", 2)

		// Two runs at once, each with handlers of its own built without an inserter:
		// their e-mail jobs go through an insert-only River client on the run's pool.
		var wg sync.WaitGroup
		results := make([]engine.Result, 2)
		errs := make([]error, 2)
		for i := range 2 {
			h := jobs.All(jobs.Deps{Clock: b.clock, ITunes: b.client})[jobtype.AppStoreRatingsSync]
			wg.Go(func() {
				results[i], errs[i] = h.Run(context.Background(), &engine.Run{
					ID: "00000000-0000-4000-8000-00000000000" + strconv.Itoa(i), JobType: jobtype.AppStoreRatingsSync, DB: b.tdb.Pool,
				})
			})
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		sent := results[0]["notifications_sent"].(int64) + results[1]["notifications_sent"].(int64)
		require.Equal(t, int64(2), sent)
		titles := []string{}
		for _, n := range b.notifications(t) {
			titles = append(titles, n.Title)
		}
		require.ElementsMatch(t, []string{"7 new ratings on Snapframe iOS", "2 new ratings on Tidepool iOS"}, titles)
		var emailJobs int
		b.scalar(t, &emailJobs, `SELECT count(*) FROM river_job j JOIN notification_deliveries d ON d.id = (j.args->>'delivery_id')::uuid
			WHERE j.kind = 'email_delivery' AND d.channel = 'email'`)
		require.Equal(t, 2, emailJobs)
	})
}

func countFor(entries []emukit.Entry, snapframe bool, status int) int {
	bundle := universe.TidepoolBundleID
	if snapframe {
		bundle = universe.SnapframeBundleID
	}
	n := 0
	for _, e := range entries {
		if e.Status == status && regexp.MustCompile(`(^|&)bundleId=`+regexp.QuoteMeta(bundle)+`(&|$)`).MatchString(e.Query) {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
