package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestParseTimeParam(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	good := map[string]time.Time{
		"30s":                            now.Add(-30 * time.Second),
		"15m":                            now.Add(-15 * time.Minute),
		"2h":                             now.Add(-2 * time.Hour),
		"7d":                             now.Add(-7 * 24 * time.Hour),
		"1w":                             now.Add(-7 * 24 * time.Hour),
		"0s":                             now,
		"000000001d":                     now.Add(-24 * time.Hour),
		"5217w":                          now.Add(-5217 * 7 * 24 * time.Hour),
		"36525d":                         now.Add(-36525 * 24 * time.Hour),
		"2026-11-01":                     time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T00:00:00Z":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T02:00:00.5+02:00":    time.Date(2026, 11, 1, 0, 0, 0, 500000000, time.UTC),
		"2026-11-01T00:00:00.123456789Z": time.Date(2026, 11, 1, 0, 0, 0, 123456789, time.UTC),
		"0001-01-01":                     time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for in, want := range good {
		got, err := parseTimeParam("since", in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %s != %s", in, got, want)
		require.Equal(t, time.UTC, got.Location())
	}
	for _, in := range []string{
		"", " 1h", "1h ", "+1h", "-1h", "1.5h", "1h30m", "1000000000s", "36526d", "5218w", "999999999w", "1y", "1M",
		"2026-11-01T00:00:00", "2026-11-01 00:00:00Z", "2026-11-01t00:00:00z", "2026-11-1", "26-11-01",
		"2026-11-01T00:00:00.Z", "2026-11-01T00:00:00.1234567890Z", "2026-11-01T24:00:00Z", "2026-11-01T00:00:00+25:00",
		"2026-02-29", "2026-11-01T00:00Z", "now", "١h",
	} {
		_, err := parseTimeParam("until", in, now)
		require.Error(t, err, "%q", in)
		require.Contains(t, err.Error(), `for until: use a relative duration`)
	}
}

func TestParseLimitAndCursor(t *testing.T) {
	t.Parallel()
	c, err := parseCursor("2026-11-29T10:30:00.123456Z|6D1C0C5E-8C5B-4D37-9A2E-0F5F7F0A9B11")
	require.NoError(t, err)
	require.Equal(t, "6d1c0c5e-8c5b-4d37-9a2e-0f5f7f0a9b11", c.ID)
	require.Equal(t, "2026-11-29T10:30:00.123456Z|6d1c0c5e-8c5b-4d37-9a2e-0f5f7f0a9b11", c.String())
	c, err = parseCursor("2026-11-29T12:30:00+02:00|6d1c0c5e-8c5b-4d37-9a2e-0f5f7f0a9b11")
	require.NoError(t, err)
	require.Equal(t, "2026-11-29T10:30:00.000000Z|6d1c0c5e-8c5b-4d37-9a2e-0f5f7f0a9b11", c.String())
	for _, in := range []string{"", "|", "x|y", "2026-11-29T10:30:00Z", "2026-11-29T10:30:00Z|", "|6d1c0c5e-8c5b-4d37-9a2e-0f5f7f0a9b11",
		"2026-11-29|6d1c0c5e-8c5b-4d37-9a2e-0f5f7f0a9b11", "2026-11-29T10:30:00Z|6d1c0c5e-8c5b-4d37-9a2e-0f5f7f0a9b11|x"} {
		_, err := parseCursor(in)
		require.Error(t, err, "%q", in)
	}
}

// TestPanicIsAnInternalError checks api.md §2.5: a panicking handler answers 500 with
// the request id, logs the value and the stack, and shows the client neither.
func TestPanicIsAnInternalError(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil)), metrics: metrics.New()}
	h := s.outer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("secret detail")
	}))
	ts := httptest.NewServer(h)
	defer ts.Close()
	r, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/anything", nil)
	require.NoError(t, err)
	r.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, map[string]any{"error": "Internal server error", "request_id": "req-42"}, doc)
	require.NotContains(t, string(body), "secret")
	require.NotContains(t, string(body), "goroutine")
	require.Contains(t, logs.String(), "secret detail")
	require.Contains(t, logs.String(), "goroutine")
	require.Contains(t, logs.String(), `"request_id":"req-42"`)
}

// TestServerFaultsHideTheirCause checks that an unexpected error is a 500 with the
// request id, its cause only in the log.
func TestServerFaultsHideTheirCause(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	st := &reqState{requestID: "req-7", log: slog.New(slog.NewJSONHandler(&logs, nil))}
	r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	w := httptest.NewRecorder()
	writeError(w, r, io.ErrUnexpectedEOF)
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.JSONEq(t, `{"error":"Internal server error","request_id":"req-7"}`, w.Body.String())
	require.Contains(t, logs.String(), "unexpected EOF")
}

// TestKeyToucher checks the last_used_at throttle: one write per key per minute, however
// many requests, and none when the stored value is recent.
func TestKeyToucher(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	ctx := context.Background()
	var teamID, userID, keyID string
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO teams (name, slug) VALUES ('t', 't') RETURNING id`).Scan(&teamID))
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ('u@x', 'u') RETURNING id`).Scan(&userID))
	require.NoError(t, tdb.Pool.QueryRow(ctx, `INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions)
		VALUES ('s', $1, 'agent', $2, 'k', $3, '[]') RETURNING id`, strings.Repeat("0", 64), teamID, userID).Scan(&keyID))

	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	k := newKeyToucher(tdb.Pool, slog.New(slog.DiscardHandler), now)

	for range 50 {
		k.touch(keyID, nil)
	}
	advance(59 * time.Second)
	k.touch(keyID, nil)
	recent := now().Add(-10 * time.Second)
	advance(2 * time.Minute)
	k.touch(keyID, &recent) // stored value younger than a minute on the process clock: skipped
	k.close()
	require.Equal(t, 1, k.writes())
	var used *time.Time
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE id = $1`, keyID).Scan(&used))
	require.NotNil(t, used)

	// A minute later on the process clock the key is touched again, but the database's
	// own guard (another replica wrote it a moment ago) keeps the row as it is.
	k2 := newKeyToucher(tdb.Pool, slog.New(slog.DiscardHandler), now)
	advance(time.Minute)
	k2.touch(keyID, nil)
	k2.close()
	require.Equal(t, 0, k2.writes())
	// Touches after close are dropped, not a panic.
	k2.touch("00000000-0000-4000-8000-000000000000", nil)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
