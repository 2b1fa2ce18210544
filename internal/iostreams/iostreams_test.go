package iostreams

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestColorRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     []string
		tty     bool
		noColor bool
		json    bool
		want    bool
	}{
		{name: "tty", tty: true, want: true},
		{name: "piped", want: false},
		{name: "flag wins over force", env: []string{"CLICOLOR_FORCE", "1"}, noColor: true, want: false},
		{name: "NO_COLOR", env: []string{"NO_COLOR", "1"}, tty: true, want: false},
		{name: "json stdout", tty: true, json: true, want: false},
		{name: "FORCE_COLOR=0 beats CLICOLOR_FORCE", env: []string{"FORCE_COLOR", "0", "CLICOLOR_FORCE", "1"}, want: false},
		{name: "CLICOLOR_FORCE", env: []string{"CLICOLOR_FORCE", "1"}, want: true},
		{name: "CLICOLOR_FORCE=0 is not force", env: []string{"CLICOLOR_FORCE", "0"}, want: false},
		{name: "FORCE_COLOR=2", env: []string{"FORCE_COLOR", "2"}, want: true},
		{name: "dumb", env: []string{"TERM", "dumb"}, tty: true, want: false},
		{name: "CLICOLOR=0", env: []string{"CLICOLOR", "0"}, tty: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := Test()
			ios.SetEnv(envOf(tt.env...))
			ios.SetStdoutTTY(tt.tty)
			ios.SetNoColor(tt.noColor)
			ios.SetJSONOutput(tt.json)
			require.Equal(t, tt.want, ios.ColorEnabled(Stdout))
		})
	}
}

func TestWidth(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := Test()
	require.Equal(t, 80, ios.TerminalWidth(Stdout))
	ios.SetEnv(envOf("COLUMNS", "132"))
	require.Equal(t, 132, ios.TerminalWidth(Stderr))
	ios.SetWidth(40)
	require.Equal(t, 40, ios.TerminalWidth(Stdout))
}

func TestSchemePlainWhenOff(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := Test()
	cs := ios.ColorScheme(Stderr)
	require.Equal(t, "failed", cs.Status("failed"))
	ios.SetEnv(envOf("CLICOLOR_FORCE", "1"))
	require.Equal(t, "\x1b[31mfailed\x1b[0m", ios.ColorScheme(Stderr).Status("failed"))
}
