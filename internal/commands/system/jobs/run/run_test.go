package run

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdRun(t *testing.T) {
	t.Parallel()
	const project = "1a2b3c4d-0000-4000-8000-000000000001"
	tests := []struct {
		name    string
		args    string
		tty     bool
		format  string
		want    func(t *testing.T, o *RunOptions)
		wantErr string
	}{
		{name: "queued, no wait", args: "partition_creation", want: func(t *testing.T, o *RunOptions) {
			require.Equal(t, "partition_creation", o.Request.JobType)
			require.False(t, o.Local)
			require.False(t, o.Wait.Enabled)
			require.Empty(t, o.Request.ProjectID)
		}},
		{name: "local always waits", args: "partition_creation --local", want: func(t *testing.T, o *RunOptions) {
			require.True(t, o.Local)
			require.True(t, o.Wait.Enabled)
		}},
		{name: "params keep everything after the first equals sign", args: "revenuecat_user_backfill --project-id " + strings.ToUpper(project) + " --param starting_after=a=b",
			want: func(t *testing.T, o *RunOptions) {
				require.Equal(t, project, o.Request.ProjectID)
				require.Equal(t, map[string]string{"starting_after": "a=b"}, o.Request.Params)
			}},
		{name: "integer params as strings", args: "db_pruning --param max_size_bytes=1024 --attach --wait", want: func(t *testing.T, o *RunOptions) {
			require.Equal(t, "1024", o.Request.Params["max_size_bytes"])
			require.True(t, o.Attach)
		}},
		{name: "a bar on a terminal", args: "partition_creation --local --progress bar", tty: true, want: func(t *testing.T, o *RunOptions) {
			require.Equal(t, cmdutil.ProgressBar, o.Wait.Progress)
		}},
		{name: "no bar off a terminal", args: "partition_creation --local --progress bar", wantErr: "--progress bar needs a terminal on stderr"},
		{name: "no lines with JSON", args: "partition_creation --local --progress lines", format: "json", wantErr: "--progress lines cannot be used with --format json"},
		{name: "unknown type", args: "nope", wantErr: `unknown job type "nope"; valid types: retention_cleanup`},
		{name: "undeclared param", args: "partition_creation --param months=3", wantErr: `Unknown param "months" for job type "partition_creation" (allowed: none)`},
		{name: "wrong type", args: "db_pruning --param max_size_bytes=lots", wantErr: `Invalid param "max_size_bytes": must be an integer`},
		{name: "project where none is taken", args: "issue_scan --project-id " + project, wantErr: `Unknown param "project_id"`},
		{name: "required project", args: "revenuecat_user_backfill", wantErr: `Invalid param "project_id": is required`},
		{name: "malformed project", args: "apple_ads_sync --project-id nope", wantErr: "--project-id"},
		{name: "project_id as a param", args: "apple_ads_sync --param project_id=" + project, wantErr: "use --project-id"},
		{name: "malformed param", args: "db_pruning --param max_size_bytes", wantErr: `invalid --param "max_size_bytes": use key=value`},
		{name: "timeout not with local", args: "partition_creation --local --timeout 1m", wantErr: "--timeout cannot be used with --local"},
		{name: "timeout needs wait", args: "partition_creation --timeout 1m", wantErr: "--timeout requires --wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			ios.SetStderrTTY(tt.tty)
			f := cmdutil.NewTestFactory(ios, nil)
			f.Flags.Format = tt.format
			var got *RunOptions
			cmd := NewCmdRun(f, shared.Deps{}, func(_ context.Context, o *RunOptions) error { got = o; return nil })
			cmd.SetArgs(strings.Fields(tt.args))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				var fe *cmdutil.FlagError
				require.ErrorAs(t, err, &fe, "validation errors exit 2")
				return
			}
			require.NoError(t, err)
			tt.want(t, got)
		})
	}
}
