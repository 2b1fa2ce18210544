// Package login implements `owlmetry auth login` and its hidden alias `owlmetry setup`.
package login

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// LoginOptions holds what `owlmetry auth login` needs.
type LoginOptions struct {
	IO       *iostreams.IOStreams
	Factory  *cmdutil.Factory
	Settings func() *cmdutil.Settings
	Printer  func() (*cmdutil.Printer, error)

	// WithAPIKey reads the key from the first line of stdin.
	WithAPIKey bool
	// TeamID is the fallback team for servers without whoami.
	TeamID string
	// NoPrompt is set by the `setup` alias, which never prompts.
	NoPrompt bool
}

// Doc is the JSON document of a login; it never holds the key.
type Doc struct {
	Team        apitype.Team `json:"team"`
	Endpoint    string       `json:"endpoint"`
	Permissions []string     `json:"permissions"`
	ConfigPath  string       `json:"config_path"`
}

// NewCmdLogin builds `owlmetry auth login`.
func NewCmdLogin(f *cmdutil.Factory, runFunc func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{IO: f.IOStreams, Factory: f, Settings: f.Settings, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Check an agent API key against the server and store it as a profile",
		Long: `Store an agent API key (owl_agent_…) as a team profile in the config file after
checking it with the server. The key is read from --with-api-key (stdin),
--api-key, OWLMETRY_API_KEY, or a hidden prompt; the endpoint from --endpoint,
OWLMETRY_ENDPOINT, or a prompt. The profile becomes the active one.`,
		Example: `  # Interactive
  owlmetry auth login

  # In CI, without the key in the process list
  printf '%s\n' "$OWL_KEY" | owlmetry auth login --with-api-key --endpoint https://api.example.com --format json`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("team-id") {
				id, err := cmdutil.ParseUUID("--team-id", opts.TeamID)
				if err != nil {
					return err
				}
				opts.TeamID = id
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return LoginRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.WithAPIKey, "with-api-key", false, "read the API key from the first line of stdin")
	cmd.Flags().StringVar(&opts.TeamID, "team-id", "", "the key's team, for servers that cannot name it")
	return cmd
}

// NewCmdSetup builds the hidden `owlmetry setup` alias of the public CLI: login with the
// given flags, never prompting.
func NewCmdSetup(f *cmdutil.Factory) *cobra.Command {
	cmd := NewCmdLogin(f, func(ctx context.Context, o *LoginOptions) error {
		o.NoPrompt = true
		return LoginRun(ctx, o)
	})
	cmd.Use = "setup"
	cmd.Short = "Store an API key (compatibility alias of auth login)"
	cmd.Hidden = true
	return cmd
}

// LoginRun performs the login steps of cli.md §9.1.
func LoginRun(ctx context.Context, opts *LoginOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	f := opts.Factory
	canPrompt := !opts.NoPrompt && opts.IO.CanPrompt() && p.Format == cmdutil.FormatTable

	key, err := opts.key(canPrompt)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(key, "owl_agent_") {
		return cmdutil.FlagErrorf("only agent keys (owl_agent_…) can be used by the CLI")
	}
	endpoint, err := opts.endpoint(canPrompt)
	if err != nil {
		return err
	}
	if host, insecure := config.InsecureHost(endpoint); insecure {
		cmdutil.Warnf(opts.IO, "the API key is sent unencrypted to %s", host)
	}
	c := client.New(client.Options{Endpoint: endpoint, APIKey: key, HTTPClient: f.HTTPClient(), RequestTimeout: f.Flags.RequestTimeout, UserAgent: cmdutil.UserAgent()})

	who, err := c.AuthWhoAmI(ctx)
	var team apitype.Team
	fallback := false
	switch {
	case err == nil:
		if who.Type != "api_key" || who.Team == nil || who.Team.ID == "" {
			return errors.New("the server did not report the key's team")
		}
		team = *who.Team
	case client.IsNotFound(err):
		fallback = true
		if team.ID, err = opts.fallbackTeam(ctx, c); err != nil {
			return err
		}
	case client.IsUnauthorized(err):
		return cmdutil.Reword(err, "the server rejected the key")
	default:
		return err
	}
	if !fallback {
		var missing []string
		for _, want := range []string{"jobs:read", "jobs:write"} {
			if !contains(who.Permissions, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			cmdutil.Warnf(opts.IO, "the key lacks %s; the job commands will be refused", strings.Join(missing, " and "))
		}
	}

	path, err := opts.Settings().ConfigPath()
	if err != nil {
		return err
	}
	ingest := opts.ingest(endpoint)
	if _, err := config.Update(path.Value, func(file *config.File) error {
		prof, ok := file.Teams[team.ID]
		if !ok {
			prof = &config.Profile{}
			file.Teams[team.ID] = prof
		}
		prof.APIKey, prof.TeamName, prof.TeamSlug, prof.Endpoint = key, team.Name, team.Slug, endpoint
		file.Endpoint = endpoint
		if ingest != "" {
			file.IngestEndpoint = ingest
		} else if file.IngestEndpoint == "" {
			file.IngestEndpoint = deriveIngest(endpoint)
		}
		file.ActiveTeam = team.ID
		return nil
	}); err != nil {
		return err
	}
	perms := who.Permissions
	if perms == nil {
		perms = []string{}
	}
	doc := Doc{Team: team, Endpoint: endpoint, Permissions: perms, ConfigPath: path.Value}
	if err := p.Print(doc, rendered(doc, fallback)); err != nil {
		return err
	}
	cmdutil.Notef(opts.IO, p.Format, "Saved to %s", path.Value)
	return nil
}

func rendered(doc Doc, fallback bool) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			return fmt.Sprintf("team_id\t%s\nteam_slug\t%s\nendpoint\t%s\n", doc.Team.ID, doc.Team.Slug, doc.Endpoint)
		}
		if fallback {
			return fmt.Sprintf("%s Logged in to team %s at %s", rc.CS.Success("✓"), doc.Team.ID, doc.Endpoint)
		}
		return fmt.Sprintf("%s Logged in to %s (%s) at %s", rc.CS.Success("✓"), doc.Team.Name, doc.Team.Slug, doc.Endpoint)
	}
}

// key reads the key: --with-api-key, --api-key, OWLMETRY_API_KEY, then a hidden prompt.
func (o *LoginOptions) key(canPrompt bool) (string, error) {
	f := o.Factory
	switch {
	case o.WithAPIKey:
		line, err := bufio.NewReader(o.IO.In).ReadString('\n')
		line = strings.TrimSpace(line)
		if line == "" {
			if err != nil {
				return "", cmdutil.FlagErrorf("no API key on stdin")
			}
			return "", cmdutil.FlagErrorf("the first line of stdin is empty")
		}
		return line, nil
	case f.Flags.APIKey != "":
		return strings.TrimSpace(f.Flags.APIKey), nil
	case f.Getenv("OWLMETRY_API_KEY") != "":
		return strings.TrimSpace(f.Getenv("OWLMETRY_API_KEY")), nil
	case canPrompt:
		k, err := o.IO.PromptHidden("Agent API key (owl_agent_…): ")
		if err != nil {
			return "", fmt.Errorf("read the API key: %w", err)
		}
		return strings.TrimSpace(k), nil
	}
	return "", cmdutil.FlagErrorf("no API key: pipe it to --with-api-key")
}

// endpoint reads the endpoint: --endpoint, OWLMETRY_ENDPOINT, a prompt, the default.
func (o *LoginOptions) endpoint(canPrompt bool) (string, error) {
	f := o.Factory
	raw, from := config.DefaultEndpoint, "the endpoint"
	switch {
	case f.Flags.Endpoint != "":
		raw, from = f.Flags.Endpoint, "--endpoint"
	case f.Getenv("OWLMETRY_ENDPOINT") != "":
		raw, from = f.Getenv("OWLMETRY_ENDPOINT"), "OWLMETRY_ENDPOINT"
	case canPrompt:
		v, err := o.IO.Prompt(fmt.Sprintf("API endpoint [%s]: ", config.DefaultEndpoint))
		if err != nil {
			return "", fmt.Errorf("read the endpoint: %w", err)
		}
		if strings.TrimSpace(v) != "" {
			raw = v
		}
	}
	ep, err := config.ParseEndpoint(raw)
	if err != nil {
		return "", cmdutil.FlagErrorf("invalid %s %q: %s", from, raw, err)
	}
	return ep, nil
}

// ingest is --ingest-endpoint or OWLMETRY_INGEST_ENDPOINT; "" keeps the file's value or
// derives one.
func (o *LoginOptions) ingest(string) string {
	f := o.Factory
	if f.Flags.IngestEndpoint != "" {
		return f.Flags.IngestEndpoint
	}
	return f.Getenv("OWLMETRY_INGEST_ENDPOINT")
}

// deriveIngest maps the public API to its ingest host; any other endpoint ingests itself.
func deriveIngest(endpoint string) string {
	if endpoint == config.DefaultEndpoint {
		return "https://ingest.owlmetry.com"
	}
	return endpoint
}

// fallbackTeam is step 2's fallback for a server without whoami: the team comes from
// --team-id or OWLMETRY_TEAM_ID, and the key is checked by listing one run.
func (o *LoginOptions) fallbackTeam(ctx context.Context, c *client.Client) (string, error) {
	team := o.TeamID
	if team == "" {
		if v := o.Factory.Getenv("OWLMETRY_TEAM_ID"); v != "" {
			id, err := cmdutil.ParseUUID("OWLMETRY_TEAM_ID", v)
			if err != nil {
				return "", err
			}
			team = id
		}
	}
	if team == "" {
		return "", cmdutil.FlagErrorf("this server cannot name the key's team; pass --team-id")
	}
	_, err := c.JobRunList(ctx, client.JobRunListParams{TeamID: team, Limit: 1})
	switch {
	case err == nil:
		return team, nil
	case client.IsUnauthorized(err):
		return "", cmdutil.Reword(err, "the server rejected the key")
	case client.StatusOf(err) == 403:
		return "", cmdutil.Reword(err, "the key does not belong to team "+team+" or lacks jobs:read")
	}
	return "", err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
