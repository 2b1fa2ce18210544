// Package whoami implements `owlmetry whoami`.
package whoami

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/auth/shared"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// WhoAmIOptions holds what `owlmetry whoami` needs.
type WhoAmIOptions struct {
	IO        *iostreams.IOStreams
	APIClient func() (*client.Client, error)
	Settings  func() *cmdutil.Settings
	Printer   func() (*cmdutil.Printer, error)
}

// NewCmdWhoAmI builds `owlmetry whoami`.
func NewCmdWhoAmI(f *cmdutil.Factory, runFunc func(context.Context, *WhoAmIOptions) error) *cobra.Command {
	opts := &WhoAmIOptions{IO: f.IOStreams, APIClient: f.APIClient, Settings: f.Settings, Printer: f.Printer}
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show which team and permissions the API key has",
		Long: `Ask the server who the resolved API key belongs to: its team and permissions,
and where the key came from. The stored profiles are listed too.`,
		Example: `  # Which team am I acting for?
  owlmetry whoami

  # The key's team id, for a script
  owlmetry whoami --format json | jq -r .team.id`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return whoamiRun(cmd.Context(), opts)
		},
	}
}

// keySource names where the key came from: `profile acme`, `OWLMETRY_API_KEY` or
// `--api-key`.
func keySource(v config.Value) string { return v.From }

func whoamiRun(ctx context.Context, opts *WhoAmIOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	s := opts.Settings()
	key, err := s.APIKey()
	if err != nil {
		return err
	}
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	var profiles []shared.ProfileDoc
	if l, err := s.File(); err == nil {
		profiles = shared.Profiles(l.File)
	}
	if profiles == nil {
		profiles = []shared.ProfileDoc{}
	}
	src := keySource(key)
	who, err := c.AuthWhoAmI(ctx)
	if client.IsNotFound(err) {
		team, terr := s.Resolver().TeamID("")
		if terr != nil {
			return cmdutil.ConfigError(terr)
		}
		doc := map[string]any{"type": nil, "team_id": nilIfEmpty(team.Value), "configured_profiles": profiles, "endpoint": c.Endpoint(), "key_source": src}
		if err := p.Print(doc, unknown(c.Endpoint(), src, team.Value, profiles)); err != nil {
			return err
		}
		cmdutil.Notef(opts.IO, p.Format, "this server does not report identities")
		return nil
	}
	if err != nil {
		return err
	}
	doc, err := extend(who.Raw, map[string]any{"configured_profiles": profiles, "endpoint": c.Endpoint(), "key_source": src})
	if err != nil {
		return err
	}
	return p.Print(doc, render(who, c.Endpoint(), src, profiles))
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// extend adds keys to the server's answer, keeping its own fields unchanged.
func extend(raw json.RawMessage, add map[string]any) (json.RawMessage, error) {
	doc := map[string]json.RawMessage{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("decode whoami answer: %w", err)
		}
	}
	for k, v := range add {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		doc[k] = b
	}
	return json.Marshal(doc)
}

func render(who apitype.WhoAmI, endpoint, src string, profiles []shared.ProfileDoc) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		teamID, teamSlug := "", ""
		if who.Team != nil {
			teamID, teamSlug = who.Team.ID, who.Team.Slug
		}
		if !rc.TTY {
			return fmt.Sprintf("type\t%s\nteam_id\t%s\nteam_slug\t%s\nendpoint\t%s\nkey_source\t%s\npermissions\t%s\n",
				who.Type, teamID, teamSlug, endpoint, src, strings.Join(who.Permissions, ","))
		}
		var b strings.Builder
		label := func(l, v string) { fmt.Fprintf(&b, "%s%s%s\n", rc.CS.Bold(l), strings.Repeat(" ", 13-len(l)), v) }
		switch {
		case who.Type == "user":
			fmt.Fprintf(&b, "%s at %s\n", rc.CS.Bold(who.Email), endpoint)
			var teams []string
			for _, t := range who.Teams {
				teams = append(teams, fmt.Sprintf("%s (%s)", t.Name, t.Role))
			}
			label("Key", "user token from "+src)
			label("Teams", strings.Join(teams, ", "))
		default:
			name := "an unknown team"
			if who.Team != nil {
				name = fmt.Sprintf("%s (%s)", who.Team.Name, who.Team.Slug)
			}
			fmt.Fprintf(&b, "%s at %s\n", rc.CS.Bold(name), endpoint)
			kind := who.KeyType
			if kind == "" {
				kind = "API"
			}
			label("Key", kind+" key from "+src)
			perms := strings.Join(who.Permissions, ", ")
			if perms == "" {
				perms = "-"
			}
			label("Permissions", perms)
		}
		if len(profiles) > 0 {
			b.WriteString("\n" + rc.CS.Bold("Profiles") + "\n")
			b.WriteString(shared.ProfileLines(profiles, rc))
		}
		return b.String()
	}
}

func unknown(endpoint, src, teamID string, profiles []shared.ProfileDoc) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			return fmt.Sprintf("type\t\nteam_id\t%s\nteam_slug\t\nendpoint\t%s\nkey_source\t%s\npermissions\t\n", teamID, endpoint, src)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s\n", endpoint)
		fmt.Fprintf(&b, "%s  %s\n", rc.CS.Bold("Key        "), "key from "+src)
		if teamID != "" {
			fmt.Fprintf(&b, "%s  %s\n", rc.CS.Bold("Team       "), teamID)
		}
		if len(profiles) > 0 {
			b.WriteString("\n" + rc.CS.Bold("Profiles") + "\n")
			b.WriteString(shared.ProfileLines(profiles, rc))
		}
		return b.String()
	}
}
