package disable

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdDisable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *DisableOptions)
		wantErr string
	}{
		{name: "a type", args: "apple_ads_sync", want: func(t *testing.T, o *DisableOptions) { require.Equal(t, "apple_ads_sync", o.JobType) }},
		{name: "never schedulable", args: "revenuecat_user_backfill", wantErr: "cannot be scheduled"},
		{name: "two types", args: "issue_scan issue_notify", wantErr: "expected a job type, got 2 arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			var got *DisableOptions
			cmd := NewCmdDisable(f, func(_ context.Context, o *DisableOptions) error { got = o; return nil })
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
