package list

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdList(t *testing.T) {
	t.Parallel()
	const project = "1a2b3c4d-0000-4000-8000-000000000001"
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *ListOptions)
		wantErr string
	}{
		{
			name: "filters as typed, ids lower-cased",
			args: "--type apple_ads_sync --status failed --since 7d --until 2026-11-01 --limit 20 --project-id " + strings.ToUpper(project),
			want: func(t *testing.T, o *ListOptions) {
				require.Equal(t, "apple_ads_sync", o.JobType)
				require.Equal(t, "failed", o.Status)
				require.Equal(t, "7d", o.Since)
				require.Equal(t, "2026-11-01", o.Until)
				require.Equal(t, 20, o.Limit)
				require.Equal(t, project, o.ProjectID)
			},
		},
		{
			name: "no filter, no default project",
			args: "",
			want: func(t *testing.T, o *ListOptions) {
				require.Empty(t, o.ProjectID)
				require.Zero(t, o.Limit)
			},
		},
		{name: "unknown types are allowed", args: "--type future_job", want: func(t *testing.T, o *ListOptions) { require.Equal(t, "future_job", o.JobType) }},
		{name: "malformed type", args: "--type Apple", wantErr: `invalid --type "Apple"`},
		{name: "bad status", args: "--status done", wantErr: `invalid --status "done"`},
		{name: "bad since", args: "--since yesterday", wantErr: `invalid --since "yesterday"`},
		{name: "bad until", args: "--until 1h30m", wantErr: `invalid --until "1h30m"`},
		{name: "bad project", args: "--project-id 42", wantErr: "--project-id"},
		{name: "bad team", args: "--team-id 42", wantErr: "--team-id"},
		{name: "limit too big", args: "--limit 201", wantErr: "--limit must be between 1 and 200"},
		{name: "limit zero", args: "--limit 0", wantErr: "--limit must be between 1 and 200"},
		{name: "empty cursor", args: "--cursor=", wantErr: "--cursor must not be empty"},
		{name: "all with cursor", args: "--all --cursor abc", wantErr: "--all cannot be used with --cursor"},
		{name: "arguments refused", args: "extra", wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			var got *ListOptions
			cmd := NewCmdList(cmdutil.NewTestFactory(ios, nil), func(_ context.Context, o *ListOptions) error { got = o; return nil })
			cmd.SetArgs(strings.Fields(tt.args))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				var fe *cmdutil.FlagError
				require.ErrorAs(t, err, &fe)
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
	o := &ListOptions{JobType: "apple_ads_sync", Status: "failed", Since: "7d", Limit: 20}
	require.Equal(t, `owlmetry jobs list --type apple_ads_sync --status failed --since 7d --limit 20 --cursor '2026-11-29T10:30:00.123456Z|it'\''s'`,
		nextPage(o, "2026-11-29T10:30:00.123456Z|it's"))
}
