package cancel

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

func TestNewCmdCancel(t *testing.T) {
	t.Parallel()
	const id = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *CancelOptions)
		wantErr string
	}{
		{name: "an id", args: id, want: func(t *testing.T, o *CancelOptions) { require.Equal(t, id, o.RunID) }},
		{name: "wait for the stop", args: id + " --wait --timeout 2m", want: func(t *testing.T, o *CancelOptions) { require.True(t, o.Wait.Enabled) }},
		{name: "poll interval range", args: id + " --wait --poll-interval 100ms", wantErr: "--poll-interval must be between 500ms and 5m"},
		{name: "progress needs wait", args: id + " --progress lines", wantErr: "--progress requires --wait"},
		{name: "malformed id", args: "nope", wantErr: "invalid run id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			var got *CancelOptions
			cmd := NewCmdCancel(f, func(_ context.Context, o *CancelOptions) error { got = o; return nil })
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

func TestRequestedRendering(t *testing.T) {
	t.Parallel()
	run := localjobs.Run{ID: "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"}
	ios, _, _, _ := iostreams.Test()
	cs := ios.ColorScheme(iostreams.Stdout)
	require.Equal(t, run.ID+"\n", requested(run, localjobs.CancelRequested)(cmdutil.RenderContext{CS: cs}))
	require.Equal(t, "Cancelled run "+run.ID+" before it started\n", requested(run, localjobs.CancelDone)(cmdutil.RenderContext{CS: cs, TTY: true}))
	require.Equal(t, "Cancellation requested for run "+run.ID+"\n", requested(run, localjobs.CancelRequested)(cmdutil.RenderContext{CS: cs, TTY: true}))
}
