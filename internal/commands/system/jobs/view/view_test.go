package view

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdView(t *testing.T) {
	t.Parallel()
	const id = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"
	tests := []struct {
		name    string
		args    string
		tty     bool
		want    func(t *testing.T, o *ViewOptions)
		wantErr string
	}{
		{name: "an id in any case", args: strings.ToUpper(id), want: func(t *testing.T, o *ViewOptions) {
			require.Equal(t, id, o.RunID)
			require.False(t, o.Wait.Enabled)
		}},
		{name: "wait with the DB poll interval", args: id + " --wait", want: func(t *testing.T, o *ViewOptions) {
			require.True(t, o.Wait.Enabled)
			require.Equal(t, time.Second, o.Wait.PollInterval)
		}},
		{name: "watch is wait", args: id + " --watch --timeout 1m", want: func(t *testing.T, o *ViewOptions) {
			require.True(t, o.Wait.Enabled)
			require.Equal(t, time.Minute, o.Wait.Timeout)
		}},
		{name: "a bar on a terminal", args: id + " --wait --progress bar", tty: true, want: func(t *testing.T, o *ViewOptions) {
			require.Equal(t, cmdutil.ProgressBar, o.Wait.Progress)
		}},
		{name: "no bar without a terminal", args: id + " --wait --progress bar", wantErr: "--progress bar needs a terminal on stderr"},
		{name: "timeout needs wait", args: id + " --timeout 1m", wantErr: "--timeout requires --wait"},
		{name: "short ids are refused", args: "3f2a9c1e", wantErr: "invalid run id"},
		{name: "one id", args: "", wantErr: "missing a run id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			ios.SetStderrTTY(tt.tty)
			f := cmdutil.NewTestFactory(ios, nil)
			var got *ViewOptions
			cmd := NewCmdView(f, func(_ context.Context, o *ViewOptions) error { got = o; return nil })
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
