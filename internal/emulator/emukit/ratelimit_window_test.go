package emukit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
)

func TestFixedWindow(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	w := emukit.NewFixedWindow(3, time.Minute)
	at := start.Add(40 * time.Second)
	for i := 1; i <= 3; i++ {
		r := w.Take("key", at)
		require.True(t, r.Allowed)
		require.Equal(t, i, r.Used)
		require.Equal(t, 3-i, r.Remaining())
	}
	r := w.Take("key", at)
	require.False(t, r.Allowed)
	require.Equal(t, 20*time.Second, r.RetryAfter, "until the minute ends")
	require.Equal(t, 3, r.Used, "refused requests are not counted")
	require.True(t, w.Take("other", at).Allowed, "keys are independent")

	r = w.Take("key", start.Add(time.Minute))
	require.True(t, r.Allowed, "a new minute is a new window, however recent the last request")
	require.Equal(t, 1, r.Used)
	w.Reset()
	require.Equal(t, 1, w.Take("key", start.Add(time.Minute)).Used)
}

func TestRollingWindow(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	w := emukit.NewRollingWindow(2, time.Hour)
	require.True(t, w.Take("key", start).Allowed)
	require.True(t, w.Take("key", start.Add(30*time.Minute)).Allowed)
	r := w.Take("key", start.Add(59*time.Minute))
	require.False(t, r.Allowed)
	require.Equal(t, time.Minute, r.RetryAfter, "until the oldest request leaves the hour")
	require.Equal(t, 0, r.Remaining())

	p := w.Peek("key", start.Add(time.Hour))
	require.Equal(t, 1, p.Used, "at exactly one hour the first request has left")
	require.True(t, p.Allowed)
	r = w.Take("key", start.Add(time.Hour))
	require.True(t, r.Allowed)
	require.Equal(t, 2, r.Used)
	w.Reset()
	require.Equal(t, 0, w.Peek("key", start.Add(time.Hour)).Used)
}
