// Package env implements `owlmetry dev env`: the variables a CLI in another shell needs
// to reach a running dev stack (cli.md §11.2).
package env

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/devstack"
)

// EnvOptions holds what `owlmetry dev env` needs.
type EnvOptions struct {
	Factory *cmdutil.Factory
	DataDir string
	Timeout time.Duration
}

// NewCmdEnv builds `owlmetry dev env`.
func NewCmdEnv(f *cmdutil.Factory, runFunc func(context.Context, *EnvOptions) error) *cobra.Command {
	opts := &EnvOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print the variables that point a shell at the running dev stack",
		Long: `Print, as export lines, the variables a CLI in another shell needs to reach the
running dev stack: the API endpoint and key, the team and project, the database
URL, the credentials key and the emulators' base URLs.`,
		Example: `  # Point this shell at the stack
  eval "$(owlmetry dev env)"

  # In a script: wait up to two minutes for the stack to be ready
  eval "$(owlmetry dev env --timeout 2m)"`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Timeout < 0 {
				return cmdutil.FlagErrorf("--timeout must not be negative")
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return envRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DataDir, "data-dir", "", "the dev stack's data dir (default: the user's data dir)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 0, "wait up to this long for the stack to become ready")
	return cmd
}

func envRun(ctx context.Context, opts *EnvOptions) error {
	f := opts.Factory
	p, err := f.Printer()
	if err != nil {
		return err
	}
	dir := opts.DataDir
	if dir == "" {
		home, _ := f.LookupEnvFunc("HOME")
		dir = devstack.DefaultDataDir(f.LookupEnvFunc, home)
	}
	deadline := time.Now().Add(opts.Timeout)
	for {
		st, err := devstack.ReadState(dir)
		if err == nil && ready(ctx, st.Endpoint) {
			return p.Print(Document(st), func(cmdutil.RenderContext) string { return Exports(st) })
		}
		if err != nil && !errors.Is(err, devstack.ErrNotRunning) {
			return err
		}
		if !time.Now().Before(deadline) {
			return devstack.ErrNotRunning
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, endpoint string) bool {
	if endpoint == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Doc is the JSON form of `dev env` (cli.md §4.4).
type Doc struct {
	Endpoint    string            `json:"endpoint"`
	APIKey      string            `json:"api_key"`
	TeamID      string            `json:"team_id"`
	ProjectID   string            `json:"project_id"`
	DatabaseURL string            `json:"database_url"`
	SecretKey   string            `json:"secret_key"`
	Emulators   map[string]string `json:"emulators"`
	Env         map[string]string `json:"env"`
}

// Document builds the JSON form from a state file.
func Document(s devstack.State) Doc {
	d := Doc{Endpoint: s.Endpoint, APIKey: s.APIKey, TeamID: s.TeamID, ProjectID: s.ProjectID, DatabaseURL: s.DatabaseURL,
		SecretKey: s.SecretKey, Emulators: s.Emulators, Env: map[string]string{}}
	if d.Emulators == nil {
		d.Emulators = map[string]string{}
	}
	for _, kv := range s.Env() {
		d.Env[kv[0]] = kv[1]
	}
	return d
}

// Exports renders the export lines, then the emulators' control APIs as a comment.
func Exports(s devstack.State) string {
	var b strings.Builder
	for _, kv := range s.Env() {
		if kv[1] == "" {
			continue
		}
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	names := make([]string, 0, len(s.Emulators))
	for n := range s.Emulators {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		b.WriteString("# emulator control APIs:")
		for _, n := range names {
			fmt.Fprintf(&b, " %s/_emulator/", s.Emulators[n])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// shellQuote leaves plain values alone and single-quotes anything a shell would split.
func shellQuote(v string) string {
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./:@=%+,", c)) {
			return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
		}
	}
	return v
}
