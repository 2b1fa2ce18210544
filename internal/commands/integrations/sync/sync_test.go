package sync

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdSync(t *testing.T) {
	t.Parallel()
	const project = "1a2b3c4d-0000-4000-8000-000000000001"
	tests := []struct {
		name    string
		args    []string
		want    func(t *testing.T, o *SyncOptions)
		wantErr string
	}{
		{name: "bulk", args: []string{"app-store-connect", "--wait"}, want: func(t *testing.T, o *SyncOptions) {
			require.Equal(t, "app_store_connect_reviews_sync", o.Provider.JobType)
			require.True(t, o.Wait.Enabled)
			require.Empty(t, o.User)
		}},
		{name: "one user", args: []string{"revenuecat", "--user", "user 812/a", "--project-id", project}, want: func(t *testing.T, o *SyncOptions) {
			require.Equal(t, "user 812/a", o.User)
			require.Equal(t, project, o.Project.Value)
		}},
		{name: "apple search ads user", args: []string{"apple-search-ads", "--user", "u1"}, want: func(t *testing.T, o *SyncOptions) { require.Equal(t, "u1", o.User) }},
		{name: "unknown provider", args: []string{"stripe"}, wantErr: `invalid provider "stripe": valid providers are revenuecat, apple-search-ads, app-store-connect`},
		{name: "no provider", args: nil, wantErr: "missing a provider"},
		{name: "app store connect has no user sync", args: []string{"app-store-connect", "--user", "u1"}, wantErr: "app-store-connect has no per-user sync"},
		{name: "empty user", args: []string{"revenuecat", "--user", ""}, wantErr: "--user must not be empty"},
		{name: "anonymous revenuecat id", args: []string{"revenuecat", "--user", "$RCAnonymousID:abc"}, wantErr: "anonymous RevenueCat ids"},
		{name: "user with wait", args: []string{"revenuecat", "--user", "u1", "--wait"}, wantErr: "--user cannot be used with --wait"},
		{name: "user with attach", args: []string{"revenuecat", "--user", "u1", "--attach"}, wantErr: "--user cannot be used with --attach"},
		{name: "timeout needs wait", args: []string{"revenuecat", "--timeout", "1m"}, wantErr: "--timeout requires --wait"},
		{name: "bad project", args: []string{"revenuecat", "--project-id", "x"}, wantErr: "--project-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			var got *SyncOptions
			cmd := NewCmdSync(cmdutil.NewTestFactory(ios, nil), func(_ context.Context, o *SyncOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
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

func TestUserSyncedRendering(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	rc := cmdutil.RenderContext{CS: ios.ColorScheme(iostreams.Stdout), TTY: true}
	res := userSynced("u1", apiUserSync(t))
	require.Equal(t, "Synced user u1: updated in 1 app(s)\n  rc_plan    pro\n  rc_status  active\n", res(rc))
	rc.TTY = false
	require.Equal(t, "rc_plan\tpro\nrc_status\tactive\n", res(rc))
}

func apiUserSync(t *testing.T) apitype.UserSyncResponse {
	t.Helper()
	var r apitype.UserSyncResponse
	require.NoError(t, json.Unmarshal([]byte(`{"updated":1,"properties":{"rc_status":"active","rc_plan":"pro"}}`), &r))
	return r
}
