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
		{name: "member by default, name later", args: "--email ada@example.com", want: func(t *testing.T, o *CreateOptions) {
			require.Equal(t, "ada@example.com", o.Email)
			require.Equal(t, "member", o.Role)
			require.Empty(t, o.Team)
		}},
		{name: "owner of a team", args: "--email ada@example.com --team acme --role owner --name Ada", want: func(t *testing.T, o *CreateOptions) {
			require.Equal(t, "acme", o.Team)
			require.Equal(t, "owner", o.Role)
			require.Equal(t, "Ada", o.Name)
		}},
		{name: "email required", args: "--team acme", wantErr: "--email is required"},
		{name: "malformed email", args: "--email ada", wantErr: `invalid email "ada"`},
		{name: "role needs a team", args: "--email ada@example.com --role admin", wantErr: "--role requires --team"},
		{name: "unknown role", args: "--email ada@example.com --team acme --role root", wantErr: "valid roles are owner, admin, member"},
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
