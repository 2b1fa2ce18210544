package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/owltest"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)
	const whoami = "/v1/auth/whoami"
	admin := stack.SeedUser(t, stack.Team, owltest.RoleAdmin)

	t.Run("header format", func(t *testing.T) {
		t.Parallel()
		requireError(t, get(t, stack, whoami, ""), http.StatusUnauthorized, "Missing authorization")
		for _, h := range []string{
			"", "Bearer", "Bearer ", "Basic abc", "Bearer  " + stack.Key.Token, "Bearer a b", stack.Key.Token,
			"Token " + stack.Key.Token,
		} {
			r := call(t, stack, req{method: http.MethodGet, path: whoami, header: map[string]string{"Authorization": h}})
			requireError(t, r, http.StatusUnauthorized, "Invalid authorization format")
		}
		// The scheme is case-insensitive (api.md §8 item 15).
		for _, scheme := range []string{"bearer", "BEARER", "BeArEr"} {
			r := call(t, stack, req{method: http.MethodGet, path: whoami,
				header: map[string]string{"Authorization": scheme + " " + stack.Key.Token}})
			require.Equal(t, http.StatusOK, r.Status, scheme)
		}
	})

	t.Run("api keys", func(t *testing.T) {
		t.Parallel()
		valid := stack.Key.Token
		for _, tok := range []string{
			"owl_agent_", "owl_agent_" + strings.Repeat("a", 47), "owl_agent_" + strings.Repeat("a", 49),
			"owl_agent_" + strings.ToUpper(valid[len("owl_agent_"):]), "owl_agent_" + strings.Repeat("g", 48),
			"owl_client_" + strings.Repeat("0", 48), // well-formed, unknown
			"owl_agent_" + strings.Repeat("0", 48), "owl_import_" + strings.Repeat("f", 48),
		} {
			requireError(t, get(t, stack, whoami, tok), http.StatusUnauthorized, "Invalid API key")
		}

		team := stack.SeedTeam(t)
		expired := stack.SeedKey(t, team, []string{"jobs:read"}, owltest.ExpiresAt(time.Now().Add(-time.Minute)))
		requireError(t, get(t, stack, whoami, expired.Token), http.StatusUnauthorized, "API key expired")
		future := stack.SeedKey(t, team, []string{"jobs:read"}, owltest.ExpiresAt(time.Now().Add(time.Hour)))
		require.Equal(t, http.StatusOK, get(t, stack, whoami, future.Token).Status)

		deleted := stack.SeedKey(t, team, []string{"jobs:read"})
		require.Equal(t, http.StatusOK, get(t, stack, whoami, deleted.Token).Status)
		stack.DeleteKey(t, deleted)
		requireError(t, get(t, stack, whoami, deleted.Token), http.StatusUnauthorized, "Invalid API key")

		gone := stack.SeedTeam(t)
		orphan := stack.SeedKey(t, gone, []string{"jobs:read"})
		stack.DeleteTeam(t, gone)
		requireError(t, get(t, stack, whoami, orphan.Token), http.StatusUnauthorized, "Invalid API key")
	})

	t.Run("user tokens", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, http.StatusOK, get(t, stack, whoami, admin.Token).Status)

		now := time.Now()
		other := []byte("another-secret")
		forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": admin.ID}).SignedString(other)
		require.NoError(t, err)
		hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": admin.ID}).SignedString(stack.JWTSecret)
		require.NoError(t, err)
		none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": admin.ID}).SignedString(jwt.UnsafeAllowNoneSignatureType)
		require.NoError(t, err)
		for name, tok := range map[string]string{
			"wrong key":       forged,
			"HS512":           hs512,
			"alg none":        none,
			"expired":         stack.SignJWT(t, jwt.MapClaims{"sub": admin.ID, "exp": now.Add(-time.Minute).Unix()}),
			"not yet valid":   stack.SignJWT(t, jwt.MapClaims{"sub": admin.ID, "nbf": now.Add(time.Hour).Unix()}),
			"no subject":      stack.SignJWT(t, jwt.MapClaims{"email": admin.Email}),
			"subject no uuid": stack.SignJWT(t, jwt.MapClaims{"sub": "admin"}),
			"unknown user":    stack.SignJWT(t, jwt.MapClaims{"sub": uuid.NewString()}),
			"garbage":         "not.a.jwt",
			"subject number":  stack.SignJWT(t, jwt.MapClaims{"sub": 42}),
		} {
			requireError(t, get(t, stack, whoami, tok), http.StatusUnauthorized, "Invalid or expired token")
			_ = name
		}
		// exp and nbf in range are fine; tokens without exp are accepted (public server's tokens).
		ok := stack.SignJWT(t, jwt.MapClaims{"sub": strings.ToUpper(admin.ID), "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix()})
		require.Equal(t, http.StatusOK, get(t, stack, whoami, ok).Status)
	})

	t.Run("last_used_at is written in the background", func(t *testing.T) {
		t.Parallel()
		k := stack.SeedKey(t, stack.SeedTeam(t), []string{"jobs:read"})
		require.Equal(t, http.StatusOK, get(t, stack, whoami, k.Token).Status)
		deadline := time.Now().Add(20 * time.Second)
		for {
			var used *time.Time
			require.NoError(t, stack.DB.Pool.QueryRow(context.Background(),
				`SELECT last_used_at FROM api_keys WHERE id = $1`, k.ID).Scan(&used))
			if used != nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "last_used_at never set")
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	})
}

func TestWhoAmI(t *testing.T) {
	t.Parallel()
	stack := owltest.StartStack(t)

	r := get(t, stack, "/v1/auth/whoami", stack.Key.Token)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, map[string]any{
		"type": "api_key", "key_type": "agent",
		"team":        map[string]any{"id": stack.Team.ID, "name": stack.Team.Name, "slug": stack.Team.Slug},
		"permissions": []any{"jobs:read", "jobs:write", "integrations:read", "integrations:write"},
	}, r.JSON(t))

	client := stack.SeedKey(t, stack.Team, nil, owltest.KeyType("client"))
	r = get(t, stack, "/v1/auth/whoami", client.Token)
	require.Equal(t, http.StatusOK, r.Status, "any valid key may ask who it is")
	require.Equal(t, "client", r.JSON(t)["key_type"])
	require.Equal(t, []any{}, r.JSON(t)["permissions"])

	// Teams are ordered by name; deleted teams are left out; every role shows.
	u := stack.SeedUser(t, owltest.Team{}, "")
	teams := map[string]owltest.Team{}
	for _, name := range []string{"b", "a", "c", "gone"} {
		tm := stack.SeedTeam(t)
		_, err := stack.DB.Pool.Exec(context.Background(), `UPDATE teams SET name = $2 WHERE id = $1`, tm.ID, name)
		require.NoError(t, err)
		tm.Name = name
		teams[name] = tm
	}
	stack.AddMember(t, u, teams["b"], owltest.RoleOwner)
	stack.AddMember(t, u, teams["a"], owltest.RoleMember)
	stack.AddMember(t, u, teams["c"], owltest.RoleAdmin)
	stack.AddMember(t, u, teams["gone"], owltest.RoleAdmin)
	stack.DeleteTeam(t, teams["gone"])
	r = get(t, stack, "/v1/auth/whoami", u.Token)
	require.Equal(t, http.StatusOK, r.Status)
	entry := func(name, role string) map[string]any {
		tm := teams[name]
		return map[string]any{"id": tm.ID, "name": tm.Name, "slug": tm.Slug, "role": role}
	}
	require.Equal(t, map[string]any{"type": "user", "email": u.Email, "teams": []any{
		entry("a", "member"), entry("b", "owner"), entry("c", "admin"),
	}}, r.JSON(t))

	lonely := stack.SeedUser(t, owltest.Team{}, "")
	require.Equal(t, []any{}, get(t, stack, "/v1/auth/whoami", lonely.Token).JSON(t)["teams"])
}
