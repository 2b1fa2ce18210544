package devstack

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// State is <data-dir>/state.json (cli.md §11.2 step 10): what a CLI in another shell
// needs to reach the running stack. `owlmetry dev env` prints it.
type State struct {
	Endpoint    string            `json:"endpoint"`
	APIKey      string            `json:"api_key"`
	TeamID      string            `json:"team_id"`
	ProjectID   string            `json:"project_id"`
	DatabaseURL string            `json:"database_url"`
	SecretKey   string            `json:"secret_key"`
	Emulators   map[string]string `json:"emulators"`
	PID         int               `json:"pid"`
}

// ErrNotRunning means no state file exists in the data dir.
var ErrNotRunning = errors.New("owlmetry dev is not running")

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// ReadState reads the state file of a stack.
func ReadState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return s, ErrNotRunning
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// Env returns the variables a CLI in another shell needs, in print order (cli.md §11.2).
func (s State) Env() [][2]string {
	out := [][2]string{
		{"OWLMETRY_ENDPOINT", s.Endpoint},
		{"OWLMETRY_API_KEY", s.APIKey},
		{"OWLMETRY_TEAM_ID", s.TeamID},
		{"OWLMETRY_PROJECT_ID", s.ProjectID},
		{"DATABASE_URL", s.DatabaseURL},
		{"OWLMETRY_SECRET_KEY", s.SecretKey},
	}
	names := make([]string, 0, len(s.Emulators))
	for n := range s.Emulators {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if v, ok := emulatorEnv[n]; ok {
			for _, pair := range v(s.Emulators[n]) {
				out = append(out, pair)
			}
		}
	}
	return out
}

// emulatorEnv maps an emulator's base URL to the upstream variables that point owlmetry's
// clients at it (upstreams.md §1.3, §9.4).
var emulatorEnv = map[string]func(base string) [][2]string{
	"itunes": func(base string) [][2]string { return [][2]string{{"OWLMETRY_ITUNES_API_URL", base}} },
}
