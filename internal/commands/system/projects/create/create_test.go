package create

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    string
		want    func(t *testing.T, o *CreateOptions)
		wantErr string
	}{
		{name: "an unquoted name with spaces", args: "--team acme --name Acme iOS", wantErr: `unexpected argument "iOS"`},
		{name: "slug and colour", args: "--team acme --name Backend --slug be --color #10B981", want: func(t *testing.T, o *CreateOptions) {
			require.Equal(t, "be", o.Slug)
			require.Equal(t, "#10B981", o.Color)
		}},
		{name: "default colour and derived slug", args: "--team acme --name Backend", want: func(t *testing.T, o *CreateOptions) {
			require.Equal(t, "backend", o.Slug)
			require.Equal(t, "#6366f1", o.Color)
		}},
		{name: "team required", args: "--name Backend", wantErr: "--team is required"},
		{name: "name required", args: "--team acme", wantErr: "--name is required"},
		{name: "bad colour", args: "--team acme --name Backend --color #10B98", wantErr: `invalid color "#10B98"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := cmdutil.NewTestFactory(ios, nil)
			var got *CreateOptions
			cmd := NewCmdCreate(f, func(_ context.Context, o *CreateOptions) error { got = o; return nil })
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
