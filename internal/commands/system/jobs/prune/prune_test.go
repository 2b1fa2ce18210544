package prune

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

func TestNewCmdPrune(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *PruneOptions)
		wantErr string
	}{
		{name: "defaults", args: "", want: func(t *testing.T, o *PruneOptions) {
			require.Equal(t, 90*24*time.Hour, o.OlderThan)
			require.Equal(t, 1, o.KeepLast)
			require.Equal(t, 1000, o.BatchSize)
			require.False(t, o.Yes)
		}},
		{name: "weeks, types, keep and yes", args: "--older-than 2w --type issue_scan --type issue_notify --keep-last 3 --batch-size 10000 -y", want: func(t *testing.T, o *PruneOptions) {
			require.Equal(t, 14*24*time.Hour, o.OlderThan)
			require.Equal(t, []string{"issue_scan", "issue_notify"}, o.Types)
			require.Equal(t, 3, o.KeepLast)
			require.True(t, o.Yes)
		}},
		{name: "Go durations count", args: "--older-than 36h", want: func(t *testing.T, o *PruneOptions) { require.Equal(t, 36*time.Hour, o.OlderThan) }},
		{name: "at least a day", args: "--older-than 23h", wantErr: "--older-than must be at least 1d"},
		{name: "bad age", args: "--older-than old", wantErr: `invalid --older-than "old"`},
		{name: "keep at least one", args: "--keep-last 0", wantErr: "--keep-last must be at least 1"},
		{name: "batch range", args: "--batch-size 0", wantErr: "--batch-size must be between 1 and 10000"},
		{name: "bad type", args: "--type 'x'", wantErr: "invalid --type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			var got *PruneOptions
			cmd := NewCmdPrune(f, func(_ context.Context, o *PruneOptions) error { got = o; return nil })
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

func TestRenderCounts(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	cs := ios.ColorScheme(iostreams.Stdout)
	doc := pruneDoc{ByType: map[string]int64{"issue_scan": 12, "db_pruning": 3}}
	require.Equal(t, "db_pruning\t3\nissue_scan\t12\n", render(doc)(cmdutil.RenderContext{CS: cs}))
	tty := render(doc)(cmdutil.RenderContext{CS: cs, TTY: true, Width: 80})
	require.Equal(t, "TYPE        DELETED\ndb_pruning  3\nissue_scan  12\n", tty)
	require.Empty(t, render(pruneDoc{ByType: map[string]int64{}})(cmdutil.RenderContext{CS: cs}))
}
