package owltest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/owlmetry/owlmetry/internal/apikey"
)

// Team is a seeded team.
type Team struct {
	ID   string
	Name string
	Slug string
}

// SeedTeam inserts a team with a unique name and slug.
func (s *Stack) SeedTeam(t testing.TB) Team {
	t.Helper()
	slug := "team-" + randomHex(6)
	tm := Team{Name: "Team " + slug, Slug: slug}
	s.queryRow(t, `INSERT INTO teams (name, slug) VALUES ($1, $2) RETURNING id`, []any{tm.Name, tm.Slug}, &tm.ID)
	return tm
}

// DeleteTeam soft-deletes a team: its keys and memberships stop granting access.
func (s *Stack) DeleteTeam(t testing.TB, team Team) {
	t.Helper()
	s.exec(t, `UPDATE teams SET deleted_at = now() WHERE id = $1`, team.ID)
}

// User is a seeded user with a signed token.
type User struct {
	ID    string
	Email string
	// Token is an HS256 JWT for the user, signed with the stack's secret.
	Token string
}

// Team roles for SeedUser and AddMember.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// SeedUser inserts a user and, when team.ID is set, makes it a member of team with role.
func (s *Stack) SeedUser(t testing.TB, team Team, role string) User {
	t.Helper()
	u := User{Email: "user-" + randomHex(6) + "@example.com"}
	s.queryRow(t, `INSERT INTO users (email, name) VALUES ($1, 'Test User') RETURNING id`, []any{u.Email}, &u.ID)
	if team.ID != "" {
		s.AddMember(t, u, team, role)
	}
	u.Token = s.SignJWT(t, jwt.MapClaims{"sub": u.ID, "email": u.Email})
	return u
}

// AddMember gives user a role in team.
func (s *Stack) AddMember(t testing.TB, u User, team Team, role string) {
	t.Helper()
	s.exec(t, `INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3)`, team.ID, u.ID, role)
}

// SignJWT signs claims with the stack's JWT secret (HS256), for tokens with unusual
// claims: expired, not yet valid, without a subject.
func (s *Stack) SignJWT(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.JWTSecret)
	if err != nil {
		t.Fatalf("owltest: sign jwt: %v", err)
	}
	return tok
}

// Key is a seeded API key; Token is the plaintext, shown once like at real creation.
type Key struct {
	ID     string
	Token  string
	TeamID string
}

// KeyOption adjusts SeedKey.
type KeyOption func(*keySpec)

type keySpec struct {
	keyType   string
	expiresAt *time.Time
}

// KeyType makes a key of another type: client, agent (the default), import or server.
func KeyType(keyType string) KeyOption { return func(k *keySpec) { k.keyType = keyType } }

// ExpiresAt sets the key's expiry.
func ExpiresAt(at time.Time) KeyOption { return func(k *keySpec) { k.expiresAt = &at } }

// SeedKey inserts an API key of team holding permissions, stored hashed the way the API
// looks it up. The key's creator is a fresh user.
func (s *Stack) SeedKey(t testing.TB, team Team, permissions []string, opts ...KeyOption) Key {
	t.Helper()
	spec := keySpec{keyType: "agent"}
	for _, o := range opts {
		o(&spec)
	}
	prefix := map[string]string{"agent": apikey.PrefixAgent, "client": apikey.PrefixClient,
		"import": apikey.PrefixImport, "server": apikey.PrefixAgent}[spec.keyType]
	token := prefix + randomHex(24)
	if permissions == nil {
		permissions = []string{}
	}
	perms, err := json.Marshal(permissions)
	if err != nil {
		t.Fatalf("owltest: permissions: %v", err)
	}
	creator := s.SeedUser(t, Team{}, "")
	k := Key{Token: token, TeamID: team.ID}
	s.queryRow(t, `INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions, expires_at)
		VALUES ($1, $2, $3, $4, 'test key', $5, $6, $7) RETURNING id`,
		[]any{apikey.Hint(token), apikey.Hash(token), spec.keyType, team.ID, creator.ID, perms, spec.expiresAt}, &k.ID)
	return k
}

// DeleteKey soft-deletes a key.
func (s *Stack) DeleteKey(t testing.TB, k Key) {
	t.Helper()
	s.exec(t, `UPDATE api_keys SET deleted_at = now() WHERE id = $1`, k.ID)
}

// Project is a seeded project.
type Project struct {
	ID     string
	TeamID string
}

// ProjectOption adjusts SeedProject.
type ProjectOption func(*projectSpec)

type projectSpec struct {
	team         *Team
	appleApps    int
	integrations []string
	appUsers     int
}

// InTeam seeds the project in team instead of the stack's team.
func InTeam(team Team) ProjectOption { return func(p *projectSpec) { p.team = &team } }

// WithAppleApps adds n Apple apps, each with a bundle id and an App Store id, so both
// the ratings and the App Store Connect sync count them.
func WithAppleApps(n int) ProjectOption { return func(p *projectSpec) { p.appleApps += n } }

// WithIntegration adds an enabled integration of provider (revenuecat,
// apple-search-ads or app-store-connect).
func WithIntegration(provider string) ProjectOption {
	return func(p *projectSpec) { p.integrations = append(p.integrations, provider) }
}

// WithAppUsers adds n identified (non-anonymous) app users.
func WithAppUsers(n int) ProjectOption { return func(p *projectSpec) { p.appUsers += n } }

// SeedProject inserts a project, by default in the stack's team.
func (s *Stack) SeedProject(t testing.TB, opts ...ProjectOption) Project {
	t.Helper()
	spec := projectSpec{}
	for _, o := range opts {
		o(&spec)
	}
	team := s.Team
	if spec.team != nil {
		team = *spec.team
	}
	p := Project{TeamID: team.ID}
	s.queryRow(t, `INSERT INTO projects (team_id, name, slug, color) VALUES ($1, 'Project', $2, '#6366f1') RETURNING id`,
		[]any{team.ID, "project-" + randomHex(6)}, &p.ID)
	for i := 0; i < spec.appleApps; i++ {
		s.SeedApp(t, p, BundleID("com.example.app"+randomHex(4)), AppStoreID(1000000000+int64(i)))
	}
	for _, provider := range spec.integrations {
		s.SeedIntegration(t, p, provider, true)
	}
	for i := 0; i < spec.appUsers; i++ {
		s.SeedAppUser(t, p, "user-"+randomHex(6), false)
	}
	return p
}

// DeleteProject soft-deletes a project.
func (s *Stack) DeleteProject(t testing.TB, p Project) {
	t.Helper()
	s.exec(t, `UPDATE projects SET deleted_at = now() WHERE id = $1`, p.ID)
}

// App is a seeded app.
type App struct {
	ID        string
	ProjectID string
}

// AppOption adjusts SeedApp.
type AppOption func(*appSpec)

type appSpec struct {
	platform   string
	bundleID   *string
	appStoreID *int64
}

// Platform sets the app's platform: apple (the default), android, web or backend.
func Platform(platform string) AppOption { return func(a *appSpec) { a.platform = platform } }

// BundleID sets the app's bundle id (none by default).
func BundleID(id string) AppOption { return func(a *appSpec) { a.bundleID = &id } }

// AppStoreID sets the app's numeric App Store id (none by default).
func AppStoreID(id int64) AppOption { return func(a *appSpec) { a.appStoreID = &id } }

// SeedApp inserts an app of project.
func (s *Stack) SeedApp(t testing.TB, p Project, opts ...AppOption) App {
	t.Helper()
	spec := appSpec{platform: "apple"}
	for _, o := range opts {
		o(&spec)
	}
	a := App{ProjectID: p.ID}
	s.queryRow(t, `INSERT INTO apps (team_id, project_id, name, platform, bundle_id, apple_app_store_id)
		VALUES ($1, $2, 'App', $3, $4, $5) RETURNING id`,
		[]any{p.TeamID, p.ID, spec.platform, spec.bundleID, spec.appStoreID}, &a.ID)
	return a
}

// SeedIntegration inserts an integration of project with an empty public config and no
// credentials: enough for the sync routes, which only check that it is active.
func (s *Stack) SeedIntegration(t testing.TB, p Project, provider string, enabled bool) string {
	t.Helper()
	var id string
	s.queryRow(t, `INSERT INTO project_integrations (project_id, provider, config, enabled) VALUES ($1, $2, '{}', $3) RETURNING id`,
		[]any{p.ID, provider, enabled}, &id)
	return id
}

// SeedAppUser inserts one app user of project.
func (s *Stack) SeedAppUser(t testing.TB, p Project, userID string, anonymous bool) {
	t.Helper()
	s.exec(t, `INSERT INTO app_users (project_id, user_id, is_anonymous) VALUES ($1, $2, $3)`, p.ID, userID, anonymous)
}

func (s *Stack) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := s.DB.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("owltest: seed: %v", err)
	}
}

func (s *Stack) queryRow(t testing.TB, sql string, args []any, dest ...any) {
	t.Helper()
	if err := s.DB.Pool.QueryRow(context.Background(), sql, args...).Scan(dest...); err != nil {
		t.Fatalf("owltest: seed: %v", err)
	}
}
