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
		{name: "defaults", args: "--team acme --created-by ada@example.com", want: func(t *testing.T, o *CreateOptions) {
			require.Equal(t, "owlmetry CLI key", o.Name)
			require.Nil(t, o.Permissions, "every agent permission")
			require.Zero(t, o.ExpiresIn)
		}},
		{name: "an empty permission in the list", args: "--team acme --created-by ada@example.com --permissions jobs:read,,jobs:read --expires-in 2w", wantErr: `unknown permission ""`},
		{name: "a subset that expires", args: "--team acme --created-by ada@example.com --permissions integrations:read,jobs:read --expires-in 90d", want: func(t *testing.T, o *CreateOptions) {
			require.Equal(t, []string{"integrations:read", "jobs:read"}, o.Permissions)
			require.Equal(t, "2160h0m0s", o.ExpiresIn.String())
		}},
		{name: "unknown permission", args: "--team acme --created-by ada@example.com --permissions jobs:admin", wantErr: `unknown permission "jobs:admin"; valid permissions: jobs:read, jobs:write, integrations:read, integrations:write`},
		{name: "team required", args: "--created-by ada@example.com", wantErr: "--team is required"},
		{name: "creator required", args: "--team acme", wantErr: "--created-by is required"},
		{name: "positive expiry", args: "--team acme --created-by ada@example.com --expires-in 0s", wantErr: "--expires-in must be positive"},
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
