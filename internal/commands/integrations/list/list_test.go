package list

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

func TestNewCmdList(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	var got *ListOptions
	cmd := NewCmdList(cmdutil.NewTestFactory(ios, nil), func(_ context.Context, o *ListOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--project-id", "1A2B3C4D-0000-4000-8000-000000000001"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	require.NoError(t, cmd.Execute())
	require.Equal(t, "1a2b3c4d-0000-4000-8000-000000000001", got.Project.Value)

	cmd = NewCmdList(cmdutil.NewTestFactory(ios, nil), func(context.Context, *ListOptions) error { return nil })
	cmd.SetArgs([]string{"--project-id", "nope"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	require.ErrorContains(t, cmd.Execute(), `invalid --project-id "nope"`)
}

func TestRender(t *testing.T) {
	t.Parallel()
	var list []apitype.Integration
	require.NoError(t, json.Unmarshal([]byte(`[
	  {"id":"i1","project_id":"p","provider":"apple-search-ads","config":{"public_key_pem":"x"},"enabled":false,"missing_fields":["client_id","team_id"],"created_at":"2026-11-29T10:00:00.000Z","updated_at":"2026-11-29T11:00:00.000Z"},
	  {"id":"i2","project_id":"p","provider":"revenuecat","config":{"api_key":"sk_l****"},"enabled":true,"missing_fields":[],"created_at":"2026-11-29T10:00:00.000Z","updated_at":"2026-11-29T10:00:00.000Z"}]`), &list))
	ios, _, _, _ := iostreams.Test()
	rc := cmdutil.RenderContext{CS: ios.ColorScheme(iostreams.Stdout), Width: 100, TTY: false, Now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	require.Equal(t, "apple-search-ads\tfalse\t2026-11-29T10:00:00.000Z\t2026-11-29T11:00:00.000Z\ti1\tclient_id,team_id\n"+
		"revenuecat\ttrue\t2026-11-29T10:00:00.000Z\t2026-11-29T10:00:00.000Z\ti2\t\n", Render(list)(rc))
	rc.TTY = true
	lines := strings.Split(strings.TrimSuffix(ansi.Strip(Render(list)(rc)), "\n"), "\n")
	require.Regexp(t, `^PROVIDER +ENABLED +MISSING +CREATED +UPDATED$`, lines[0])
	require.Regexp(t, `^apple-search-ads +no +client_id, team_id +2h ago +1h ago$`, lines[1])
	require.Regexp(t, `^revenuecat +yes +- +2h ago +2h ago$`, lines[2])
	b, err := json.Marshal(list)
	require.NoError(t, err)
	require.Contains(t, string(b), `"public_key_pem":"x"`, "the bare array is re-emitted as received")
}
