package jobs_test

import (
	"flag"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

var benchRPM = flag.Int("ratings.rpm", 1200, "BenchmarkRatingsFanOut: the emulator's iTunes budget in requests/min, matched by the pacer's baseline")

// BenchmarkRatingsFanOut runs app_store_ratings_sync through the engine for 5 apps × the
// 249 storefronts of Appendix A against the iTunes emulator on a real listener, with
// real clocks everywhere. The emulator throttles at -ratings.rpm (default 1 200/min,
// burst 20) and the pacer's baseline interval matches that budget, so one iteration
// takes about a minute. It reports the run's wall time (started_at to completed_at),
// the requests per minute it achieved, the share of the budget that is (target ≥ 95 %)
// and the throttled answers it caused (target 0).
func BenchmarkRatingsFanOut(b *testing.B) {
	rpm := *benchRPM
	storefronts := itunes.Storefronts()
	st := universe.Default().ITunesState()
	bundles := []string{universe.SnapframeBundleID, universe.TidepoolBundleID}
	for i := range 3 {
		app := emuitunes.App{TrackID: int64(1700000001 + i), BundleID: fmt.Sprintf("com.example.bench%d", i), Name: fmt.Sprintf("Bench %d", i), Version: "1.0", Storefronts: map[string]emuitunes.Rating{}}
		for j, cc := range storefronts {
			if j%(i+2) == 0 { // each app sold in a different share of the storefronts
				app.Storefronts[cc] = emuitunes.Rating{Average: 4.25 + float64(j%7)/10, Count: int64(10 + j)}
			}
		}
		st.Apps = append(st.Apps, app)
		bundles = append(bundles, app.BundleID)
	}
	tb := setup(b, func(o *setupOptions) {
		o.realTime = true
		o.emu.State = st
		o.emu.Limits = &emuitunes.Limits{Throttle: emuitunes.Throttle{Enabled: true, PerMinute: rpm, Burst: 20, Status: http.StatusForbidden}}
		o.pacer = itunes.PacerOptions{MinInterval: time.Minute / time.Duration(rpm), Concurrency: 8}
	})
	tb.patience = 10 * time.Minute
	p := tb.seedProject(b, tb.seedTeam(b, 1))
	for _, bundle := range bundles {
		tb.seedApp(b, p, appSpec{Bundle: bundle})
	}

	var wall time.Duration
	var requests, throttled, rows int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tb.emu.Reset() // a full bucket and an empty journal
		b.StartTimer()
		rec := tb.run(b, jobtype.AppStoreRatingsSync, nil)
		b.StopTimer()
		require.Equal(b, "completed", string(rec.Status), "error: %v", rec.Error)
		c := rec.Result
		require.Equal(b, float64(0), c["errors"], "result %v", c)
		rows += int64(c["rows_upserted"].(float64))
		wall += rec.CompletedAt.Sub(*rec.StartedAt)
		for _, e := range tb.emu.Requests(emukit.Filter{Path: "/lookup"}) {
			requests++
			if e.Status == http.StatusForbidden || e.Status == http.StatusTooManyRequests {
				throttled++
			}
		}
		b.StartTimer()
	}
	b.StopTimer()

	perMin := float64(requests) / wall.Minutes()
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall_s/op")
	b.ReportMetric(perMin, "req/min")
	b.ReportMetric(100*perMin/float64(rpm), "budget_%")
	b.ReportMetric(float64(throttled)/float64(b.N), "throttled/op")
	b.Logf("%d apps × %d storefronts = %d lookups per run, %d rows; budget %d/min: wall %.1fs, %.0f req/min = %.1f%% of the budget, %d throttled",
		len(bundles), len(storefronts), requests/int64(b.N), rows/int64(b.N), rpm, wall.Seconds()/float64(b.N), perMin, 100*perMin/float64(rpm), throttled/int64(b.N))
}
