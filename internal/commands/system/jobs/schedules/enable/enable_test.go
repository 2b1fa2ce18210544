package enable

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdEnable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *EnableOptions)
		wantErr string
	}{
		{name: "a type", args: "issue_scan", want: func(t *testing.T, o *EnableOptions) { require.Equal(t, "issue_scan", o.JobType) }},
		{name: "never schedulable", args: "revenuecat_user_backfill", wantErr: "revenuecat_user_backfill needs a project and cannot be scheduled"},
		{name: "unknown type", args: "nope", wantErr: "unknown job type"},
		{name: "one type", args: "", wantErr: "missing a job type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			var got *EnableOptions
			cmd := NewCmdEnable(f, func(_ context.Context, o *EnableOptions) error { got = o; return nil })
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
