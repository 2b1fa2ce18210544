package list

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

func TestNewCmdList(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	const team = "9c0d11aa-0000-4000-8000-000000000001"
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *ListOptions)
		wantErr string
	}{
		{
			name: "defaults: system runs, 20 per page",
			args: "",
			want: func(t *testing.T, o *ListOptions) {
				require.Equal(t, localjobs.ScopeSystem, o.Filter.Scope)
				require.Equal(t, 20, o.Filter.Limit)
				require.Nil(t, o.Filter.Since)
				require.Equal(t, 10*time.Second, o.Database.StatementTimeout)
			},
		},
		{
			name: "a team filter widens the default scope",
			args: "--team-id " + strings.ToUpper(team),
			want: func(t *testing.T, o *ListOptions) {
				require.Equal(t, localjobs.ScopeAll, o.Filter.Scope)
				require.Equal(t, team, o.Filter.TeamID)
			},
		},
		{
			name: "repeatable filters and times",
			args: "--type issue_scan --type old_job --status failed --status running --since 2h --until 2026-11-28 --stale --limit 1000",
			want: func(t *testing.T, o *ListOptions) {
				require.Equal(t, []string{"issue_scan", "old_job"}, o.Filter.Types)
				require.Equal(t, []apitype.Status{apitype.StatusFailed, apitype.StatusRunning}, o.Filter.Statuses)
				require.Equal(t, now.Add(-2*time.Hour), *o.Filter.Since)
				require.Equal(t, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), *o.Filter.Until)
				require.True(t, o.Filter.Stale)
				require.Equal(t, 1000, o.Filter.Limit)
			},
		},
		{name: "team runs cannot be system runs", args: "--scope system --project-id " + team, wantErr: "--project-id filters team runs and cannot be used with --scope system"},
		{name: "bad scope", args: "--scope mine", wantErr: `invalid --scope "mine"`},
		{name: "bad status", args: "--status done", wantErr: `invalid --status "done"`},
		{name: "bad type", args: "--type Issue-Scan", wantErr: "invalid --type"},
		{name: "bad time", args: "--since yesterday", wantErr: `invalid --since "yesterday"`},
		{name: "limit range", args: "--limit 1001", wantErr: "--limit must be between 1 and 1000"},
		{name: "all and cursor", args: "--all --cursor abc", wantErr: "--all cannot be used with --cursor"},
		{name: "bad cursor", args: "--cursor abc", wantErr: `invalid --cursor "abc"`},
		{name: "bad team id", args: "--team-id acme", wantErr: "--team-id"},
		{name: "negative statement timeout", args: "--statement-timeout -1s", wantErr: "--statement-timeout must not be negative"},
		{name: "no arguments", args: "extra", wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			f.NowFunc = func() time.Time { return now }
			var got *ListOptions
			cmd := NewCmdList(f, func(_ context.Context, o *ListOptions) error { got = o; return nil })
			cmd.SetArgs(strings.Fields(tt.args))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.want(t, got)
		})
	}
}

func TestNextPageRepeatsFilters(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	o := &ListOptions{rawScope: "all", Filter: localjobs.ListFilter{
		Types: []string{"issue_scan"}, Statuses: []apitype.Status{apitype.StatusFailed}, Since: &since, Limit: 5,
	}}
	require.Equal(t, "owlmetry system jobs list --scope all --type issue_scan --status failed --since 2026-11-28T00:00:00Z --limit 5 --cursor 'ab'\\''c'",
		o.nextPage("ab'c"))
}
