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
		{name: "slug from the name", args: "--name Acme --database-url postgres://db.internal/owl", want: func(t *testing.T, o *CreateOptions) {
			require.Equal(t, "Acme", o.Name)
			require.Equal(t, "acme", o.Slug)
			require.Equal(t, "postgres://db.internal/owl", o.Database.URL)
		}},
		{name: "explicit slug", args: "--name Acme --slug acme-2", want: func(t *testing.T, o *CreateOptions) { require.Equal(t, "acme-2", o.Slug) }},
		{name: "name required", args: "--slug acme", wantErr: "--name is required"},
		{name: "bad slug", args: "--name Acme --slug ACME", wantErr: `invalid slug "ACME"`},
		{name: "nothing to derive", args: "--name ---", wantErr: `cannot derive a slug from "---": pass --slug`},
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
