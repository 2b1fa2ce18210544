package reset

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdReset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *ResetOptions)
		wantErr string
	}{
		{name: "a type", args: "apple_ads_sync", want: func(t *testing.T, o *ResetOptions) {
			require.Equal(t, "apple_ads_sync", o.JobType)
			require.False(t, o.All)
		}},
		{name: "all", args: "--all", want: func(t *testing.T, o *ResetOptions) { require.True(t, o.All) }},
		{name: "neither", args: "", wantErr: "missing a job type (or --all)"},
		{name: "both", args: "issue_scan --all", wantErr: "give a job type or --all, not both"},
		{name: "two types", args: "issue_scan issue_notify", wantErr: "expected one job type, got 2 arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			var got *ResetOptions
			cmd := NewCmdReset(f, func(_ context.Context, o *ResetOptions) error { got = o; return nil })
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
