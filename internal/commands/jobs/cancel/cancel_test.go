package cancel

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

const runID = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"

func TestNewCmdCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *CancelOptions)
		wantErr string
	}{
		{name: "upper-case id", args: strings.ToUpper(runID), want: func(t *testing.T, o *CancelOptions) {
			require.Equal(t, runID, o.RunID)
			require.False(t, o.Wait.Enabled)
		}},
		{name: "wait with timeout", args: runID + " --wait --timeout 2m", want: func(t *testing.T, o *CancelOptions) {
			require.True(t, o.Wait.Enabled)
			require.Equal(t, "2m0s", o.Wait.Timeout.String())
		}},
		{name: "short ids are never accepted", args: "3f2a9c1e", wantErr: `invalid run id "3f2a9c1e"`},
		{name: "timeout needs wait", args: runID + " --timeout 2m", wantErr: "--timeout requires --wait"},
		{name: "cancel-on-interrupt needs wait", args: runID + " --cancel-on-interrupt", wantErr: "--cancel-on-interrupt requires --wait"},
		{name: "no attach on cancel", args: runID + " --attach", wantErr: "unknown flag: --attach"},
		{name: "one id only", args: runID + " " + runID, wantErr: "expected a run id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			var got *CancelOptions
			cmd := NewCmdCancel(cmdutil.NewTestFactory(ios, nil), func(_ context.Context, o *CancelOptions) error { got = o; return nil })
			cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cmdutil.FlagErrorWrap(err) })
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

func TestCancelledRendering(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	rc := cmdutil.RenderContext{CS: ios.ColorScheme(iostreams.Stdout), TTY: true}
	require.Equal(t, "Cancellation requested for run "+runID, cancelled(runID, apitype.CancelResponse{Cancelled: true, Status: "running"})(rc))
	require.Equal(t, "Cancelled run "+runID+" before it started", cancelled(runID, apitype.CancelResponse{Cancelled: true, Status: "cancelled"})(rc))
	rc.TTY = false
	require.Equal(t, runID, cancelled(runID, apitype.CancelResponse{Cancelled: true})(rc))
}
