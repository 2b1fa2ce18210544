package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

// BenchmarkEventStreamProgress measures how long a progress change takes to reach a
// client of GET /v1/jobs/{runId}/events, over a real listener, with the engine's real
// persistence and LISTEN/NOTIFY path:
//
//   - report→client: from the handler's Progress.Report to the client reading the
//     event. It includes the engine's write of the progress (immediate here: reports are
//     further apart than OWLMETRY_PROGRESS_INTERVAL), so it bounds the write→client time
//     from above.
//   - notify→client: from the commit's notification reaching this process (a second
//     subscriber of the engine) to the client reading the event: the stream's own share.
//
// Reports are spaced beyond the stream's 100 ms coalescing window, as the engine's
// once-per-second persistence spaces them in production. Run it with a fixed count:
//
//	go test -run '^$' -bench EventStreamProgress -benchtime 300x ./internal/server/
func BenchmarkEventStreamProgress(b *testing.B) {
	type report struct {
		processed int64
		at        time.Time
	}
	reports := make(chan int64)
	sent := make(chan report, 1)
	handler := engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
		for {
			select {
			case <-ctx.Done():
				return nil, engine.Stopped(nil)
			case n := <-reports:
				at := time.Now()
				run.Progress.Report(n, 1<<40, "step")
				sent <- report{processed: n, at: at}
			}
		}
	})
	stack := owltest.StartStack(b,
		owltest.WithHandler(jobtype.AppleAdsSync, handler),
		owltest.WithEngineSettings(func(s *engine.Settings) { s.ProgressInterval = time.Millisecond }))
	project := stack.SeedProject(b)
	created := post(b, stack, triggerPath(stack.Team.ID), stack.Key.Token, fmt.Sprintf(`{"job_type":"apple_ads_sync","project_id":%q}`, project.ID))
	if created.Status != http.StatusCreated {
		b.Fatalf("trigger: %d %s", created.Status, created.Body)
	}
	id := created.JSON(b)["job_run"].(map[string]any)["id"].(string)

	// Wait until the run is running, then open the stream.
	sub := stack.Engine.Subscribe(id)
	defer sub.Close()
	for {
		rec, err := stack.Engine.Get(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		if rec.Status == "running" {
			break
		}
		select {
		case <-sub.C:
		case <-time.After(time.Second):
		}
	}
	st, bad := openStream(b, stack, id, stack.Key.Token)
	if bad != nil {
		b.Fatalf("stream: %d %s", bad.Status, bad.Body)
	}
	st.opening(b)
	if ev := st.mustNext(b); ev.Name != "run" {
		b.Fatalf("first event %q", ev.Name)
	}

	// Every notification about the run, stamped when this process received it.
	notes := make(chan time.Time, 1024)
	go func() {
		for range sub.C {
			select {
			case notes <- time.Now():
			default:
			}
		}
	}()

	var fromReport, fromNotify []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		time.Sleep(110 * time.Millisecond) // beyond the stream's coalescing window
		for drained := false; !drained; {  // forget notifications of earlier writes
			select {
			case <-notes:
			default:
				drained = true
			}
		}
		b.StartTimer()

		n := int64(i + 1)
		reports <- n
		r := <-sent
		for {
			ev := st.mustNext(b)
			if ev.Name != "progress" {
				continue
			}
			got := int64(ev.JSON(b)["progress"].(map[string]any)["processed"].(float64))
			if got != n {
				continue
			}
			now := time.Now()
			fromReport = append(fromReport, now.Sub(r.at))
			select {
			case notified := <-notes:
				fromNotify = append(fromNotify, now.Sub(notified))
			default:
			}
			break
		}
	}
	b.StopTimer()
	summary := func(name string, ds []time.Duration) {
		if len(ds) == 0 {
			return
		}
		slices.Sort(ds)
		p50 := ds[len(ds)/2]
		p99 := ds[min(len(ds)-1, len(ds)*99/100)]
		b.ReportMetric(float64(p50.Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, name+"-p99-ms")
		b.Logf("%s: n=%d p50=%s p99=%s max=%s", name, len(ds), p50, p99, ds[len(ds)-1])
	}
	summary("report-to-client", fromReport)
	summary("notify-to-client", fromNotify)
}
