package types

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

func run(t *testing.T, ios *iostreams.IOStreams, env map[string]string, args ...string) error {
	t.Helper()
	cmd := NewCmdTypes(cmdutil.NewTestFactory(ios, env), nil)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	return cmd.Execute()
}

func TestTypesJSON(t *testing.T) {
	t.Parallel()
	ios, _, out, _ := iostreams.Test()
	// No config file and no key: jobs types needs neither.
	require.NoError(t, run(t, ios, map[string]string{"OWLMETRY_FORMAT": "json", "OWLMETRY_CONFIG": "/nonexistent/config.json"}))
	var doc struct {
		JobTypes []JobTypeDoc `json:"job_types"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc))
	require.Len(t, doc.JobTypes, len(jobtype.All()), "one entry per registered type")
	for i, t0 := range jobtype.All() {
		d := doc.JobTypes[i]
		require.Equal(t, t0.Name, d.JobType)
		require.Equal(t, t0.APITriggerable(), d.APITriggerable)
		require.NotNil(t, d.Params)
	}
}

func TestTypesLayouts(t *testing.T) {
	t.Parallel()
	ios, _, out, _ := iostreams.Test()
	require.NoError(t, run(t, ios, nil))
	first := strings.SplitN(out.String(), "\n", 2)[0]
	require.Equal(t, "retention_cleanup\tsystem\tfalse\tData Retention Cleanup", first)

	ios, _, out, _ = iostreams.Test()
	ios.SetStdoutTTY(true)
	ios.SetWidth(200)
	require.NoError(t, run(t, ios, nil))
	text := ansi.Strip(out.String())
	require.Regexp(t, `(?m)^TYPE +SCOPE +START WITH$`, text)
	require.Regexp(t, `(?m)^apple_ads_sync +project +owlmetry jobs trigger · owlmetry ads sync · owlmetry integrations sync apple-search-ads · owlmetry system jobs run$`, text)
}
