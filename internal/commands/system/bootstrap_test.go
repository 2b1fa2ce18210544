package system_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apikey"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
)

var secretRE = regexp.MustCompile(`owl_agent_[0-9a-f]{48}`)

func TestBootstrapIdentities(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// A team, with the slug derived from the name.
	res := run(t, b.env, "system", "teams", "create", "--name", "Acme Inc.", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var team struct{ ID, Name, Slug string }
	decode(t, res, &team)
	require.Equal(t, "acme-inc", team.Slug)

	res = run(t, b.env, "system", "teams", "create", "--name", "Acme again", "--slug", "acme-inc")
	require.Equal(t, cmdutil.ExitConflict, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	require.Equal(t, "error: team slug \"acme-inc\" is already taken\n", res.Stderr.String())

	// The owner, by slug.
	res = run(t, b.env, "system", "users", "create", "--email", "ada@example.com", "--team", "acme-inc", "--role", "admin")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Contains(t, res.Stdout.String(), "role\tadmin\n")
	require.Contains(t, res.Stdout.String(), "team_id\t"+team.ID+"\n")
	require.Equal(t, "admin", b.scalar(t, `SELECT role::text FROM team_members m JOIN users u ON u.id = m.user_id WHERE u.email = 'ada@example.com'`))

	res = run(t, b.env, "system", "users", "create", "--email", "Ada@Example.com")
	require.Equal(t, cmdutil.ExitConflict, res.ExitCode)
	require.Contains(t, res.Stderr.String(), `email "Ada@Example.com" is already taken`)

	res = run(t, b.env, "system", "users", "create", "--email", "bob@example.com", "--team", "nope")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), `error: no team "nope"`)

	// A project in the team, by id.
	res = run(t, b.env, "system", "projects", "create", "--team", team.ID, "--name", "Acme iOS", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var project struct{ ID, Slug, Color, TeamID string }
	decode(t, res, &project)
	require.Equal(t, "acme-ios", project.Slug)
	require.Equal(t, "#6366f1", project.Color)
	res = run(t, b.env, "system", "projects", "create", "--team", "acme-inc", "--name", "Other", "--slug", "acme-ios")
	require.Equal(t, cmdutil.ExitConflict, res.ExitCode)
	require.Equal(t, "error: project slug \"acme-ios\" is already taken in team acme-inc\n", res.Stderr.String())

	// A key: piped, the secret is the only thing on stdout.
	res = run(t, b.env, "system", "keys", "create", "--team", "acme-inc", "--created-by", "ada@example.com")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	secret := strings.TrimSuffix(res.Stdout.String(), "\n")
	require.Regexp(t, "^"+secretRE.String()+"$", secret)
	require.Len(t, secretRE.FindAllString(res.Stdout.String()+res.Stderr.String(), -1), 1, "the secret is printed once")
	require.Equal(t, apikey.Hash(secret), b.scalar(t, `SELECT secret_hash FROM api_keys`))
	require.Equal(t, apikey.Hint(secret), b.scalar(t, `SELECT secret FROM api_keys`))

	// On a terminal, in one sentence followed by the key object.
	res = runWith(t, b.env, runOpts{tty: true}, "system", "keys", "create", "--team", "acme-inc", "--created-by", "ada@example.com", "--name", "ci")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	ttySecrets := secretRE.FindAllString(res.Stdout.String()+res.Stderr.String(), -1)
	require.Len(t, ttySecrets, 1)
	require.Contains(t, res.Stdout.String(), "Key "+ttySecrets[0]+" created (shown once)")

	// In JSON, as "secret", with the key object.
	res = run(t, b.env, "system", "keys", "create", "--team", "acme-inc", "--created-by", "ada@example.com",
		"--permissions", "jobs:read,jobs:write", "--expires-in", "30d", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var key struct {
		ID          string   `json:"id"`
		Secret      string   `json:"secret"`
		SecretHint  string   `json:"secret_hint"`
		Permissions []string `json:"permissions"`
		KeyType     string   `json:"key_type"`
		ExpiresAt   *string  `json:"expires_at"`
	}
	decode(t, res, &key)
	require.Regexp(t, "^"+secretRE.String()+"$", key.Secret)
	require.Equal(t, []string{"jobs:read", "jobs:write"}, key.Permissions)
	require.Equal(t, "agent", key.KeyType)
	require.NotNil(t, key.ExpiresAt)
	require.Len(t, secretRE.FindAllString(res.Stdout.String(), -1), 1)

	// The list never shows a secret or a hash, in any format.
	hashes := strings.Fields(b.scalar(t, `SELECT string_agg(secret_hash, ' ') FROM api_keys`))
	require.Len(t, hashes, 3)
	for _, args := range [][]string{
		{"system", "keys", "list", "--team", "acme-inc"},
		{"system", "keys", "list", "--team", team.ID, "--format", "json"},
	} {
		res = run(t, b.env, args...)
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		out := res.Stdout.String() + res.Stderr.String()
		require.Empty(t, secretRE.FindAllString(out, -1))
		for _, h := range hashes {
			require.NotContains(t, out, h)
		}
		require.Contains(t, out, apikey.Hint(secret))
	}
	res = runWith(t, b.env, runOpts{tty: true}, "system", "keys", "list", "--team", "acme-inc")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stdout.String(), "PERMISSIONS")
	require.Equal(t, 4, strings.Count(res.Stdout.String(), "\n"), "a header and three keys")
}

func TestBootstrapRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, cmdutil.ExitOK, run(t, b.env, "system", "teams", "create", "--name", "Acme", "--slug", "acme").ExitCode)
	require.Equal(t, cmdutil.ExitOK, run(t, b.env, "system", "users", "create", "--email", "ada@example.com", "--team", "acme").ExitCode)
	require.Equal(t, cmdutil.ExitOK, run(t, b.env, "system", "users", "create", "--email", "eve@example.com").ExitCode)

	tests := []struct {
		name string
		args []string
		code cmdutil.ExitCode
		err  string
	}{
		{"unknown permission", []string{"keys", "create", "--team", "acme", "--created-by", "ada@example.com", "--permissions", "jobs:read,events:delete"},
			cmdutil.ExitUsage, `unknown permission "events:delete"; valid permissions: jobs:read, jobs:write, integrations:read, integrations:write`},
		{"creator outside the team", []string{"keys", "create", "--team", "acme", "--created-by", "eve@example.com"},
			cmdutil.ExitUsage, "user eve@example.com is not a member of team acme"},
		{"unknown creator", []string{"keys", "create", "--team", "acme", "--created-by", "nobody@example.com"},
			cmdutil.ExitUsage, `no user "nobody@example.com"`},
		{"unknown team", []string{"keys", "list", "--team", "ghost"}, cmdutil.ExitUsage, `no team "ghost"`},
		{"team required", []string{"keys", "list"}, cmdutil.ExitUsage, "--team is required"},
		{"role needs a team", []string{"users", "create", "--email", "x@example.com", "--role", "admin"}, cmdutil.ExitUsage, "--role requires --team"},
		{"bad role", []string{"users", "create", "--email", "x@example.com", "--team", "acme", "--role", "boss"}, cmdutil.ExitUsage, `invalid --role "boss"`},
		{"bad colour", []string{"projects", "create", "--team", "acme", "--name", "X", "--color", "red"}, cmdutil.ExitUsage, `invalid color "red"`},
		{"bad slug", []string{"teams", "create", "--name", "X", "--slug", "Not A Slug"}, cmdutil.ExitUsage, `invalid slug "Not A Slug"`},
		{"no slug from the name", []string{"teams", "create", "--name", "!!!"}, cmdutil.ExitUsage, `cannot derive a slug from "!!!"`},
		{"bad expiry", []string{"keys", "create", "--team", "acme", "--created-by", "ada@example.com", "--expires-in", "soon"}, cmdutil.ExitUsage, `invalid --expires-in "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, b.env, append([]string{"system"}, tt.args...)...)
			require.Equal(t, tt.code, res.ExitCode)
			require.Empty(t, res.Stdout.String())
			require.Contains(t, res.Stderr.String(), tt.err)
		})
	}
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM api_keys`), "no refused command wrote a key")
}
