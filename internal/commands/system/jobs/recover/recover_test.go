package recover

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdRecover(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    string
		dryRun  bool
		wantErr string
	}{
		{name: "recover now", args: ""},
		{name: "dry run", args: "--dry-run", dryRun: true},
		{name: "no arguments", args: "now", wantErr: `unexpected argument "now"`},
		{name: "bad flag", args: "--force", wantErr: "unknown flag: --force"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			var got *RecoverOptions
			cmd := NewCmdRecover(f, func(_ context.Context, o *RecoverOptions) error { got = o; return nil })
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
			require.Equal(t, tt.dryRun, got.DryRun)
		})
	}
}
