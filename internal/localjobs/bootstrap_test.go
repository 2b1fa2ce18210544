package localjobs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/localjobs"
)

func TestSlugify(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Acme Inc.":          "acme-inc",
		"  Owlmetry   Dev  ": "owlmetry-dev",
		"Ünïcode & Co":       "n-code-co",
		"already-a-slug":     "already-a-slug",
		"!!!":                "",
	} {
		require.Equal(t, want, localjobs.Slugify(in), in)
	}
	require.NoError(t, localjobs.CheckSlug("acme-2"))
	for _, bad := range []string{"", "Acme", "a--b", "-a", "a b", strings.Repeat("a", 256)} {
		require.Error(t, localjobs.CheckSlug(bad), bad)
	}
}

func TestCreateTeamsUsersProjects(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	team, err := b.store.CreateTeam(ctx, "Acme", "acme")
	require.NoError(t, err)
	require.Equal(t, "acme", team.Slug)
	_, err = b.store.CreateTeam(ctx, "Acme again", "acme")
	var dup *localjobs.DuplicateError
	require.ErrorAs(t, err, &dup)
	require.EqualError(t, err, `team slug "acme" is already taken`)

	byID, err := b.store.ResolveTeam(ctx, strings.ToUpper(team.ID))
	require.NoError(t, err)
	require.Equal(t, team.ID, byID.ID)
	_, err = b.store.ResolveTeam(ctx, "nope")
	require.True(t, localjobs.IsNotFound(err))

	u, err := b.store.CreateUser(ctx, localjobs.NewUser{Email: "ada@example.com", Team: "acme", Role: "admin"})
	require.NoError(t, err)
	require.Equal(t, "ada", u.Name, "the name defaults to the part before @")
	require.Equal(t, "admin", u.Membership.Role)
	require.Equal(t, team.ID, u.Membership.TeamID)

	_, err = b.store.CreateUser(ctx, localjobs.NewUser{Email: "ADA@example.com"})
	require.ErrorAs(t, err, &dup, "e-mails are unique whatever their case")
	_, err = b.store.CreateUser(ctx, localjobs.NewUser{Email: "bob@example.com", Team: "ghost"})
	require.True(t, localjobs.IsNotFound(err))
	var n int
	require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = 'bob@example.com'`).Scan(&n))
	require.Zero(t, n, "a failed membership leaves no user behind")
	_, err = b.store.CreateUser(ctx, localjobs.NewUser{Email: "not-an-email"})
	var inv *localjobs.InvalidError
	require.ErrorAs(t, err, &inv)

	p, err := b.store.CreateProject(ctx, localjobs.NewProject{Team: "acme", Name: "Main App", Slug: "main-app"})
	require.NoError(t, err)
	require.Equal(t, localjobs.DefaultProjectColor, p.Color)
	_, err = b.store.CreateProject(ctx, localjobs.NewProject{Team: team.ID, Name: "Other", Slug: "main-app"})
	require.ErrorAs(t, err, &dup)
	other, err := b.store.CreateTeam(ctx, "Other", "other")
	require.NoError(t, err)
	_, err = b.store.CreateProject(ctx, localjobs.NewProject{Team: other.Slug, Name: "Main App", Slug: "main-app", Color: "#A0B1C2"})
	require.NoError(t, err, "slugs are unique per team")
	_, err = b.store.CreateProject(ctx, localjobs.NewProject{Team: other.Slug, Name: "X", Slug: "x", Color: "red"})
	require.ErrorAs(t, err, &inv)
}

var secretRE = regexp.MustCompile(`^owl_agent_[0-9a-f]{48}$`)

func TestAgentKeys(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	team, err := b.store.CreateTeam(ctx, "Acme", "acme")
	require.NoError(t, err)
	owner, err := b.store.CreateUser(ctx, localjobs.NewUser{Email: "ada@example.com", Team: "acme", Role: "owner"})
	require.NoError(t, err)
	outsider, err := b.store.CreateUser(ctx, localjobs.NewUser{Email: "eve@example.com"})
	require.NoError(t, err)

	key, secret, err := b.store.CreateKey(ctx, localjobs.NewKey{Team: "acme", CreatedBy: "ADA@example.com"})
	require.NoError(t, err)
	require.Regexp(t, secretRE, secret)
	require.Equal(t, "agent", key.KeyType)
	require.Equal(t, "owlmetry CLI key", key.Name)
	require.Equal(t, owner.ID, key.CreatedBy)
	require.Equal(t, localjobs.AgentPermissions, key.Permissions)
	require.Equal(t, secret[:len("owl_agent_")+4]+"…", key.SecretHint)
	require.Nil(t, key.ExpiresAt)

	var storedSecret, storedHash string
	require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT secret, secret_hash FROM api_keys WHERE id = $1`, key.ID).Scan(&storedSecret, &storedHash))
	sum := sha256.Sum256([]byte(secret))
	require.Equal(t, hex.EncodeToString(sum[:]), storedHash)
	require.Equal(t, key.SecretHint, storedSecret, "only the hint is stored")

	key2, secret2, err := b.store.CreateKey(ctx, localjobs.NewKey{Team: team.ID, CreatedBy: owner.ID, Name: "ci",
		Permissions: []string{"jobs:read", "jobs:read"}, ExpiresIn: 30 * 24 * time.Hour})
	require.NoError(t, err)
	require.NotEqual(t, secret, secret2)
	require.Equal(t, []string{"jobs:read"}, key2.Permissions)
	require.WithinDuration(t, time.Now().Add(30*24*time.Hour), key2.ExpiresAt.Time, time.Minute)

	_, _, err = b.store.CreateKey(ctx, localjobs.NewKey{Team: "acme", CreatedBy: outsider.ID})
	var nm *localjobs.NotMemberError
	require.ErrorAs(t, err, &nm)
	_, _, err = b.store.CreateKey(ctx, localjobs.NewKey{Team: "acme", CreatedBy: "nobody@example.com"})
	require.True(t, localjobs.IsNotFound(err))
	_, err = localjobs.CheckPermissions([]string{"jobs:read", "events:delete"})
	require.EqualError(t, err, `unknown permission "events:delete"; valid permissions: jobs:read, jobs:write, integrations:read, integrations:write`)

	// A row another tool wrote with the plaintext in the secret column is still shown
	// as a hint only.
	legacy := "owl_agent_" + strings.Repeat("ab", 24)
	_, err = b.tdb.Pool.Exec(ctx, `INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions)
		VALUES ($1, $2, 'agent', $3, 'legacy', $4, '["jobs:read"]')`, legacy, strings.Repeat("0", 64), team.ID, owner.ID)
	require.NoError(t, err)

	keys, err := b.store.ListKeys(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, keys, 3)
	out, err := json.Marshal(keys)
	require.NoError(t, err)
	for _, s := range []string{secret, secret2, storedHash, legacy, "secret_hash"} {
		require.NotContains(t, string(out), s)
	}
	require.Contains(t, string(out), `"secret_hint":"owl_agent_abab…"`)
}
