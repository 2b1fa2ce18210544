// Package shared holds what the auth commands, whoami and the compatibility aliases
// have in common: the rendering of stored profiles.
package shared

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// ProfileDoc is one profile in JSON documents.
type ProfileDoc struct {
	TeamID   string `json:"team_id"`
	TeamName string `json:"team_name"`
	TeamSlug string `json:"team_slug"`
	Active   bool   `json:"active"`
	Endpoint string `json:"endpoint,omitempty"`
}

// Profiles lists the file's profiles sorted by team name.
func Profiles(f *config.File) []ProfileDoc {
	out := []ProfileDoc{}
	for _, k := range f.ProfileKeys() {
		p := f.Teams[k]
		ep := p.Endpoint
		if ep == "" {
			ep = f.Endpoint
		}
		out = append(out, ProfileDoc{TeamID: k, TeamName: p.TeamName, TeamSlug: p.TeamSlug, Active: k == f.ActiveTeam, Endpoint: ep})
	}
	return out
}

// Name is `Acme (acme)`, or the team id when the profile has no name.
func Name(d ProfileDoc) string {
	switch {
	case d.TeamName != "" && d.TeamSlug != "":
		return fmt.Sprintf("%s (%s)", d.TeamName, d.TeamSlug)
	case d.TeamName != "":
		return d.TeamName
	case d.TeamSlug != "":
		return d.TeamSlug
	}
	return d.TeamID
}

// RenderProfiles lists profiles: `●` for the active one, name, short team id and
// endpoint on a terminal; team_id, team_slug, team_name, active, endpoint piped.
func RenderProfiles(docs []ProfileDoc) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			t := tui.Table{Columns: make([]tui.Column, 5)}
			for _, d := range docs {
				t.AddRow(d.TeamID, d.TeamSlug, d.TeamName, strconv.FormatBool(d.Active), d.Endpoint)
			}
			return t.Render(false, 0, rc.CS)
		}
		return ProfileLines(docs, rc)
	}
}

// ProfileLines are the aligned profile lines of a terminal.
func ProfileLines(docs []ProfileDoc, rc cmdutil.RenderContext) string {
	w := 0
	for _, d := range docs {
		w = max(w, len(Name(d)))
	}
	var b strings.Builder
	for _, d := range docs {
		mark := " "
		if d.Active {
			mark = rc.CS.Success("●")
		}
		fmt.Fprintf(&b, "%s %s%s  %s  %s\n", mark, Name(d), strings.Repeat(" ", w-len(Name(d))), tui.ShortID(d.TeamID), d.Endpoint)
	}
	return b.String()
}
