package shared

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// SlugFlag returns --slug when given (checked), else the slug derived from name.
func SlugFlag(fs *pflag.FlagSet, slug, name string) (string, error) {
	if fs.Changed("slug") {
		if err := localjobs.CheckSlug(slug); err != nil {
			return "", cmdutil.FlagErrorWrap(err)
		}
		return slug, nil
	}
	s := localjobs.Slugify(name)
	if s == "" {
		return "", cmdutil.FlagErrorf("cannot derive a slug from %q: pass --slug", name)
	}
	return s, nil
}

// TeamFlag is --team on the bootstrap commands: a team id or slug in the database. It
// takes the place of the global --team, which selects a profile for API commands.
func TeamFlag(fs *pflag.FlagSet, dst *string, usage string) {
	fs.StringVar(dst, "team", "", usage)
}

// TeamDetail renders a created team.
func TeamDetail(t localjobs.Team) cmdutil.Renderer {
	return Fields(fmt.Sprintf("Team %s (%s)", t.Name, t.Slug), func(rc cmdutil.RenderContext) []Field {
		return []Field{
			{"ID", "id", t.ID}, {"Name", "name", t.Name}, {"Slug", "slug", t.Slug},
			{"Created", "created_at", Time(&t.CreatedAt, rc)},
		}
	})
}

// UserDetail renders a created user and its membership.
func UserDetail(u localjobs.User) cmdutil.Renderer {
	return Fields("User "+u.Email, func(rc cmdutil.RenderContext) []Field {
		var team, role string
		if m := u.Membership; m != nil {
			team, role = m.TeamID, m.Role
			if rc.TTY {
				team = m.TeamSlug + " (" + m.TeamID + ")"
			}
		}
		return []Field{
			{"ID", "id", u.ID}, {"Email", "email", u.Email}, {"Name", "name", u.Name},
			{"Created", "created_at", Time(&u.CreatedAt, rc)}, {"Team", "team_id", team}, {"Role", "role", role},
		}
	})
}

// ProjectDetail renders a created project.
func ProjectDetail(p localjobs.Project) cmdutil.Renderer {
	return Fields(fmt.Sprintf("Project %s (%s)", p.Name, p.Slug), func(rc cmdutil.RenderContext) []Field {
		return []Field{
			{"ID", "id", p.ID}, {"Team", "team_id", p.TeamID}, {"Name", "name", p.Name}, {"Slug", "slug", p.Slug},
			{"Color", "color", p.Color}, {"Created", "created_at", Time(&p.CreatedAt, rc)},
		}
	})
}

// keyFields are the fields of the key object, in the order of cli.md §10.9.
func keyFields(k localjobs.Key, rc cmdutil.RenderContext) []Field {
	return []Field{
		{"ID", "id", k.ID}, {"Name", "name", k.Name}, {"Team", "team_id", k.TeamID}, {"Type", "key_type", k.KeyType},
		{"Permissions", "permissions", strings.Join(k.Permissions, ",")}, {"Created by", "created_by", k.CreatedBy},
		{"Created", "created_at", Time(&k.CreatedAt, rc)}, {"Last used", "last_used_at", Time(k.LastUsedAt, rc)},
		{"Expires", "expires_at", Time(k.ExpiresAt, rc)}, {"Hint", "secret_hint", k.SecretHint},
	}
}

// KeyCreated renders a new key: on a terminal the secret in one sentence, then the key
// object; piped, the secret alone, so `… | tee key` stores exactly the key. The secret
// appears once either way.
func KeyCreated(k localjobs.Key, secret string) cmdutil.Renderer {
	details := Fields("", func(rc cmdutil.RenderContext) []Field { return keyFields(k, rc) })
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			return secret + "\n"
		}
		return fmt.Sprintf("Key %s created (%s)\n", rc.CS.Bold(secret), rc.CS.Warning("shown once")) + details(rc)
	}
}

// KeyList renders `system keys list`: the key object's fields in order, one key per
// line (tab-separated when piped), never a secret.
func KeyList(keys []localjobs.Key) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		var rows [][]string
		var headers []string
		for i, k := range keys {
			fs := keyFields(k, rc)
			row := make([]string, len(fs))
			for j, f := range fs {
				row[j] = f.Value
				if i == 0 {
					headers = append(headers, f.Label)
				}
			}
			if rc.TTY {
				row[0], row[2] = ShortID(row[0]), ShortID(row[2])
				row[5] = ShortID(row[5])
			}
			rows = append(rows, row)
		}
		return Table(headers, rows, rc)
	}
}
