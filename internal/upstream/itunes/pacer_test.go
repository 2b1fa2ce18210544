package itunes_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

const ms = time.Millisecond

type acquired struct {
	permit *itunes.Permit
	err    error
}

func acquireAsync(ctx context.Context, p *itunes.Pacer) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		pm, err := p.Acquire(ctx)
		ch <- acquired{pm, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan acquired) acquired {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Acquire did not return")
		return acquired{}
	}
}

func TestPacerSpacing(t *testing.T) {
	t.Parallel()
	clock := newManualClock(t0)
	p := itunes.NewPacer(itunes.PacerOptions{MinInterval: 150 * ms, Concurrency: 3, Clock: clock})

	first, err := p.Acquire(context.Background())
	require.NoError(t, err)
	require.Zero(t, first.Waited, "an idle pacer lets the first request go at once")

	second, third := acquireAsync(context.Background(), p), acquireAsync(context.Background(), p)
	require.Equal(t, []time.Time{t0.Add(150 * ms), t0.Add(300 * ms)}, clock.waitWaiters(t, 2), "slots are d apart")
	clock.Advance(150 * ms)
	var a acquired
	var rest <-chan acquired
	select {
	case a = <-second:
		rest = third
	case a = <-third:
		rest = second
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the 150 ms slot was not released")
	}
	require.NoError(t, a.err)
	require.Equal(t, 150*ms, a.permit.Waited)
	clock.Advance(150 * ms)
	b := receive(t, rest)
	require.NoError(t, b.err)
	require.Equal(t, 300*ms, b.permit.Waited)
	for _, pm := range []*itunes.Permit{first, a.permit, b.permit} {
		pm.Release(itunes.FeedbackOK)
	}

	// After an idle spell the next caller goes at once: slots never pile up as credit.
	clock.Advance(time.Minute)
	pm, err := p.Acquire(context.Background())
	require.NoError(t, err)
	require.Zero(t, pm.Waited)
	pm.Release(itunes.FeedbackOK)
	next := acquireAsync(context.Background(), p)
	require.Equal(t, []time.Time{clock.Now().Add(150 * ms)}, clock.waitWaiters(t, 1))
	clock.Advance(150 * ms)
	require.NoError(t, receive(t, next).err)
}

func TestPacerAdaptation(t *testing.T) {
	t.Parallel()
	run := func(p *itunes.Pacer, f itunes.Feedback) time.Duration {
		pm, err := p.Acquire(context.Background())
		if err != nil {
			panic(err)
		}
		pm.Release(f)
		pm.Release(itunes.FeedbackThrottled) // a second release does nothing
		return p.Interval()
	}
	newPacer := func(min time.Duration) *itunes.Pacer {
		return itunes.NewPacer(itunes.PacerOptions{MinInterval: min, Clock: &jumpClock{now: t0}})
	}

	t.Run("throttled doubles with a 500 ms floor and a 10 s ceiling", func(t *testing.T) {
		t.Parallel()
		p := newPacer(150 * ms)
		var got []time.Duration
		for range 7 {
			got = append(got, run(p, itunes.FeedbackThrottled))
		}
		require.Equal(t, []time.Duration{500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)
	})

	t.Run("transient grows by half with a 300 ms floor", func(t *testing.T) {
		t.Parallel()
		p := newPacer(150 * ms)
		require.Equal(t, 300*ms, run(p, itunes.FeedbackTransient))
		require.Equal(t, 450*ms, run(p, itunes.FeedbackTransient))
		require.Equal(t, 675*ms, run(p, itunes.FeedbackTransient))
	})

	t.Run("other answers recover by 3 % down to the baseline", func(t *testing.T) {
		t.Parallel()
		p := newPacer(150 * ms)
		run(p, itunes.FeedbackThrottled) // 500 ms
		require.Equal(t, 485*ms, run(p, itunes.FeedbackOK))
		require.Equal(t, 470450*time.Microsecond, run(p, itunes.FeedbackOK))
		for range 100 {
			run(p, itunes.FeedbackOK)
		}
		require.Equal(t, 150*ms, p.Interval(), "never below the baseline")
	})

	t.Run("no feedback leaves the interval alone", func(t *testing.T) {
		t.Parallel()
		p := newPacer(150 * ms)
		run(p, itunes.FeedbackThrottled)
		require.Equal(t, 500*ms, run(p, itunes.FeedbackNone))
	})

	t.Run("a baseline above the ceiling is kept", func(t *testing.T) {
		t.Parallel()
		p := newPacer(20 * time.Second)
		require.Equal(t, 20*time.Second, run(p, itunes.FeedbackThrottled))
		require.Equal(t, 20*time.Second, run(p, itunes.FeedbackOK))
	})
}

func TestPacerConcurrencyCap(t *testing.T) {
	t.Parallel()
	p := itunes.NewPacer(itunes.PacerOptions{MinInterval: ms, Concurrency: 2, Clock: &jumpClock{now: t0}})
	require.Equal(t, 2, p.Concurrency())
	a, err := p.Acquire(context.Background())
	require.NoError(t, err)
	b, err := p.Acquire(context.Background())
	require.NoError(t, err)

	// A third caller cannot get in while two are in flight; its deadline ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 50*ms)
	defer cancel()
	_, err = p.Acquire(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	waiting := acquireAsync(context.Background(), p)
	a.Release(itunes.FeedbackOK)
	c := receive(t, waiting)
	require.NoError(t, c.err)
	b.Release(itunes.FeedbackOK)
	c.permit.Release(itunes.FeedbackOK)
}

func TestPacerCancelledWait(t *testing.T) {
	t.Parallel()
	clock := newManualClock(t0)
	p := itunes.NewPacer(itunes.PacerOptions{MinInterval: 150 * ms, Concurrency: 1, Clock: clock})
	first, err := p.Acquire(context.Background())
	require.NoError(t, err)
	first.Release(itunes.FeedbackOK)

	ctx, cancel := context.WithCancel(context.Background())
	waiting := acquireAsync(ctx, p)
	require.Equal(t, []time.Time{t0.Add(150 * ms)}, clock.waitWaiters(t, 1))
	cancel()
	got := receive(t, waiting)
	require.ErrorIs(t, got.err, context.Canceled)
	require.Nil(t, got.permit)

	// The abandoned slot is given back and the concurrency slot freed: the next caller
	// gets the same slot, not the one after it.
	next := acquireAsync(context.Background(), p)
	require.Equal(t, []time.Time{t0.Add(150 * ms)}, clock.waitWaiters(t, 1))
	clock.Advance(150 * ms)
	r := receive(t, next)
	require.NoError(t, r.err)
	r.permit.Release(itunes.FeedbackOK)

	_, err = p.Acquire(ctx)
	require.ErrorIs(t, err, context.Canceled, "a cancelled context never gets a permit")
}

func TestPacerMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	clock := newManualClock(t0)
	p := itunes.NewPacer(itunes.PacerOptions{MinInterval: 150 * ms, Clock: clock, Metrics: m})
	require.InDelta(t, 0.15, metricValue(t, m.ITunesInterval), 1e-9)

	a, err := p.Acquire(context.Background())
	require.NoError(t, err)
	next := acquireAsync(context.Background(), p)
	clock.waitWaiters(t, 1)
	clock.Advance(150 * ms)
	b := receive(t, next)
	require.NoError(t, b.err)
	require.InDelta(t, 0.15, metricValue(t, m.UpstreamWait.WithLabelValues("itunes")), 1e-9)

	a.Release(itunes.FeedbackThrottled)
	require.InDelta(t, 0.5, metricValue(t, m.ITunesInterval), 1e-9)
	b.permit.Release(itunes.FeedbackOK)
	require.InDelta(t, 0.485, metricValue(t, m.ITunesInterval), 1e-9)
}

func TestPacerHold(t *testing.T) {
	t.Parallel()
	clock := newManualClock(t0)
	p := itunes.NewPacer(itunes.PacerOptions{MinInterval: 100 * ms, Clock: clock})
	first := receive(t, acquireAsync(context.Background(), p))
	require.NoError(t, first.err)
	first.permit.Release(itunes.FeedbackOK)

	p.Hold(t0.Add(5 * time.Second))
	p.Hold(t0.Add(2 * time.Second)) // an earlier hold never shortens a later one
	ch := acquireAsync(context.Background(), p)
	require.Equal(t, []time.Time{t0.Add(5 * time.Second)}, clock.waitWaiters(t, 1))
	clock.Advance(5 * time.Second)
	second := receive(t, ch)
	require.NoError(t, second.err)
	require.Equal(t, 5*time.Second, second.permit.Waited)
	second.permit.Release(itunes.FeedbackOK)
}
