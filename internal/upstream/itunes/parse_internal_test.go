package itunes

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseLookup(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		name    string
		body    string
		want    *App
		wantErr string
	}{
		{
			name: "live shape after blank lines",
			body: "\n\n\n" + `{"resultCount":1,"results":[{"trackId":1500000002,"trackName":"Tidepool","bundleId":"com.example.tidepool","version":"3.1.0","averageUserRating":4.48211,"userRatingCount":917,"averageUserRatingForCurrentVersion":4.61,"userRatingCountForCurrentVersion":88,"price":0.00}]}` + "\n",
			want: &App{TrackID: 1500000002, Name: "Tidepool", BundleID: "com.example.tidepool", Version: "3.1.0",
				AverageUserRating: f(4.48211), UserRatingCount: n(917), AverageUserRatingForCurrentVersion: f(4.61), UserRatingCountForCurrentVersion: n(88)},
		},
		{
			name: "byte order mark, numbers as strings, integral floats, nulls",
			body: "\ufeff \r\n" + `{"results":[{"trackId":"1500000002","bundleId":"b","version":3.1,"averageUserRating":"4.5","userRatingCount":917.0,"averageUserRatingForCurrentVersion":null}]}`,
			want: &App{TrackID: 1500000002, BundleID: "b", Version: "3.1", AverageUserRating: f(4.5), UserRatingCount: n(917)},
		},
		{name: "rating fields absent", body: `{"resultCount":1,"results":[{"trackId":1,"bundleId":"b","version":"1"}]}`, want: &App{TrackID: 1, BundleID: "b", Version: "1"}},
		{name: "empty results", body: `{"resultCount":0,"results":[]}`},
		{name: "no results key", body: `{"resultCount":0}`},
		{name: "null results", body: `{"results":null}`},
		{name: "first of several", body: `{"results":[{"trackId":1},{"trackId":2}]}`, want: &App{TrackID: 1}},
		{name: "empty body", body: "", wantErr: "not a JSON object"},
		{name: "array", body: `[]`, wantErr: "not a JSON object"},
		{name: "html", body: `<html><body>Service Unavailable</body></html>`, wantErr: "not a JSON object"},
		{name: "cut short", body: `{"resultCount":1,"results":[{"trackId":15`, wantErr: "decode lookup response"},
		{name: "results not an array", body: `{"results":{}}`, wantErr: "results is not an array"},
		{name: "result not an object", body: `{"results":[42]}`, wantErr: "results[0] is not an object"},
		{name: "trailing garbage", body: `{"results":[]}<<`, wantErr: "data after"},
		{name: "count not a number", body: `{"results":[{"trackId":1,"userRatingCount":"many"}]}`, wantErr: "userRatingCount is not a number"},
		{name: "count not an integer", body: `{"results":[{"trackId":1,"userRatingCount":9.5}]}`, wantErr: "userRatingCount is not an integer"},
		{name: "average not a number", body: `{"results":[{"trackId":1,"averageUserRating":true}]}`, wantErr: "averageUserRating is not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseLookup([]byte(tt.body))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Invalid value(s) for key(s): [country]", errorMessage([]byte("\n\n\n"+`{"errorMessage":"Invalid value(s) for key(s): [country]","queryParameters":{}}`)))
	require.Equal(t, "Forbidden", errorMessage([]byte("Forbidden\n")))
	require.Equal(t, "ab c", errorMessage([]byte("a\x00b\x1b c\x7f")), "control characters go")
	long := errorMessage([]byte(strings.Repeat("é", 600)))
	require.Equal(t, 500, len([]rune(long)), "cut at 500 characters, not bytes")
	require.Equal(t, "{\"message\":\"x\"}", errorMessage([]byte(`{"message":"x"}`)), "JSON without errorMessage stays raw")
}

func TestRedactHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Authorization", "Bearer secret")
	h.Set("User-Agent", "owlmetry/1.0")
	out := redactHeaders(h)
	require.Equal(t, "[redacted]", out.Get("Authorization"))
	require.Equal(t, "owlmetry/1.0", out.Get("User-Agent"))
	require.Equal(t, "Bearer secret", h.Get("Authorization"), "the original is untouched")
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 120 * time.Second},
		{"-3", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999999", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Fri, 20 Nov 2026 09:01:00 GMT", time.Minute},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, parseRetryAfter(tt.in, now), "%q", tt.in)
	}
}
