package wait

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

const (
	idA = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"
	idB = "77ab01cd-0000-4000-8000-000000000002"
)

func TestNewCmdWait(t *testing.T) {
	t.Parallel()
	many := make([]string, 21)
	for i := range many {
		many[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *WaitOptions)
		wantErr string
	}{
		{name: "duplicates dropped, order kept", args: idB + " " + strings.ToUpper(idA) + " " + idB, want: func(t *testing.T, o *WaitOptions) {
			require.Equal(t, []string{idB, idA}, o.RunIDs)
			require.True(t, o.Wait.Enabled, "jobs wait always waits")
		}},
		{name: "timeout without --wait is fine here", args: idA + " --timeout 10m --progress none --cancel-on-interrupt", want: func(t *testing.T, o *WaitOptions) {
			require.Equal(t, cmdutil.ProgressNone, o.Wait.Progress)
			require.True(t, o.Wait.CancelOnInterrupt)
		}},
		{name: "twenty ids", args: strings.Join(many[:20], " "), want: func(t *testing.T, o *WaitOptions) { require.Len(t, o.RunIDs, 20) }},
		{name: "twenty-one ids", args: strings.Join(many, " "), wantErr: "at most 20 runs"},
		{name: "no id", args: "", wantErr: "missing a run id"},
		{name: "bad id", args: idA + " nope", wantErr: `invalid run id "nope"`},
		{name: "there is no --wait flag", args: idA + " --wait", wantErr: "unknown flag: --wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			var got *WaitOptions
			cmd := NewCmdWait(cmdutil.NewTestFactory(ios, nil), func(_ context.Context, o *WaitOptions) error { got = o; return nil })
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
