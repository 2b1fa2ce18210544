package set

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{name: "five fields", args: []string{"revenuecat_sync", "0 3 * * *"}, want: "0 3 * * *"},
		{name: "a descriptor", args: []string{"issue_scan", "@every 20m"}, want: "@every 20m"},
		{name: "no time zones", args: []string{"issue_scan", "TZ=Europe/Paris 0 3 * * *"}, wantErr: `invalid cron expression "TZ=Europe/Paris 0 3 * * *": schedules are always UTC`},
		{name: "six fields", args: []string{"issue_scan", "0 0 3 * * *"}, wantErr: "expected 5 fields, got 6"},
		{name: "unknown descriptor", args: []string{"issue_scan", "@fortnightly"}, wantErr: "unknown descriptor"},
		{name: "never schedulable", args: []string{"revenuecat_user_backfill", "0 3 * * *"}, wantErr: "revenuecat_user_backfill needs a project and cannot be scheduled"},
		{name: "unquoted expression", args: []string{"issue_scan", "0", "3", "*", "*", "*"}, wantErr: "expected a job type and a cron expression, got 6 arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			var got *SetOptions
			cmd := NewCmdSet(f, func(_ context.Context, o *SetOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				var fe *cmdutil.FlagError
				require.ErrorAs(t, err, &fe)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.args[0], got.JobType)
			require.Equal(t, tt.want, got.Cron)
		})
	}
}
