// Package configcmd implements `owlmetry config` and its subcommands.
package configcmd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// Keys are the settable keys (cli.md §9.5).
var Keys = []string{"endpoint", "ingest_endpoint", "active_team", "default_project"}

// ConfigOptions holds what the config commands need.
type ConfigOptions struct {
	IO       *iostreams.IOStreams
	Factory  *cmdutil.Factory
	Settings func() *cmdutil.Settings
	Printer  func() (*cmdutil.Printer, error)

	Key   string
	Value string
}

// NewCmdConfig builds `owlmetry config`; without a subcommand it lists the settings.
func NewCmdConfig(f *cmdutil.Factory) *cobra.Command {
	opts := &ConfigOptions{IO: f.IOStreams, Factory: f, Settings: f.Settings, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "config [list|get|set|unset|path]",
		Short: "Show where each setting comes from, and change stored defaults",
		Long: `Without a subcommand, list every setting with its resolved value and where it
came from: a flag, the environment, the profile, the file, the default, or whoami.
The subcommands read and change the stored values of the config file: endpoint,
ingest_endpoint, active_team and default_project.`,
		Example: `  # Where does my endpoint come from?
  owlmetry config

  # Stop repeating the project id in CI scripts
  owlmetry config set default_project 1a2b3c4d-0000-4000-8000-000000000001`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += "; did you mean " + strings.Join(s, " or ") + "?"
				}
				return cmdutil.FlagErrorf("%s", msg)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return listRun(cmd.Context(), opts) },
	}
	cmd.AddCommand(newCmdList(opts), newCmdGet(opts), newCmdSet(opts), newCmdUnset(opts), newCmdPath(opts))
	return cmd
}

func newCmdList(opts *ConfigOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every setting with its value and source",
		Long:  "List every setting with its resolved value and where it came from. Secrets are masked.",
		Example: `  # On a terminal
  owlmetry config list

  # The endpoint in use, for a script
  owlmetry config list --format json | jq -r .settings.endpoint.value`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return listRun(cmd.Context(), opts) },
	}
}

func keyArg(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return Keys, cobra.ShellCompDirectiveNoFileComp
}

func checkKey(k string) error {
	for _, x := range Keys {
		if x == k {
			return nil
		}
	}
	return cmdutil.FlagErrorf("unknown key %q: valid keys are %s", k, strings.Join(Keys, ", "))
}

func newCmdGet(opts *ConfigOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get <key>",
		Short: "Print one stored value",
		Long:  "Print a value stored in the config file. A key that is not set is exit 1.",
		Example: `  # The stored default project
  owlmetry config get default_project

  # In a script
  project=$(owlmetry config get default_project)`,
		Args:              cmdutil.ExactArgs(1, "a key"),
		ValidArgsFunction: keyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkKey(args[0]); err != nil {
				return err
			}
			opts.Key = args[0]
			return getRun(cmd.Context(), opts)
		},
	}
}

func newCmdSet(opts *ConfigOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "set <key> <value>",
		Short: "Store a value in the config file",
		Long: `Check a value and store it: endpoint in the selected profile (top level when there
is none), ingest_endpoint and active_team at the top level, default_project in the
selected profile.`,
		Example: `  # A default project for this team
  owlmetry config set default_project 1a2b3c4d-0000-4000-8000-000000000001

  # Make the staging profile the default
  owlmetry config set active_team staging`,
		Args:              cmdutil.ExactArgs(2, "a key and a value"),
		ValidArgsFunction: keyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkKey(args[0]); err != nil {
				return err
			}
			opts.Key, opts.Value = args[0], args[1]
			return setRun(cmd.Context(), opts, false)
		},
	}
}

func newCmdUnset(opts *ConfigOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "unset <key>",
		Short: "Remove a value from the config file",
		Long:  "Remove a stored value from the config file.",
		Example: `  # Forget the default project
  owlmetry config unset default_project

  # Go back to the default endpoint
  owlmetry config unset endpoint`,
		Args:              cmdutil.ExactArgs(1, "a key"),
		ValidArgsFunction: keyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkKey(args[0]); err != nil {
				return err
			}
			opts.Key, opts.Value = args[0], ""
			return setRun(cmd.Context(), opts, true)
		},
	}
}

func newCmdPath(opts *ConfigOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "path",
		Short: "Print the config file's path",
		Long:  "Print the path of the config file this invocation uses. The file need not exist.",
		Example: `  # Where is it?
  owlmetry config path

  # Check its mode
  ls -l "$(owlmetry config path)"`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := opts.Printer()
			if err != nil {
				return err
			}
			path, err := opts.Settings().ConfigPath()
			if err != nil {
				return err
			}
			return p.Print(map[string]string{"config_path": path.Value}, func(cmdutil.RenderContext) string { return path.Value })
		},
	}
}

// Setting is one row of `config list`.
type Setting struct {
	Value  any    `json:"value"`
	Source string `json:"source"`
}

func listRun(ctx context.Context, opts *ConfigOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	s := opts.Settings()
	r := s.Resolver()
	path, err := s.ConfigPath()
	if err != nil {
		return err
	}
	settings := map[string]Setting{}
	names := []string{"profile", "api_key", "endpoint", "team_id", "project_id", "format", "database_url"}
	set := func(name string, v config.Value, err error, show func(string) string) error {
		if err != nil {
			if errors.Is(err, config.ErrInvalid) {
				return err
			}
			settings[name] = Setting{Value: nil, Source: string(config.SourceUnset)}
			return nil
		}
		if !v.Set() {
			settings[name] = Setting{Value: nil, Source: string(config.SourceUnset)}
			return nil
		}
		val := v.Value
		if show != nil {
			val = show(val)
		}
		settings[name] = Setting{Value: val, Source: string(v.Source)}
		return nil
	}
	key, prof, perr := r.Profile()
	var pv config.Value
	if prof != nil {
		pv = config.Value{Value: config.ProfileLabel(key, prof), Source: config.SourceProfile}
		switch {
		case opts.Factory.Flags.Team != "":
			pv.Source = config.SourceFlag
		case opts.Factory.Getenv("OWLMETRY_TEAM") != "":
			pv.Source = config.SourceEnv
		default:
			pv.Source = config.SourceFile
		}
	}
	if err := set("profile", pv, perr, nil); err != nil {
		return err
	}
	v, err := r.APIKey()
	if err := set("api_key", v, err, maskKey); err != nil {
		return err
	}
	v, err = r.Endpoint()
	if err := set("endpoint", v, err, nil); err != nil {
		return err
	}
	v, err = r.TeamID("")
	if err == nil && !v.Set() {
		if _, kerr := r.APIKey(); kerr == nil {
			v = config.Value{Value: "(from whoami)", Source: config.SourceWhoami}
		}
	}
	if err := set("team_id", v, err, nil); err != nil {
		return err
	}
	v, err = r.ProjectID("")
	if err := set("project_id", v, err, nil); err != nil {
		return err
	}
	if err := set("format", r.Format(), nil, nil); err != nil {
		return err
	}
	v = databaseURL(opts.Factory.LookupEnvFunc)
	if err := set("database_url", v, nil, maskURL); err != nil {
		return err
	}
	doc := map[string]any{"config_path": path.Value, "settings": settings}
	return p.Print(doc, func(rc cmdutil.RenderContext) string {
		t := tui.Table{Columns: []tui.Column{{Header: "setting", NoTruncate: true}, {Header: "value"}, {Header: "source", NoTruncate: true}}}
		t.AddRow("config_path", path.Value, string(path.Source))
		for _, n := range names {
			st := settings[n]
			val := ""
			if st.Value != nil {
				val = fmt.Sprint(st.Value)
			} else if rc.TTY {
				val = "-"
			}
			t.AddRow(n, val, st.Source)
		}
		return t.Render(rc.TTY, rc.Width, rc.CS)
	})
}

// databaseURL is the database URL as server-owner commands would resolve it.
func databaseURL(lookup func(string) (string, bool)) config.Value {
	for _, k := range []string{"OWLMETRY_DATABASE_URL", "DATABASE_URL"} {
		if v, ok := lookup(k); ok && v != "" {
			return config.Value{Value: v, Source: config.SourceEnv, From: k}
		}
	}
	url, err := cmdutil.ResolveDatabaseURL("", lookup)
	if err != nil {
		return config.Value{Source: config.SourceUnset}
	}
	return config.Value{Value: url, Source: config.SourceEnv}
}

// maskKey shows `owl_agent_` and the first 4 hex digits of a key.
func maskKey(k string) string {
	for _, prefix := range []string{"owl_agent_", "owl_client_", "owl_import_"} {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			return prefix + rest[:min(4, len(rest))] + "…"
		}
	}
	return k[:min(4, len(k))] + "…"
}

// maskURL replaces a database password with ****.
func maskURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxx")
			return strings.Replace(u.String(), ":xxxx@", ":****@", 1)
		}
		return s
	}
	parts := strings.Fields(s)
	for i, p := range parts {
		if strings.HasPrefix(p, "password=") {
			parts[i] = "password=****"
		}
	}
	return strings.Join(parts, " ")
}

// stored reads a key's stored value.
func stored(f *config.File, profile *config.Profile, key string) string {
	switch key {
	case "endpoint":
		if profile != nil {
			return profile.Endpoint
		}
		return f.Endpoint
	case "ingest_endpoint":
		return f.IngestEndpoint
	case "active_team":
		return f.ActiveTeam
	case "default_project":
		if profile != nil {
			return profile.DefaultProject
		}
	}
	return ""
}

func getRun(_ context.Context, opts *ConfigOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	r := opts.Settings().Resolver()
	l, err := r.File()
	if err != nil {
		return cmdutil.ConfigError(err)
	}
	var prof *config.Profile
	if opts.Key == "endpoint" || opts.Key == "default_project" {
		if _, prof, err = r.FileProfile(); err != nil {
			return cmdutil.ConfigError(err)
		}
	}
	v := stored(l.File, prof, opts.Key)
	if v == "" {
		return &cmdutil.CodedError{Code: cmdutil.ExitFailure, Name: "not_found", Err: fmt.Errorf("%s is not set", opts.Key)}
	}
	return p.Print(map[string]string{"key": opts.Key, "value": v}, func(cmdutil.RenderContext) string { return v })
}

func setRun(_ context.Context, opts *ConfigOptions, unset bool) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	s := opts.Settings()
	path, err := s.ConfigPath()
	if err != nil {
		return err
	}
	value := opts.Value
	if !unset {
		switch opts.Key {
		case "endpoint", "ingest_endpoint":
			if value, err = config.ParseEndpoint(value); err != nil {
				return cmdutil.FlagErrorf("invalid %s %q: %s", opts.Key, opts.Value, err)
			}
		case "default_project":
			if value, err = cmdutil.ParseUUID("default_project", value); err != nil {
				return err
			}
		}
	}
	hint := s.Resolver().TeamHint()
	_, err = config.Update(path.Value, func(f *config.File) error {
		var prof *config.Profile
		if hint != "" {
			key, err := config.SelectProfile(f, hint)
			if err != nil {
				return cmdutil.ConfigError(err)
			}
			prof = f.Teams[key]
		} else if f.ActiveTeam != "" {
			prof = f.Teams[f.ActiveTeam]
		}
		switch opts.Key {
		case "endpoint":
			if prof != nil {
				prof.Endpoint = value
			} else {
				f.Endpoint = value
			}
		case "ingest_endpoint":
			f.IngestEndpoint = value
		case "active_team":
			if !unset {
				key, err := config.SelectProfile(f, value)
				if err != nil {
					return cmdutil.ConfigError(err)
				}
				value = key
			}
			f.ActiveTeam = value
		case "default_project":
			if prof == nil {
				return cmdutil.FlagErrorf("default_project needs a team profile: run owlmetry auth login first")
			}
			prof.DefaultProject = value
		}
		return nil
	})
	if err != nil {
		return err
	}
	var v any = value
	if unset {
		v = nil
	}
	return p.Print(map[string]any{"key": opts.Key, "value": v}, func(rc cmdutil.RenderContext) string {
		switch {
		case !rc.TTY:
			return opts.Key + "\t" + value
		case unset:
			return "Unset " + opts.Key
		}
		return fmt.Sprintf("Set %s to %s", opts.Key, value)
	})
}
