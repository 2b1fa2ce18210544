package itunes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ptr[T any](v T) *T { return &v }

// variants adds the rating shapes of upstreams.md §6.2 to the universe's apps.
var variants = []emuitunes.App{
	{TrackID: 1600000001, BundleID: "com.example.unrated", Name: "Unrated", Version: "1.0", Variant: emuitunes.VariantNoRatings, Storefronts: map[string]emuitunes.Rating{"us": {Average: 4, Count: 3}}},
	{TrackID: 1600000002, BundleID: "com.example.zero", Name: "Zero", Version: "1.0", Variant: emuitunes.VariantZeroCount, Storefronts: map[string]emuitunes.Rating{"us": {}}},
	{TrackID: 1600000003, BundleID: "com.example.nocurrent", Name: "No Current", Version: "2.0", Variant: emuitunes.VariantNoCurrentVersion, Storefronts: map[string]emuitunes.Rating{"us": {Average: 3.9, Count: 12}}},
	{TrackID: 1600000004, BundleID: "com.example.a&b", Name: "A and B", Version: "1.0", Storefronts: map[string]emuitunes.Rating{"de": {Average: 5, Count: 1}}},
}

type clientBundle struct {
	emu     *emuitunes.Server
	client  *itunes.Client
	pacer   *itunes.Pacer
	metrics *metrics.Set
	base    string
	logs    *syncBuffer
	// clock is the jump clock both sides run on by default.
	clock *jumpClock
}

type clientSetup struct {
	emu    emuitunes.Options
	pacer  itunes.PacerOptions
	client itunes.Options
}

// setup starts the emulator, seeded from the universe plus the variants, on a real
// listener and builds a client for it. By default both sides run on one jump clock, so
// pacing costs no real time, and the emulator's throttle is the default one.
func setup(t *testing.T, mutate ...func(*clientSetup)) *clientBundle {
	t.Helper()
	st := universe.Default().ITunesState()
	st.Apps = append(st.Apps, variants...)
	clock := &jumpClock{now: t0}
	cs := clientSetup{
		emu:   emuitunes.Options{Clock: clock, State: st},
		pacer: itunes.PacerOptions{Clock: clock},
	}
	for _, m := range mutate {
		m(&cs)
	}
	b := &clientBundle{metrics: metrics.New(), logs: &syncBuffer{}, clock: clock}
	var err error
	b.emu, err = emuitunes.New(cs.emu)
	require.NoError(t, err)
	var stop func()
	b.base, stop, err = emukit.Start(context.Background(), b.emu.Handler(), "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)

	cs.pacer.Metrics = b.metrics
	b.pacer = itunes.NewPacer(cs.pacer)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	opts := cs.client
	opts.BaseURL, opts.Pacer, opts.Transport, opts.Metrics = b.base, b.pacer, tr, b.metrics
	if opts.Version == "" {
		opts.Version = "9.9.9-test"
	}
	opts.Logger = slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.client, err = itunes.New(opts)
	require.NoError(t, err)
	return b
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (b *clientBundle) lookup(t *testing.T, bundleID, country string) itunes.LookupResult {
	t.Helper()
	res, err := b.client.Lookup(context.Background(), itunes.LookupParams{BundleID: bundleID, Country: country})
	require.NoError(t, err)
	return res
}

func (b *clientBundle) fault(t *testing.T, rule emukit.FaultRule) {
	t.Helper()
	_, err := b.emu.AddFault(rule)
	require.NoError(t, err)
}

func TestLookupFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := universe.Default()
	snap, _ := u.AppleApp(universe.SnapframeAppleID)
	r := snap.Ratings["jp"]

	res := b.lookup(t, universe.SnapframeBundleID, "jp")
	require.Equal(t, itunes.OutcomeFound, res.Outcome)
	require.Equal(t, http.StatusOK, res.Status)
	require.False(t, res.Transient)
	require.Empty(t, res.Message)
	require.Equal(t, &itunes.App{
		TrackID: universe.SnapframeAppleID, BundleID: universe.SnapframeBundleID, Name: "Snapframe", Version: snap.Version,
		AverageUserRating: ptr(r.Average), UserRatingCount: ptr(r.Count),
		AverageUserRatingForCurrentVersion: ptr(r.CurrentAverage), UserRatingCountForCurrentVersion: ptr(r.CurrentCount),
	}, res.App)

	byID, err := b.client.Lookup(context.Background(), itunes.LookupParams{TrackID: universe.TidepoolAppleID, Country: "CA"})
	require.NoError(t, err)
	require.Equal(t, itunes.OutcomeFound, byID.Outcome)
	require.Equal(t, universe.TidepoolBundleID, byID.App.BundleID)

	t.Run("variants", func(t *testing.T) {
		t.Parallel()
		unrated := b.lookup(t, "com.example.unrated", "us")
		require.Equal(t, itunes.OutcomeFound, unrated.Outcome)
		require.Equal(t, &itunes.App{TrackID: 1600000001, BundleID: "com.example.unrated", Name: "Unrated", Version: "1.0"}, unrated.App)

		zero := b.lookup(t, "com.example.zero", "us").App
		require.Equal(t, ptr[int64](0), zero.UserRatingCount)
		require.Equal(t, ptr(0.0), zero.AverageUserRating)

		noCurrent := b.lookup(t, "com.example.nocurrent", "us").App
		require.Equal(t, ptr(3.9), noCurrent.AverageUserRating)
		require.Nil(t, noCurrent.AverageUserRatingForCurrentVersion)
		require.Nil(t, noCurrent.UserRatingCountForCurrentVersion)
	})
}

func TestLookupRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, itunes.OutcomeFound, b.lookup(t, "com.example.a&b", "DE").Outcome)
	_, err := b.client.Lookup(context.Background(), itunes.LookupParams{TrackID: 1500000001})
	require.NoError(t, err)

	reqs := b.emu.Requests(emukit.Filter{})
	require.Len(t, reqs, 2)
	first := reqs[0]
	require.Equal(t, http.MethodGet, first.Method)
	require.Equal(t, "/lookup", first.Path)
	require.Equal(t, "bundleId=com.example.a%26b&country=de", first.Query, "bundle id percent-encoded, country lower-cased")
	require.Equal(t, "owlmetry/9.9.9-test", first.Headers.Get("User-Agent"))
	require.Equal(t, "application/json", first.Headers.Get("Accept"))
	require.Empty(t, first.Headers.Get("Authorization"))
	require.Equal(t, "id=1500000001", reqs[1].Query, "no country: the API's default storefront")

	for _, p := range []itunes.LookupParams{{}, {BundleID: "x", TrackID: 1}, {TrackID: -1}} {
		_, err := b.client.Lookup(context.Background(), p)
		require.Error(t, err)
	}
	require.Len(t, b.emu.Requests(emukit.Filter{}), 2, "unusable params send nothing")
}

func TestLookupNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct{ bundle, country string }{
		{"com.example.nothing", "us"},
		{universe.TidepoolBundleID, "de"}, // a storefront that does not sell it
		{universe.TidepoolBundleID, "aq"}, // not a storefront at all
	} {
		res := b.lookup(t, tc.bundle, tc.country)
		require.Equal(t, itunes.OutcomeNotFound, res.Outcome, tc)
		require.Equal(t, http.StatusOK, res.Status)
		require.Nil(t, res.App)
	}
	b.fault(t, emukit.FaultRule{Action: emukit.FaultAction{Status: 404}})
	res := b.lookup(t, universe.TidepoolBundleID, "us")
	require.Equal(t, itunes.OutcomeNotFound, res.Outcome)
	require.Equal(t, http.StatusNotFound, res.Status)
	require.False(t, res.Transient)
}

func TestLookupRateLimited(t *testing.T) {
	t.Parallel()

	t.Run("403", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.emu.Throttle(1)
		res := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Equal(t, itunes.OutcomeRateLimited, res.Outcome)
		require.Equal(t, http.StatusForbidden, res.Status)
		require.False(t, res.Transient, "throttling is its own outcome")
		require.Equal(t, "Forbidden", res.Message)
		require.Len(t, b.emu.Requests(emukit.Filter{}), 1, "the client never retries by itself")
		require.Equal(t, float64(1), metricValue(t, b.metrics.UpstreamThrottle.WithLabelValues("itunes")))
	})

	t.Run("429", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := b.emu.Limits()
		l.Throttle.Status = http.StatusTooManyRequests
		require.NoError(t, b.emu.SetLimits(l))
		b.emu.Throttle(1)
		res := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Equal(t, itunes.OutcomeRateLimited, res.Outcome)
		require.Equal(t, http.StatusTooManyRequests, res.Status)
	})
}

func TestLookupRetryAfter(t *testing.T) {
	t.Parallel()
	retryAfter := func(status int, value string) emukit.FaultRule {
		return emukit.FaultRule{Match: emukit.FaultMatch{Path: "/lookup"}, Times: 1,
			Action: emukit.FaultAction{Status: status, Headers: map[string]*string{"Retry-After": &value}}}
	}

	t.Run("a throttled answer's Retry-After holds the pacer", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fault(t, retryAfter(http.StatusTooManyRequests, "7"))
		res := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Equal(t, itunes.OutcomeRateLimited, res.Outcome)
		require.Equal(t, 7*time.Second, res.RetryAfter)
		next := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Equal(t, itunes.OutcomeFound, next.Outcome)
		require.Equal(t, 7*time.Second, next.Waits.Total, "nobody sends before the wait is over")
		entries := b.emu.Requests(emukit.Filter{Path: "/lookup"})
		require.Len(t, entries, 2)
		require.Equal(t, 7*time.Second, entries[1].Time.Sub(entries[0].Time))
	})

	t.Run("a wait over 300 s is reported, not held", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fault(t, retryAfter(http.StatusForbidden, "301"))
		res := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Equal(t, itunes.OutcomeRateLimited, res.Outcome)
		require.Equal(t, 301*time.Second, res.RetryAfter)
		next := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Less(t, next.Waits.Total, time.Second, "only the pacer's widened interval")
	})

	t.Run("a transient answer's HTTP date is reported without holding", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fault(t, retryAfter(http.StatusServiceUnavailable, b.clock.Now().Add(30*time.Second).Format(http.TimeFormat)))
		res := b.lookup(t, universe.TidepoolBundleID, "us")
		require.True(t, res.Transient)
		require.Equal(t, 30*time.Second, res.RetryAfter)
		next := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Less(t, next.Waits.Total, time.Second)
	})

	t.Run("other answers carry none", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fault(t, retryAfter(http.StatusBadRequest, "9"))
		res := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Zero(t, res.RetryAfter)
	})
}

func TestLookupErrors(t *testing.T) {
	t.Parallel()
	five := 5
	tests := []struct {
		name      string
		rule      emukit.FaultRule
		status    int
		transient bool
		message   string
	}{
		{name: "503", rule: emukit.FaultRule{Action: emukit.FaultAction{Status: 503}}, status: 503, transient: true, message: "Service Unavailable"},
		{name: "500 with an HTML page", rule: emukit.FaultRule{Action: emukit.FaultAction{Status: 500, BodyText: "<html>\n<body>oops</body></html>"}}, status: 500, transient: true, message: "<html><body>oops</body></html>"},
		{name: "malformed JSON", rule: emukit.FaultRule{Action: emukit.FaultAction{MalformedJSON: true}}, status: 200, transient: true, message: "decode lookup response"},
		{name: "JSON of the wrong shape", rule: emukit.FaultRule{Action: emukit.FaultAction{Status: 200, Body: json.RawMessage(`{"results":{"trackId":1}}`)}}, status: 200, transient: true, message: "results is not an array"},
		{name: "empty 200", rule: emukit.FaultRule{Action: emukit.FaultAction{Status: 200, BodyText: " "}}, status: 200, transient: true, message: "not a JSON object"},
		{name: "connection dropped", rule: emukit.FaultRule{Action: emukit.FaultAction{CloseConnection: true}}, status: 0, transient: true, message: "network error"},
		{name: "body cut short", rule: emukit.FaultRule{Action: emukit.FaultAction{TruncateBodyAt: &five}}, status: 0, transient: true, message: "connection closed before the answer was complete"},
		{name: "400", rule: emukit.FaultRule{Action: emukit.FaultAction{Status: 400}}, status: 400, message: "Invalid value(s) for key(s): [term]"},
		{name: "401", rule: emukit.FaultRule{Action: emukit.FaultAction{Status: 401}}, status: 401, message: "Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.fault(t, tt.rule)
			res := b.lookup(t, universe.TidepoolBundleID, "us")
			require.Equal(t, itunes.OutcomeError, res.Outcome)
			require.Equal(t, tt.status, res.Status)
			require.Equal(t, tt.transient, res.Transient)
			require.Contains(t, res.Message, tt.message)
			require.Nil(t, res.App)
		})
	}

	t.Run("country outside the storefronts with the strict switch", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := b.emu.Limits()
		l.Switches.RejectUnknownCountry = true
		require.NoError(t, b.emu.SetLimits(l))
		res := b.lookup(t, universe.TidepoolBundleID, "zz")
		require.Equal(t, itunes.OutcomeError, res.Outcome)
		require.Equal(t, http.StatusBadRequest, res.Status)
		require.False(t, res.Transient)
		require.Equal(t, "Invalid value(s) for key(s): [country]", res.Message)
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(cs *clientSetup) { cs.client.Timeout = 100 * ms })
		b.fault(t, emukit.FaultRule{Action: emukit.FaultAction{Delay: emukit.Duration(time.Hour)}})
		res := b.lookup(t, universe.TidepoolBundleID, "us")
		require.Equal(t, itunes.OutcomeError, res.Outcome)
		require.Equal(t, 0, res.Status)
		require.True(t, res.Transient)
		require.Equal(t, "timeout after 100ms", res.Message)
	})

	t.Run("unreachable host", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		dead, err := itunes.New(itunes.Options{BaseURL: "http://127.0.0.1:1", Pacer: b.pacer, Transport: &http.Transport{}})
		require.NoError(t, err)
		res, err := dead.Lookup(context.Background(), itunes.LookupParams{BundleID: "x"})
		require.NoError(t, err)
		require.Equal(t, itunes.OutcomeError, res.Outcome)
		require.Equal(t, 0, res.Status)
		require.True(t, res.Transient)
		require.Contains(t, res.Message, "network error")
		require.NotContains(t, res.Message, "http://", "the message is about the connection, not the URL")
	})
}

func TestLookupNoRedirects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	loc := b.base + "/lookup?bundleId=" + universe.TidepoolBundleID
	b.fault(t, emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"bundleId": "com.example.moved"}}, Action: emukit.FaultAction{Status: 302, Headers: map[string]*string{"Location": &loc}}})
	res := b.lookup(t, "com.example.moved", "us")
	require.Equal(t, itunes.OutcomeError, res.Outcome)
	require.Equal(t, http.StatusFound, res.Status)
	require.False(t, res.Transient)
	require.Len(t, b.emu.Requests(emukit.Filter{}), 1, "the Location was not followed")
}

func TestLookupBodyCap(t *testing.T) {
	t.Parallel()
	doc := `{"resultCount":1,"results":[{"trackId":7,"bundleId":"com.example.big","version":"1"}]}`

	t.Run("exactly 16 MiB is read", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := strings.Repeat("\n", itunes.MaxBodyBytes-len(doc)) + doc
		b.fault(t, emukit.FaultRule{Action: emukit.FaultAction{Status: 200, BodyText: body}})
		res := b.lookup(t, "com.example.big", "us")
		require.Equal(t, itunes.OutcomeFound, res.Outcome, res.Message)
		require.Equal(t, int64(7), res.App.TrackID)
	})

	t.Run("one byte more is too large", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := strings.Repeat("\n", itunes.MaxBodyBytes-len(doc)+1) + doc
		b.fault(t, emukit.FaultRule{Action: emukit.FaultAction{Status: 200, BodyText: body}})
		res := b.lookup(t, "com.example.big", "us")
		require.Equal(t, itunes.OutcomeError, res.Outcome)
		require.Equal(t, http.StatusOK, res.Status)
		require.False(t, res.Transient)
		require.Equal(t, "response too large", res.Message)
	})
}

func TestLookupCancellation(t *testing.T) {
	t.Parallel()

	t.Run("before the request", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := b.client.Lookup(ctx, itunes.LookupParams{BundleID: universe.TidepoolBundleID})
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, b.emu.Requests(emukit.Filter{}))
	})

	t.Run("mid-request", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(cs *clientSetup) { cs.pacer.Concurrency = 1 })
		b.fault(t, emukit.FaultRule{Action: emukit.FaultAction{Delay: emukit.Duration(time.Hour)}, Times: 1})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := b.client.Lookup(ctx, itunes.LookupParams{BundleID: universe.TidepoolBundleID, Country: "us"})
			done <- err
		}()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		require.NoError(t, b.emu.WaitArrivals(wctx, 1))
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-wctx.Done():
			require.FailNow(t, "the lookup did not return after cancellation")
		}
		require.Equal(t, 150*ms, b.pacer.Interval(), "an abandoned request tells the pacer nothing")
		// The concurrency slot (cap 1) was freed: the next lookup goes through.
		require.Equal(t, itunes.OutcomeFound, b.lookup(t, universe.TidepoolBundleID, "us").Outcome)
		require.Equal(t, float64(1), metricValue(t, b.metrics.UpstreamRequests.WithLabelValues("itunes", "/lookup", "cancelled")))
	})

	t.Run("mid-wait", func(t *testing.T) {
		t.Parallel()
		clock := newManualClock(t0)
		b := setup(t, func(cs *clientSetup) { cs.pacer.Clock = clock })
		require.Equal(t, itunes.OutcomeFound, b.lookup(t, universe.TidepoolBundleID, "us").Outcome)

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := b.client.Lookup(ctx, itunes.LookupParams{BundleID: universe.TidepoolBundleID, Country: "us"})
			done <- err
		}()
		clock.waitWaiters(t, 1)
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "the lookup did not return after cancellation")
		}
		require.Len(t, b.emu.Requests(emukit.Filter{}), 1, "the waiting lookup sent nothing")
	})
}

func TestLookupWaitsAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.lookup(t, universe.TidepoolBundleID, "us")
	require.Equal(t, itunes.Waits{}, first.Waits, "the first request goes at once")
	second := b.lookup(t, universe.TidepoolBundleID, "ca")
	require.Equal(t, itunes.Waits{Count: 1, Total: 150 * ms}, second.Waits)

	b.emu.Throttle(1)
	b.lookup(t, universe.TidepoolBundleID, "us")
	b.fault(t, emukit.FaultRule{Action: emukit.FaultAction{Status: 503}, Times: 1})
	b.lookup(t, universe.TidepoolBundleID, "us")
	// Go's transport replays a GET once when a reused keep-alive connection dies before
	// any answer (a stale connection is no upstream failure), so the drop must happen on
	// the fresh connection as well to reach the client.
	b.fault(t, emukit.FaultRule{Action: emukit.FaultAction{CloseConnection: true}, Times: 2})
	b.lookup(t, universe.TidepoolBundleID, "us")

	count := func(code string) float64 {
		return metricValue(t, b.metrics.UpstreamRequests.WithLabelValues("itunes", "/lookup", code))
	}
	require.Equal(t, float64(2), count("200"))
	require.Equal(t, float64(1), count("403"))
	require.Equal(t, float64(1), count("503"))
	require.Equal(t, float64(1), count("network"))
	require.Equal(t, float64(5), metricValue(t, b.metrics.UpstreamDuration))
	require.Equal(t, float64(1), metricValue(t, b.metrics.UpstreamThrottle.WithLabelValues("itunes")))
	require.InDelta(t, b.pacer.Interval().Seconds(), metricValue(t, b.metrics.ITunesInterval), 1e-9)
	require.Greater(t, metricValue(t, b.metrics.UpstreamWait.WithLabelValues("itunes")), 0.15)

	logs := b.logs.String()
	require.Equal(t, 5, strings.Count(logs, `"msg":"upstream request"`), "one debug line per attempt")
	require.Contains(t, logs, `"path":"/lookup?bundleId=com.example.tidepool&country=ca"`)
	require.Contains(t, logs, `"status":403`)
	require.Contains(t, logs, `"attempt":1`)
	require.NotContains(t, logs, "127.0.0.1", "log lines name the path, not the host")
}

// TestPacerAgainstThrottle drives the pacer and the emulator's token bucket from one
// virtual clock: requests leave exactly when the pacer's schedule says and the bucket
// refills exactly as its rate says, so no real time passes and the result is the same
// on a busy machine.
func TestPacerAgainstThrottle(t *testing.T) {
	t.Parallel()
	const n = 400
	run := func(t *testing.T, interval time.Duration) (b *clientBundle, throttled int, maxInterval time.Duration, elapsed time.Duration) {
		clock := &jumpClock{now: t0}
		b = setup(t, func(cs *clientSetup) {
			cs.emu.Clock = clock // 1 200/min, burst 20: one token per 50 ms
			cs.pacer = itunes.PacerOptions{MinInterval: interval, Concurrency: 8, Clock: clock}
		})
		storefronts := []string{"us", "gb", "de", "jp", "fr"}
		jobs := make(chan int)
		var maxSeen atomic.Int64
		var wg sync.WaitGroup
		for range b.pacer.Concurrency() {
			wg.Go(func() {
				for i := range jobs {
					res, err := b.client.Lookup(context.Background(), itunes.LookupParams{BundleID: universe.SnapframeBundleID, Country: storefronts[i%len(storefronts)]})
					if err != nil || (res.Outcome != itunes.OutcomeFound && res.Outcome != itunes.OutcomeRateLimited) {
						panic(res.Message)
					}
					for d := int64(b.pacer.Interval()); ; {
						cur := maxSeen.Load()
						if d <= cur || maxSeen.CompareAndSwap(cur, d) {
							break
						}
					}
				}
			})
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		for _, e := range b.emu.Requests(emukit.Filter{Path: "/lookup"}) {
			if e.Status == http.StatusForbidden || e.Status == http.StatusTooManyRequests {
				throttled++
			}
		}
		return b, throttled, time.Duration(maxSeen.Load()), clock.Now().Sub(t0)
	}

	t.Run("a pacer at the budget causes no 403", func(t *testing.T) {
		t.Parallel()
		b, throttled, maxInterval, elapsed := run(t, 50*ms)
		require.Zero(t, throttled)
		require.Equal(t, 50*ms, maxInterval, "nothing made the pacer slow down")
		require.Len(t, b.emu.Requests(emukit.Filter{}), n)
		require.GreaterOrEqual(t, elapsed, (n-1)*50*ms, "the requests were paced, not sent at once")
		require.Less(t, elapsed, (n+8)*50*ms, "and not slower than the budget allows")
	})

	t.Run("a pacer over budget meets the throttle and backs off", func(t *testing.T) {
		t.Parallel()
		_, throttled, maxInterval, _ := run(t, 20*ms)
		require.Positive(t, throttled)
		require.GreaterOrEqual(t, maxInterval, 500*ms)
	})
}

func TestPacerRecoversAfterStorm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.emu.Throttle(3)
	for range 3 {
		require.Equal(t, itunes.OutcomeRateLimited, b.lookup(t, universe.TidepoolBundleID, "us").Outcome)
	}
	require.Equal(t, 2*time.Second, b.pacer.Interval(), "150 ms → 500 ms → 1 s → 2 s")

	res := b.lookup(t, universe.TidepoolBundleID, "us")
	require.Equal(t, itunes.OutcomeFound, res.Outcome)
	require.Equal(t, 1940*ms, b.pacer.Interval())
	// A slot is reserved with the interval in force at the time: the third throttled
	// request booked the next slot 1 s after its own, the found one 2 s after its own.
	require.Equal(t, itunes.Waits{Count: 1, Total: time.Second}, res.Waits)
	res = b.lookup(t, universe.TidepoolBundleID, "us")
	require.Equal(t, itunes.Waits{Count: 1, Total: 2 * time.Second}, res.Waits)
	require.Equal(t, 1881800*time.Microsecond, b.pacer.Interval())

	steps := 2
	for b.pacer.Interval() > 150*ms {
		require.Equal(t, itunes.OutcomeFound, b.lookup(t, universe.TidepoolBundleID, "us").Outcome)
		steps++
		require.Less(t, steps, 200)
	}
	require.Equal(t, 150*ms, b.pacer.Interval(), "back to the baseline")
	require.Equal(t, 86, steps, "2 s × 0.97^k reaches 150 ms after 86 answers")
}
