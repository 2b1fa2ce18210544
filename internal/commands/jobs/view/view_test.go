package view

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdView(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		want    string
		wantErr string
	}{
		{args: []string{"3F2A9C1E-5B7D-4C1A-9E2F-0A1B2C3D4E5F"}, want: "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"},
		{args: []string{"{3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f}"}, wantErr: "invalid run id"},
		{args: []string{"3f2a9c1e5b7d4c1a9e2f0a1b2c3d4e5f"}, wantErr: "invalid run id"},
		{args: nil, wantErr: "missing a run id"},
	} {
		ios, _, _, _ := iostreams.Test()
		var got *ViewOptions
		cmd := NewCmdView(cmdutil.NewTestFactory(ios, nil), func(_ context.Context, o *ViewOptions) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if tc.wantErr != "" {
			var fe *cmdutil.FlagError
			require.ErrorAs(t, err, &fe)
			require.ErrorContains(t, err, tc.wantErr)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got.RunID)
	}
}
