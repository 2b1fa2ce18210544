package shared

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

func TestParseTime(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, ny)
	for in, want := range map[string]time.Time{
		"30s":                       now.Add(-30 * time.Second).UTC(),
		"15m":                       now.Add(-15 * time.Minute).UTC(),
		"2h":                        now.Add(-2 * time.Hour).UTC(),
		"7d":                        now.Add(-7 * 24 * time.Hour).UTC(),
		"1w":                        now.Add(-7 * 24 * time.Hour).UTC(),
		"2026-11-28":                time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC),
		"2026-11-28T10:00:00+01:00": time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime("--since", in, now)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		require.Equal(t, time.UTC, got.Location(), in)
	}
	for _, bad := range []string{"", "yesterday", "1y", "2026-11-28T10:00:00", "-5m", "1h30m", "2026-13-01"} {
		_, err := ParseTime("--since", bad, now)
		var fe *cmdutil.FlagError
		require.ErrorAs(t, err, &fe, bad)
		require.ErrorContains(t, err, "invalid --since")
	}
}

func TestParseAge(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute} {
		got, err := ParseAge("--older-than", in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "d", "1y", "ninety days"} {
		_, err := ParseAge("--older-than", bad)
		require.ErrorContains(t, err, "invalid --older-than", bad)
	}
}

func TestParseParams(t *testing.T) {
	t.Parallel()
	got, err := ParseParams([]string{"a=1", "note=x=y", "empty="})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "1", "note": "x=y", "empty": ""}, got)
	got, err = ParseParams(nil)
	require.NoError(t, err)
	require.Nil(t, got)
	for bad, msg := range map[string]string{"novalue": "use key=value", "Bad=1": "invalid --param key", "project_id=x": "use --project-id", "1x=2": "invalid --param key"} {
		_, err := ParseParams([]string{bad})
		require.ErrorContains(t, err, msg, bad)
	}
	_, err = ParseParams([]string{"a=1", "a=2"})
	require.ErrorContains(t, err, "--param a given twice")
}

func TestUsageError(t *testing.T) {
	t.Parallel()
	var fe *cmdutil.FlagError
	require.ErrorAs(t, UsageError(&localjobs.ScheduleError{Message: "no"}), &fe)
	require.ErrorAs(t, UsageError(&localjobs.NotFoundError{Kind: "team", Ref: "x"}), &fe)
	notFound := &localjobs.RunNotFoundError{ID: "x"}
	require.Same(t, notFound, UsageError(notFound), "an unknown run id exits 1, not 2")
	require.Nil(t, UsageError(nil))
}

func TestTableAndFields(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	cs := ios.ColorScheme(iostreams.Stdout)
	rows := [][]string{{"a", "tab\there", ""}, {"longer", "x", "y"}}
	require.Equal(t, "a\ttab\\there\t\nlonger\tx\ty\n", Table([]string{"one", "two", "three"}, rows, cmdutil.RenderContext{CS: cs}))
	rows = [][]string{{"a", "b", ""}, {"longer", "x", "y"}}
	require.Equal(t, "ONE     TWO  THREE\na       b    -\nlonger  x    y\n",
		Table([]string{"one", "two", "three"}, rows, cmdutil.RenderContext{CS: cs, TTY: true, Width: 80}))

	created := apitype.Time{Time: time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC)}
	ny, _ := time.LoadLocation("America/New_York")
	r := Fields("Team Acme (acme)", func(rc cmdutil.RenderContext) []Field {
		return []Field{{"ID", "id", "t1"}, {"Created", "created_at", Time(&created, rc)}, {"Gone", "deleted_at", ""}}
	})
	require.Equal(t, "id\tt1\ncreated_at\t2026-11-29T17:00:00.000Z\ndeleted_at\t\n", r(cmdutil.RenderContext{CS: cs, Now: time.Now().In(ny)}))
	require.Equal(t, "Team Acme (acme)\nID       t1\nCreated  2026-11-29 12:00:00 -05:00\nGone     -\n",
		r(cmdutil.RenderContext{CS: cs, TTY: true, Now: time.Now().In(ny)}))
}

func TestScheduleTimesAreUTC(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	next := apitype.Time{Time: time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC).In(ny)}
	cron := "0 3 * * *"
	s := localjobs.Schedule{JobType: "revenuecat_sync", Cron: &cron, NextRunAt: &next, Enabled: true, Source: "override"}
	ios, _, _, _ := iostreams.Test()
	rc := cmdutil.RenderContext{CS: ios.ColorScheme(iostreams.Stdout), TTY: true, Now: time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC).In(ny)}
	require.Equal(t, "Schedule of revenuecat_sync set to 0 3 * * * (UTC); next run 2026-11-30 03:00 UTC (in 14h)\n",
		ScheduleChanged(localjobs.ScheduleSet, []localjobs.Schedule{s})(rc))
}
