package cmdutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/follow"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/tui"
)

func TestParseTimeFilter(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"30s", "15m", "2h", "7d", "1w", "123456789s", "2026-11-01", "2026-11-01T00:00:00Z", "2026-11-01T02:00:00.5+02:00"} {
		v, err := ParseTimeFilter("--since", ok)
		require.NoError(t, err, ok)
		require.Equal(t, ok, v, "sent as typed")
	}
	for _, bad := range []string{"", "1h30m", "-5m", "5 m", "5y", "1234567890s", "2026-11-01T00:00:00", "2026-13-01", "yesterday", "m"} {
		_, err := ParseTimeFilter("--until", bad)
		var fe *FlagError
		require.ErrorAs(t, err, &fe, bad)
		require.ErrorContains(t, err, "--until", "the error names the flag")
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	s, err := ParseStatus("--status", "running")
	require.NoError(t, err)
	require.Equal(t, apitype.StatusRunning, s)
	_, err = ParseStatus("--status", "done")
	require.ErrorContains(t, err, `invalid --status "done"`)
}

func waitFlags(t *testing.T, mode WaitMode, args ...string) (*WaitOptions, error) {
	t.Helper()
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	var o WaitOptions
	o.BuildFlags(fs, mode)
	require.NoError(t, fs.Parse(args))
	return &o, o.Validate(fs)
}

func TestWaitOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		mode    WaitMode
		wantErr string
	}{
		{args: []string{"--timeout", "1m"}, wantErr: "--timeout requires --wait"},
		{args: []string{"--progress", "lines"}, wantErr: "--progress requires --wait"},
		{args: []string{"--cancel-on-interrupt"}, wantErr: "--cancel-on-interrupt requires --wait"},
		{args: []string{"--poll-interval", "1s"}, wantErr: "--poll-interval requires --wait"},
		{args: []string{"--wait", "--poll-interval", "100ms"}, wantErr: "between 500ms and 5m"},
		{args: []string{"--wait", "--poll-interval", "6m"}, wantErr: "between 500ms and 5m"},
		{args: []string{"--wait", "--timeout", "-1s"}, wantErr: "must not be negative"},
		{args: []string{"--wait", "--progress", "fancy"}, wantErr: `invalid --progress "fancy"`},
		{args: []string{"--wait", "--timeout", "0", "--progress", "none"}},
		{args: []string{"--timeout", "5m"}, mode: WaitAlways},
	}
	for _, tt := range tests {
		o, err := waitFlags(t, tt.mode, tt.args...)
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, "%v", tt.args)
			continue
		}
		require.NoError(t, err, "%v", tt.args)
		require.True(t, o.Enabled)
	}
	o, err := waitFlags(t, WaitOptional, "--wait")
	require.NoError(t, err)
	require.Equal(t, ProgressAuto, o.Progress)
	require.Equal(t, 2*time.Second, o.PollInterval)
	require.Zero(t, o.Timeout)
}

func TestNewReporter(t *testing.T) {
	t.Parallel()
	type env map[string]string
	tests := []struct {
		name      string
		format    Format
		mode      ProgressMode
		stderrTTY bool
		env       env
		want      string
		wantErr   string
	}{
		{name: "json is quiet", format: FormatJSON, mode: ProgressAuto, stderrTTY: true, want: "quiet"},
		{name: "json refuses bar", format: FormatJSON, mode: ProgressBar, stderrTTY: true, wantErr: "--progress bar cannot be used with --format json"},
		{name: "json refuses lines", format: FormatJSON, mode: ProgressLines, wantErr: "--progress lines cannot be used with --format json"},
		{name: "none", format: FormatTable, mode: ProgressNone, stderrTTY: true, want: "quiet"},
		{name: "bar needs a terminal", format: FormatTable, mode: ProgressBar, wantErr: "--progress bar needs a terminal on stderr"},
		{name: "bar refuses dumb", format: FormatTable, mode: ProgressBar, stderrTTY: true, env: env{"TERM": "dumb"}, wantErr: "needs a terminal"},
		{name: "auto on a terminal", format: FormatTable, mode: ProgressAuto, stderrTTY: true, want: "bar"},
		{name: "auto on dumb terminal", format: FormatTable, mode: ProgressAuto, stderrTTY: true, env: env{"TERM": "dumb"}, want: "lines"},
		{name: "auto piped", format: FormatTable, mode: ProgressAuto, want: "lines"},
		{name: "lines on a terminal", format: FormatTable, mode: ProgressLines, stderrTTY: true, want: "lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			ios.SetStderrTTY(tt.stderrTTY)
			ios.SetEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			rep, err := NewReporter(context.Background(), ios, tt.format, tt.mode, time.Now)
			if tt.wantErr != "" {
				var fe *FlagError
				require.ErrorAs(t, err, &fe)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var got string
			switch rep.(type) {
			case tui.QuietReporter:
				got = "quiet"
			case *tui.Lines:
				got = "lines"
			case *tui.Bar:
				got = "bar"
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func testRun(id string, status apitype.Status) apitype.JobRun {
	return apitype.JobRun{ID: id, JobType: "apple_ads_sync", Status: status}
}

func TestFollowResultErr(t *testing.T) {
	t.Parallel()
	const a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
	ok := FollowResult{Result: follow.Result{Runs: []apitype.JobRun{testRun(a, "completed")}, Outcomes: []follow.Outcome{follow.Succeeded}}}
	require.NoError(t, ok.Err())

	msg := "upstream said no"
	failed := testRun(b, "failed")
	failed.Error = &msg
	res := FollowResult{Result: follow.Result{Runs: []apitype.JobRun{testRun(a, "completed"), failed}, Outcomes: []follow.Outcome{follow.Succeeded, follow.Failed}}}
	var oe *OutcomeError
	require.ErrorAs(t, res.Err(), &oe)
	require.Equal(t, ExitFailure, oe.Code)
	require.Equal(t, "job_failed", oe.Name)
	require.Equal(t, []string{b}, oe.RunIDs)
	require.Equal(t, "apple_ads_sync run "+b+" failed: upstream said no", oe.Message)
	require.Empty(t, oe.Hint)

	res = FollowResult{Format: FormatTable, Result: follow.Result{Runs: []apitype.JobRun{testRun(a, "running"), testRun(b, "pending")}, Outcomes: []follow.Outcome{follow.TimedOut, follow.TimedOut}}}
	require.ErrorAs(t, res.Err(), &oe)
	require.True(t, oe.Reported, "the outcome lines were printed")
	require.Equal(t, ExitPending, oe.Code)
	require.Equal(t, "wait_timeout", oe.Name)
	require.Equal(t, "re-attach: owlmetry jobs wait "+a+" "+b, oe.Hint)
	require.Equal(t, "wait timed out with 2 runs still active", oe.Message)

	res = FollowResult{Result: follow.Result{Runs: []apitype.JobRun{testRun(a, "running")}, Outcomes: []follow.Outcome{follow.Interrupted}, Interrupted: true}}
	require.ErrorAs(t, res.Err(), &oe)
	require.Equal(t, ExitInterrupted, oe.Code)
	require.Equal(t, []string{"note: the run was not cancelled"}, oe.Notes)
	require.False(t, oe.Reported, "a JSON-format wait printed no outcome lines")

	res.CancelRequested = true
	require.ErrorAs(t, res.Err(), &oe)
	require.Empty(t, oe.Notes, "a run that was asked to stop gets no such note")
}

func TestPrintOutcomes(t *testing.T) {
	t.Parallel()
	ios, _, _, errOut := iostreams.Test()
	run := testRun("aaaaaaaa-0000-4000-8000-000000000001", "cancelled")
	res := FollowResult{Result: follow.Result{Runs: []apitype.JobRun{run}, Outcomes: []follow.Outcome{follow.Cancelled}}}
	res.PrintOutcomes(ios)
	require.Equal(t, "apple_ads_sync aaaaaaaa-0000-4000-8000-000000000001 cancelled after 0ms\n", errOut.String(), "piped: job type, full id, no glyph")
}

func TestSettingsErrorMapping(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"active_team":"gone","teams":{"a":{"team_name":"Twin","team_slug":"t1"},"b":{"team_name":"twin","team_slug":"t2"}}}`), 0o600))
	newSettings := func(env map[string]string) *Settings {
		ios, _, _, _ := iostreams.Test()
		env["OWLMETRY_CONFIG"] = path
		return NewTestFactory(ios, env).Settings()
	}

	_, err := newSettings(map[string]string{}).APIKey()
	var ce *CredentialsError
	require.ErrorAs(t, err, &ce, "active team missing is exit 4")
	require.Equal(t, "owlmetry auth switch <team>", ce.Hint)

	_, err = newSettings(map[string]string{"OWLMETRY_TEAM": "twin"}).APIKey()
	var fe *FlagError
	require.ErrorAs(t, err, &fe, "an ambiguous hint is exit 2")

	_, err = newSettings(map[string]string{"OWLMETRY_TEAM": "t1"}).APIKey()
	require.ErrorAs(t, err, &ce, "a profile without a key is not logged in")
	require.Equal(t, "not logged in", ce.Message)
	require.Equal(t, "owlmetry auth login, or set OWLMETRY_API_KEY", ce.Hint)

	_, err = newSettings(map[string]string{"OWLMETRY_API_KEY": "owl_agent_x"}).ProjectID("")
	require.ErrorAs(t, err, &fe)
	require.EqualError(t, err, NoProjectMessage)

	_, err = newSettings(map[string]string{"OWLMETRY_API_KEY": "owl_agent_x", "OWLMETRY_PROJECT_ID": "x"}).ProjectID("")
	require.ErrorAs(t, err, &fe)
	require.ErrorContains(t, err, "OWLMETRY_PROJECT_ID")

	_, err = newSettings(map[string]string{"OWLMETRY_API_KEY": "owl_agent_x", "OWLMETRY_ENDPOINT": "nope"}).Endpoint()
	require.ErrorAs(t, err, &fe)

	require.NoError(t, os.WriteFile(path, []byte(`{nope`), 0o600))
	_, err = newSettings(map[string]string{}).APIKey()
	require.ErrorIs(t, err, config.ErrInvalid)
	require.False(t, errors.As(err, &fe))
}

func TestRewordKeepsTheOriginal(t *testing.T) {
	t.Parallel()
	orig := &CredentialsError{Message: "x"}
	err := Reword(orig, "friendly")
	require.EqualError(t, err, "friendly")
	require.ErrorIs(t, err, ErrNoCredentials)
	require.Nil(t, Reword(nil, "x"))
}
