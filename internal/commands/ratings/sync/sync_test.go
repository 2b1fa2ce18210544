package sync

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdSync(t *testing.T) {
	t.Parallel()
	const project = "1a2b3c4d-0000-4000-8000-000000000001"
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *SyncOptions)
		wantErr string
	}{
		{name: "no flags", args: "", want: func(t *testing.T, o *SyncOptions) {
			require.Empty(t, o.Project.Value, "the default project is resolved later, from env or profile")
			require.False(t, o.Wait.Enabled)
			require.False(t, o.Attach)
		}},
		{name: "attach and wait", args: "--project-id " + strings.ToUpper(project) + " --attach --wait --timeout 1m", want: func(t *testing.T, o *SyncOptions) {
			require.Equal(t, project, o.Project.Value)
			require.True(t, o.Attach)
			require.True(t, o.Wait.Enabled)
		}},
		{name: "attach without wait", args: "--attach", want: func(t *testing.T, o *SyncOptions) { require.True(t, o.Attach) }},
		{name: "bad project", args: "--project-id p", wantErr: `invalid --project-id "p"`},
		{name: "timeout needs wait", args: "--timeout 1m", wantErr: "--timeout requires --wait"},
		{name: "progress needs wait", args: "--progress bar", wantErr: "--progress requires --wait"},
		{name: "no arguments", args: "now", wantErr: `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			var got *SyncOptions
			cmd := NewCmdSync(cmdutil.NewTestFactory(ios, nil), func(_ context.Context, o *SyncOptions) error { got = o; return nil })
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

// The project is resolved before any request: without one the command is exit 2.
func TestSyncNeedsAProject(t *testing.T) {
	t.Parallel()
	ios, _, out, _ := iostreams.Test()
	cmd := NewCmdSync(cmdutil.NewTestFactory(ios, map[string]string{"OWLMETRY_API_KEY": "owl_agent_x", "OWLMETRY_ENDPOINT": "http://127.0.0.1:1"}), nil)
	cmd.SetArgs(nil)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	var fe *cmdutil.FlagError
	require.ErrorAs(t, err, &fe)
	require.EqualError(t, err, cmdutil.NoProjectMessage)
	require.Empty(t, out.String())
}
