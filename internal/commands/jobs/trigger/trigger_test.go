package trigger

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdTrigger(t *testing.T) {
	t.Parallel()

	const project = "1a2b3c4d-0000-4000-8000-000000000001"
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *TriggerOptions)
		wantErr string
	}{
		{
			name: "params keep everything after the first equals sign",
			args: "revenuecat_user_backfill --project-id " + project + " --param note=a=b --param empty=",
			want: func(t *testing.T, o *TriggerOptions) {
				require.Equal(t, map[string]string{"note": "a=b", "empty": ""}, o.Params)
				require.True(t, o.Known)
				require.Equal(t, project, o.Project.Value)
			},
		},
		{
			name: "ids are lower-cased",
			args: "apple_ads_sync --project-id " + strings.ToUpper(project) + " --team-id 9C0D11AA-0000-4000-8000-000000000001",
			want: func(t *testing.T, o *TriggerOptions) {
				require.Equal(t, project, o.Project.Value)
				require.Equal(t, "9c0d11aa-0000-4000-8000-000000000001", o.TeamID)
				require.Nil(t, o.Params)
				require.False(t, o.Notify)
			},
		},
		{
			name: "unknown types are sent",
			args: "future_sync --notify --attach --wait --timeout 5m --progress lines",
			want: func(t *testing.T, o *TriggerOptions) {
				require.False(t, o.Known)
				require.True(t, o.Notify)
				require.True(t, o.Attach)
				require.True(t, o.Wait.Enabled)
				require.Equal(t, cmdutil.ProgressLines, o.Wait.Progress)
				require.Empty(t, o.Project.Value, "no default project for an unknown type at parse time")
			},
		},
		{name: "system types are refused", args: "retention_cleanup", wantErr: "retention_cleanup is a system job and cannot be triggered through the API"},
		{name: "ratings sync is named for its system type", args: "app_store_ratings_sync", wantErr: "app_store_ratings_sync is a system job"},
		{name: "malformed type", args: "Apple-Ads", wantErr: `invalid job type "Apple-Ads"`},
		{name: "malformed project id", args: "apple_ads_sync --project-id nope", wantErr: "--project-id"},
		{name: "malformed team id", args: "apple_ads_sync --team-id 123", wantErr: "--team-id"},
		{name: "timeout needs wait", args: "apple_ads_sync --project-id " + project + " --timeout 1m", wantErr: "--timeout requires --wait"},
		{name: "param without equals", args: "revenuecat_user_backfill --param starting_after", wantErr: `invalid --param "starting_after"`},
		{name: "param key shape", args: "revenuecat_user_backfill --param Bad=1", wantErr: `invalid --param key "Bad"`},
		{name: "param project_id", args: "revenuecat_user_backfill --param project_id=" + project, wantErr: "use --project-id"},
		{name: "repeated param", args: "revenuecat_user_backfill --param a=1 --param a=2", wantErr: "--param a given twice"},
		{name: "no type", args: "", wantErr: "missing a job type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil) // no env, no config file

			var got *TriggerOptions
			cmd := NewCmdTrigger(f, func(_ context.Context, o *TriggerOptions) error { got = o; return nil })
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

func TestSystemTypeHintNamesItsCommand(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	cmd := NewCmdTrigger(cmdutil.NewTestFactory(ios, nil), func(context.Context, *TriggerOptions) error { return nil })
	cmd.SetArgs([]string{"app_store_connect_reviews_sync"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	require.Equal(t, []string{"start it with: owlmetry integrations sync app-store-connect"}, cmdutil.Hints(err))
}
