package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

var t0 = time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)

const (
	idA = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"
	idB = "77ab01cd-0000-4000-8000-000000000002"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func plainScheme() *iostreams.ColorScheme {
	ios, _, _, _ := iostreams.Test()
	return ios.ColorScheme(iostreams.Stderr)
}

func colorScheme() *iostreams.ColorScheme {
	ios, _, _, _ := iostreams.Test()
	ios.SetEnv(func(k string) (string, bool) {
		if k == "CLICOLOR_FORCE" {
			return "1", true
		}
		return "", false
	})
	return ios.ColorScheme(iostreams.Stderr)
}

func at(d time.Duration) *apitype.Time { return &apitype.Time{Time: t0.Add(d)} }

func testRun(id, jobType string, status apitype.Status, p *apitype.Progress) apitype.JobRun {
	r := apitype.JobRun{ID: id, JobType: jobType, Status: status, Progress: p, CreatedAt: apitype.Time{Time: t0}}
	if status != apitype.StatusPending {
		r.StartedAt = at(0)
	}
	if status.Terminal() {
		r.CompletedAt = at(65 * time.Second)
	}
	return r
}

func TestValueFormatting(t *testing.T) {
	t.Parallel()
	now := t0
	for d, want := range map[time.Duration]string{
		-12 * time.Second:    "12s ago",
		-3 * time.Minute:     "3m ago",
		-5 * time.Hour:       "5h ago",
		-4 * 24 * time.Hour:  "4d ago",
		-40 * 24 * time.Hour: "2026-10-20",
		3 * time.Minute:      "in 3m",
	} {
		require.Equal(t, want, RelativeTime(now.Add(d), now), "%s", d)
	}
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond:             "850ms",
		12345 * time.Millisecond:           "12.3s",
		40 * time.Second:                   "40.0s",
		4*time.Minute + 5*time.Second:      "4m05s",
		2*time.Hour + 3*time.Minute + 59e9: "2h03m",
	} {
		require.Equal(t, want, Duration(d))
	}
	require.Equal(t, "7s", Elapsed(7*time.Second))
	require.Equal(t, "1m05s", Elapsed(65*time.Second))
	require.Equal(t, "2h03m", Elapsed(2*time.Hour+3*time.Minute))
	loc := time.FixedZone("CET", 3600)
	require.Equal(t, "2026-11-29 17:00:00 +01:00", AbsoluteTime(t0, loc))

	require.Equal(t, "9/20 (45%)", ProgressText(&apitype.Progress{Processed: 9, Total: 20}))
	require.Equal(t, "120 processed", ProgressText(&apitype.Progress{Processed: 120}))
	require.Equal(t, "-", ProgressText(nil))
	pct, _ := Percent(&apitype.Progress{Processed: 30, Total: 20})
	require.Equal(t, int64(100), pct, "clamped")
	pct, _ = Percent(&apitype.Progress{Processed: 199, Total: 200})
	require.Equal(t, int64(99), pct, "floored")

	require.Equal(t, "schedule", TriggeredBy("schedule"))
	require.Equal(t, "user 5d1e02aa", TriggeredBy("manual:user:5d1e02aa-0000-4000-8000-000000000000"))
	require.Equal(t, "api key 5d1e02aa", TriggeredBy("manual:api_key:5d1e02aa-0000-4000-8000-000000000000"))
	require.Equal(t, "cli ada@host", TriggeredBy("manual:cli:ada@host"))
	require.Equal(t, "webhook:x", TriggeredBy("webhook:x"))

	require.Equal(t, `a\tb\nc\\d\r`, Escape("a\tb\nc\\d\r"))
	require.Equal(t, "1204", JSONValue(json.RawMessage(`1204`)))
	require.Equal(t, `{"a":[1,2]}`, JSONValue(json.RawMessage(`{ "a": [1, 2] }`)))
}

func TestTableLayouts(t *testing.T) {
	t.Parallel()
	tbl := Table{Columns: []Column{{Header: "id", NoTruncate: true}, {Header: "type"}, {Header: "message"}}}
	tbl.AddRow(idA, "apple_ads_sync", "a long message that will not fit in a narrow terminal at all")
	tbl.AddRow(idB, "revenuecat_sync", "tab\there")

	piped := tbl.Render(false, 20, plainScheme())
	require.Equal(t, idA+"\tapple_ads_sync\ta long message that will not fit in a narrow terminal at all\n"+
		idB+"\trevenuecat_sync\ttab\\there\n", piped, "no header, tabs, escaped, nothing cut")

	tty := tbl.Render(true, 70, plainScheme())
	lines := strings.Split(strings.TrimRight(tty, "\n"), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[0], "ID"), lines[0])
	require.Contains(t, lines[0], "TYPE")
	for _, l := range lines {
		require.LessOrEqual(t, ansi.StringWidth(l), 70, l)
	}
	require.Contains(t, lines[1], idA, "ids are never cut")
	require.Contains(t, lines[1], "…")

	wide := tbl.Render(true, 200, colorScheme())
	require.Contains(t, wide, "\x1b[1mID\x1b[0m", "bold header when coloured")
	require.NotContains(t, wide, "…")
}

func TestOutcomeLines(t *testing.T) {
	t.Parallel()
	now := t0.Add(10 * time.Minute)
	errMsg := "RevenueCat integration not found or disabled"
	failed := testRun(idB, jobtype.RevenueCatSync, apitype.StatusFailed, nil)
	failed.CompletedAt = at(12300 * time.Millisecond)
	failed.Error = &errMsg
	aborted := testRun(idA, jobtype.AppleAdsSync, apitype.StatusCompleted, nil)
	aborted.CompletedAt = at(3200 * time.Millisecond)
	aborted.Result = json.RawMessage(`{"aborted":true,"abort_reason":"quota exceeded"}`)
	withErrors := testRun(idA, jobtype.AppleAdsSync, apitype.StatusCompleted, nil)
	withErrors.Result = json.RawMessage(`{"errors":3}`)
	cancelled := testRun(idA, jobtype.AppleAdsSync, apitype.StatusCancelled, nil)
	cancelled.CompletedAt = at(40 * time.Second)
	running := testRun(idA, jobtype.AppleAdsSync, apitype.StatusRunning, nil)

	cs := plainScheme()
	require.Equal(t, "✓ Apple Ads Sync 3f2a9c1e completed in 1m05s", OutcomeLine(testRun(idA, jobtype.AppleAdsSync, apitype.StatusCompleted, nil), OutcomeSucceeded, now, true, cs))
	require.Equal(t, "✗ RevenueCat Sync 77ab01cd failed after 12.3s: "+errMsg, OutcomeLine(failed, OutcomeFailed, now, true, cs))
	require.Equal(t, "! Apple Ads Sync 3f2a9c1e completed but aborted after 3.2s: quota exceeded", OutcomeLine(aborted, OutcomeAborted, now, true, cs))
	require.Equal(t, "⊘ Apple Ads Sync 3f2a9c1e cancelled after 40.0s", OutcomeLine(cancelled, OutcomeCancelled, now, true, cs))
	require.Equal(t, "… Apple Ads Sync 3f2a9c1e still running after 10m00s", OutcomeLine(running, OutcomeTimedOut, now, true, cs))
	require.Equal(t, "apple_ads_sync "+idA+" completed in 1m05s (3 errors)", OutcomeLine(withErrors, OutcomeSucceeded, now, false, cs))
	require.Equal(t, "revenuecat_sync "+idB+" failed after 12.3s: "+errMsg, OutcomeLine(failed, OutcomeFailed, now, false, cs))
	require.Contains(t, OutcomeLine(failed, OutcomeFailed, now, true, colorScheme()), "\x1b[31m✗\x1b[0m")
}

func TestLinesThrottle(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	var out bytes.Buffer
	l := NewLines(&out, c.Now)
	l.Start([]apitype.JobRun{testRun(idA, jobtype.AppleAdsSync, apitype.StatusPending, nil)})
	c.Advance(2 * time.Second)
	l.Update(testRun(idA, jobtype.AppleAdsSync, apitype.StatusRunning, &apitype.Progress{Processed: 0, Total: 20, Message: "resolving campaigns"}))
	c.Advance(3 * time.Second)
	l.Update(testRun(idA, jobtype.AppleAdsSync, apitype.StatusRunning, &apitype.Progress{Processed: 5, Total: 20, Message: "syncing ad groups"}))
	c.Advance(4 * time.Second)
	l.Update(testRun(idA, jobtype.AppleAdsSync, apitype.StatusRunning, &apitype.Progress{Processed: 9, Total: 20, Message: "syncing ad groups"}))
	l.Tick() // 7 s since the last record: the newest state waits
	c.Advance(3 * time.Second)
	l.Tick() // 10 s: it is printed
	l.Tick() // and only once
	c.Advance(61 * time.Second)
	l.Tick() // nothing changed for a minute: the record again
	l.Outage(idA, errors.New("cannot reach http://127.0.0.1:4114: connection refused"))
	l.Outage(idA, errors.New("again"))
	c.Advance(time.Second)
	l.Update(testRun(idA, jobtype.AppleAdsSync, apitype.StatusCompleted, &apitype.Progress{Processed: 20, Total: 20, Message: "synced 20 ad groups"}))
	l.Note("cancel requested for 3f2a9c1e")

	want := "waiting for apple_ads_sync run " + idA + "\n" +
		"+0s 3f2a9c1e apple_ads_sync pending\n" +
		"+2s 3f2a9c1e apple_ads_sync running 0/20 (0%) resolving campaigns\n" +
		"+12s 3f2a9c1e apple_ads_sync running 9/20 (45%) syncing ad groups\n" +
		"+1m13s 3f2a9c1e apple_ads_sync running 9/20 (45%) syncing ad groups\n" +
		"+1m13s 3f2a9c1e apple_ads_sync reconnecting: cannot reach http://127.0.0.1:4114: connection refused\n" +
		"+1m14s 3f2a9c1e apple_ads_sync completed 20/20 (100%) synced 20 ad groups\n" +
		"cancel requested for 3f2a9c1e\n"
	require.Equal(t, want, out.String())
	require.NotContains(t, out.String(), "\x1b")
	require.NotContains(t, out.String(), "\r")
}

func TestLineRecordExtras(t *testing.T) {
	t.Parallel()
	r := testRun(idA, jobtype.AppStoreConnectReviewsSync, apitype.StatusRunning, &apitype.Progress{Processed: 2, Total: 5, Message: "projects", Inner: &apitype.InnerProgress{Processed: 40, Total: 120, Message: "reviews"}})
	r.CancelRequestedAt = at(time.Second)
	require.Equal(t, "+1m05s 3f2a9c1e app_store_connect_reviews_sync running 2/5 (40%) projects (40/120 reviews) stopping", LineRecord(r, 65*time.Second))
	require.Equal(t, "+2h03m 3f2a9c1e apple_ads_sync running 120 processed", LineRecord(testRun(idA, jobtype.AppleAdsSync, apitype.StatusRunning, &apitype.Progress{Processed: 120}), 2*time.Hour+3*time.Minute))
}

func barWith(t *testing.T, width int, cs *iostreams.ColorScheme, c *clock, runs ...apitype.JobRun) barModel {
	t.Helper()
	m := newBarModel(cs, c.Now, width)
	next, _ := m.Update(startMsg(runs))
	return next.(barModel)
}

func TestBarRowDeterminate(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	m := barWith(t, 120, plainScheme(), c,
		testRun(idA, jobtype.AppleAdsSync, apitype.StatusRunning, &apitype.Progress{Processed: 9, Total: 20, Message: "syncing ad groups"}),
		testRun(idB, jobtype.RevenueCatSync, apitype.StatusRunning, &apitype.Progress{Processed: 100, Total: 412}))
	c.Advance(48 * time.Second)
	next, _ := m.Update(snapshotMsg(testRun(idB, jobtype.RevenueCatSync, apitype.StatusCompleted, &apitype.Progress{Processed: 412, Total: 412})))
	m = next.(barModel)
	c.Advance(17 * time.Second)
	rows := strings.Split(m.render(), "\n")
	require.Len(t, rows, 2)
	require.Regexp(t, `^. Apple Ads Sync   3f2a9c1e  █+░+  45%  9/20 +syncing ad groups +1m05s$`, rows[0])
	require.Regexp(t, `^✓ RevenueCat Sync  77ab01cd  █+ 100%  412/412 +48s$`, rows[1], "an ended row keeps its elapsed time")
	bar := strings.Count(rows[0], "█") + strings.Count(rows[0], "░")
	require.GreaterOrEqual(t, bar, minBarWidth)
	require.LessOrEqual(t, bar, maxBarWidth)
	for _, r := range rows {
		require.LessOrEqual(t, ansi.StringWidth(r), 120)
		require.NotContains(t, r, "\x1b", "no colour when the scheme is off")
	}
	require.Equal(t, ansi.StringWidth(rows[0]), ansi.StringWidth(rows[1]), "elapsed times line up")
}

func TestBarRowIndeterminate(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	m := barWith(t, 80, plainScheme(), c,
		testRun(idA, jobtype.RevenueCatUserBackfill, apitype.StatusRunning, &apitype.Progress{Processed: 120, Total: 0, Message: "fetching page 3"}),
		testRun(idB, jobtype.AppleAdsSync, apitype.StatusPending, nil))
	rows := strings.Split(m.render(), "\n")
	require.Contains(t, rows[0], "120 processed")
	require.Contains(t, rows[0], "fetching page 3")
	require.NotContains(t, rows[0], "%", "total 0 has no percentage")
	require.NotContains(t, rows[0], "█")
	require.Contains(t, rows[1], "queued")
	for _, r := range rows {
		require.LessOrEqual(t, ansi.StringWidth(r), 80, "a row never wraps")
	}
}

func TestBarNarrowTerminals(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a very long progress message ", 10)
	for _, width := range []int{20, 40, 59, 60, 61, 80, 200} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			t.Parallel()
			c := &clock{now: t0}
			m := barWith(t, width, colorScheme(), c,
				testRun(idA, jobtype.AppStoreConnectReviewsSync, apitype.StatusRunning, &apitype.Progress{Processed: 3, Total: 7, Message: long}))
			row := m.render()
			require.NotContains(t, row, "\n")
			require.LessOrEqual(t, ansi.StringWidth(row), width)
			if width < noBarBelow {
				require.NotContains(t, row, "█", "no bar below 60 columns")
				if width >= 50 {
					require.Contains(t, row, "42%")
				}
			} else {
				require.Contains(t, row, "█")
				require.Contains(t, row, "…", "the message is cut")
			}
		})
	}
}

func TestBarStates(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	fan := testRun(idA, jobtype.AppStoreConnectReviewsSync, apitype.StatusRunning, &apitype.Progress{Processed: 2, Total: 5, Message: "projects", Inner: &apitype.InnerProgress{Processed: 40, Total: 120, Message: "reviews"}})
	m := barWith(t, 120, plainScheme(), c, fan, testRun(idB, jobtype.AppleAdsSync, apitype.StatusRunning, nil))
	require.Contains(t, m.render(), "projects 40/120 reviews")

	next, _ := m.Update(outageMsg{runID: idB})
	m = next.(barModel)
	require.Contains(t, strings.Split(m.render(), "\n")[1], "reconnecting…")

	stopping := fan
	stopping.CancelRequestedAt = at(time.Second)
	next, _ = m.Update(snapshotMsg(stopping))
	m = next.(barModel)
	require.Contains(t, strings.Split(m.render(), "\n")[0], "stopping…")

	aborted := testRun(idB, jobtype.AppleAdsSync, apitype.StatusCompleted, nil)
	aborted.Result = json.RawMessage(`{"aborted":true}`)
	next, _ = m.Update(snapshotMsg(aborted))
	m = next.(barModel)
	require.NotContains(t, strings.Split(m.render(), "\n")[1], "reconnecting…", "a snapshot ends the outage")
	require.True(t, strings.HasPrefix(strings.Split(m.render(), "\n")[1], "! "))

	next, cmd := m.Update(stopMsg{})
	m = next.(barModel)
	require.NotNil(t, cmd)
	require.True(t, strings.HasPrefix(m.render(), "… "), "the final frame marks runs still active")
}

// The real program, drawn into a buffer.
func TestBarProgram(t *testing.T) {
	t.Parallel()
	ios, _, _, errOut := iostreams.Test()
	ios.SetStderrTTY(true)
	ios.SetWidth(100)
	c := &clock{now: t0}
	b := NewBar(context.Background(), ios, c.Now)
	b.Note("before the start goes straight out")
	b.Start([]apitype.JobRun{testRun(idA, jobtype.AppleAdsSync, apitype.StatusRunning, &apitype.Progress{Processed: 1, Total: 4, Message: "working"})})
	b.Update(testRun(idA, jobtype.AppleAdsSync, apitype.StatusRunning, &apitype.Progress{Processed: 3, Total: 4, Message: "still working"}))
	b.Note("cancel requested for 3f2a9c1e")
	c.Advance(65 * time.Second)
	b.Update(testRun(idA, jobtype.AppleAdsSync, apitype.StatusCompleted, &apitype.Progress{Processed: 4, Total: 4, Message: "done"}))
	b.Stop()
	b.Stop() // idempotent
	raw := errOut.String()
	out := ansi.Strip(raw)
	// The renderer clears from the start of the view's last line when it exits; the
	// final frame must be above that line, so it stays in the scrollback.
	lastClear := strings.LastIndex(raw, "\x1b[J")
	require.Positive(t, lastClear)
	kept := strings.Split(strings.TrimRight(ansi.Strip(raw[:lastClear]), "\r\n"), "\n")
	require.Contains(t, kept[len(kept)-1], "✓ Apple Ads Sync", "the last frame stays")
	require.NotContains(t, raw, "\x1b[?1049h", "inline, no alternate screen")
	require.Contains(t, out, "before the start goes straight out")
	require.Contains(t, out, "cancel requested for 3f2a9c1e")
	require.Contains(t, out, "✓ Apple Ads Sync")
	require.Contains(t, out, "100%")
	require.Contains(t, out, "1m05s")
}
