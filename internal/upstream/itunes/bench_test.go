package itunes_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

var benchRPM = flag.Int("itunes.rpm", 1200, "BenchmarkStorefrontFanOut: the emulator's throttle in requests/min per IP, matched by the pacer's baseline")

// BenchmarkStorefrontFanOut measures the client and the pacer the way
// app_store_ratings_sync uses them: 5 apps × the 249 storefronts of Appendix A, one
// attempt each, through a worker pool of the concurrency cap, against the emulator on a
// real listener with real clocks. The pacer's baseline matches the emulator's budget
// (-itunes.rpm, default 1 200/min, so one iteration takes about a minute). It reports
// the wall time, the requests per minute achieved, the share of the budget that is, and
// the throttled answers the run caused (targets: ≥ 95 %, zero).
func BenchmarkStorefrontFanOut(b *testing.B) {
	rpm := *benchRPM
	storefronts := itunes.Storefronts()
	u := universe.Default()
	st := u.ITunesState()
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
	emu, err := emuitunes.New(emuitunes.Options{
		State:  st,
		Limits: &emuitunes.Limits{Throttle: emuitunes.Throttle{Enabled: true, PerMinute: rpm, Burst: 20, Status: http.StatusForbidden}},
	})
	if err != nil {
		b.Fatal(err)
	}
	base, stop, err := emukit.Start(context.Background(), emu.Handler(), "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()

	type pair struct{ bundle, country string }
	var pairs []pair
	for _, bundle := range bundles {
		for _, cc := range storefronts {
			pairs = append(pairs, pair{bundle, cc})
		}
	}
	interval := time.Minute / time.Duration(rpm)

	var wall time.Duration
	var requests, throttled, found int
	b.ResetTimer()
	for range b.N {
		emu.Reset() // every iteration starts with a full bucket and an empty journal
		pacer := itunes.NewPacer(itunes.PacerOptions{MinInterval: interval, Concurrency: 8})
		client, err := itunes.New(itunes.Options{BaseURL: base, Pacer: pacer, Transport: tr})
		if err != nil {
			b.Fatal(err)
		}
		jobs := make(chan pair)
		var mu sync.Mutex
		var failures []string
		var wg sync.WaitGroup
		started := time.Now()
		for range pacer.Concurrency() {
			wg.Go(func() {
				for p := range jobs {
					res, err := client.Lookup(context.Background(), itunes.LookupParams{BundleID: p.bundle, Country: p.country})
					mu.Lock()
					switch {
					case err != nil:
						failures = append(failures, err.Error())
					case res.Outcome == itunes.OutcomeFound:
						found++
					case res.Outcome == itunes.OutcomeNotFound, res.Outcome == itunes.OutcomeRateLimited:
					default:
						failures = append(failures, fmt.Sprintf("%s %s: %s %d %s", p.bundle, p.country, res.Outcome, res.Status, res.Message))
					}
					mu.Unlock()
				}
			})
		}
		for _, p := range pairs {
			jobs <- p
		}
		close(jobs)
		wg.Wait()
		wall += time.Since(started)
		if len(failures) > 0 {
			b.Fatalf("%d lookups failed, first: %s", len(failures), failures[0])
		}
		for _, e := range emu.Requests(emukit.Filter{Path: "/lookup"}) {
			requests++
			if e.Status == http.StatusForbidden || e.Status == http.StatusTooManyRequests {
				throttled++
			}
		}
	}
	b.StopTimer()

	perMin := float64(requests) / wall.Minutes()
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall_s/op")
	b.ReportMetric(perMin, "req/min")
	b.ReportMetric(100*perMin/float64(rpm), "budget_%")
	b.ReportMetric(float64(throttled)/float64(b.N), "throttled/op")
	b.Logf("%d storefronts × %d apps = %d lookups per run, %d found; budget %d/min (pacer %v): wall %.1fs, %.0f req/min = %.1f%% of budget, %d throttled",
		len(storefronts), len(bundles), len(pairs), found/b.N, rpm, interval, wall.Seconds()/float64(b.N), perMin, 100*perMin/float64(rpm), throttled/b.N)
}
