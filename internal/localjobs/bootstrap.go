package localjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/apikey"
	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// NotFoundError is a team, user or membership named on the command line that the
// database does not have.
type NotFoundError struct {
	// Kind is what was looked up: "team", "user".
	Kind string
	// Ref is the id, slug or e-mail given.
	Ref string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("no %s %q", e.Kind, e.Ref) }

// DuplicateError is a unique value that is already taken: a team slug, an e-mail, a
// project slug inside a team. The CLI exits 5 for it, like any conflict.
type DuplicateError struct {
	// What names the value ("team slug", "email").
	What  string
	Value string
	// Within names where the value must be unique ("team acme"), if not everywhere.
	Within string
}

func (e *DuplicateError) Error() string {
	msg := fmt.Sprintf("%s %q is already taken", e.What, e.Value)
	if e.Within != "" {
		msg += " in " + e.Within
	}
	return msg
}

// InvalidError is bootstrap input that breaks a rule of the schema; the CLI reports it as
// a usage error.
type InvalidError struct{ Message string }

func (e *InvalidError) Error() string { return e.Message }

// Team is a row of teams.
type Team struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Slug      string       `json:"slug"`
	CreatedAt apitype.Time `json:"created_at"`
	UpdatedAt apitype.Time `json:"updated_at"`
}

var slugRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Slugify derives a slug from a name: lower-case letters and digits, every other run of
// characters one hyphen, none at either end.
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	s := b.String()
	if len(s) > 255 {
		s = strings.TrimRight(s[:255], "-")
	}
	return s
}

// CheckSlug validates a slug given on the command line.
func CheckSlug(slug string) error {
	if len(slug) > 255 || !slugRE.MatchString(slug) {
		return &InvalidError{Message: fmt.Sprintf("invalid slug %q: lower-case letters, digits and single hyphens, at most 255 characters", slug)}
	}
	return nil
}

func checkName(what, name string) error {
	if strings.TrimSpace(name) == "" {
		return &InvalidError{Message: what + " must not be empty"}
	}
	if len(name) > 255 {
		return &InvalidError{Message: what + " must be at most 255 characters"}
	}
	return nil
}

// CreateTeam inserts a team. A slug that is taken is a *DuplicateError.
func (s *Store) CreateTeam(ctx context.Context, name, slug string) (Team, error) {
	if err := checkName("team name", name); err != nil {
		return Team{}, err
	}
	if err := CheckSlug(slug); err != nil {
		return Team{}, err
	}
	var t Team
	err := s.pool.QueryRow(ctx, `INSERT INTO teams (name, slug) VALUES ($1, $2)
		RETURNING id, name, slug, created_at, updated_at`, name, slug).
		Scan(&t.ID, &t.Name, &t.Slug, &t.CreatedAt.Time, &t.UpdatedAt.Time)
	if db.IsUniqueViolation(err, "teams_slug_unique") {
		return Team{}, &DuplicateError{What: "team slug", Value: slug}
	}
	if err != nil {
		return Team{}, fmt.Errorf("create team: %w", err)
	}
	return t, nil
}

// ResolveTeam finds a live team by id or slug.
func (s *Store) ResolveTeam(ctx context.Context, ref string) (Team, error) {
	return resolveTeam(ctx, s.pool, ref)
}

func resolveTeam(ctx context.Context, q db.DBTX, ref string) (Team, error) {
	id, isID := jobtype.ParseUUID(ref)
	var t Team
	var err error
	if isID {
		err = q.QueryRow(ctx, `SELECT id, name, slug, created_at, updated_at FROM teams WHERE id = $1 AND deleted_at IS NULL`, id).
			Scan(&t.ID, &t.Name, &t.Slug, &t.CreatedAt.Time, &t.UpdatedAt.Time)
	} else {
		err = q.QueryRow(ctx, `SELECT id, name, slug, created_at, updated_at FROM teams WHERE slug = $1 AND deleted_at IS NULL`, ref).
			Scan(&t.ID, &t.Name, &t.Slug, &t.CreatedAt.Time, &t.UpdatedAt.Time)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return Team{}, &NotFoundError{Kind: "team", Ref: ref}
	}
	if err != nil {
		return Team{}, fmt.Errorf("find team %q: %w", ref, err)
	}
	return t, nil
}

// Roles are the team roles, highest first.
var Roles = []string{"owner", "admin", "member"}

// User is a row of users, with the membership created alongside it.
type User struct {
	ID         string       `json:"id"`
	Email      string       `json:"email"`
	Name       string       `json:"name"`
	CreatedAt  apitype.Time `json:"created_at"`
	UpdatedAt  apitype.Time `json:"updated_at"`
	Membership *Membership  `json:"membership"`
}

// Membership is a row of team_members.
type Membership struct {
	TeamID   string       `json:"team_id"`
	TeamSlug string       `json:"team_slug"`
	Role     string       `json:"role"`
	JoinedAt apitype.Time `json:"joined_at"`
}

// NewUser is the input of CreateUser.
type NewUser struct {
	Email string
	// Name defaults to the part of the e-mail before @.
	Name string
	// Team (id or slug) and Role add a membership; Role defaults to member.
	Team string
	Role string
}

// CheckEmail validates an e-mail address given on the command line.
func CheckEmail(email string) error {
	at := strings.IndexByte(email, '@')
	if at <= 0 || at == len(email)-1 || strings.ContainsAny(email, " \t\r\n") || len(email) > 255 {
		return &InvalidError{Message: fmt.Sprintf("invalid email %q", email)}
	}
	return nil
}

// CreateUser inserts a user and, with a team, its membership, in one transaction. An
// e-mail that is taken is a *DuplicateError.
func (s *Store) CreateUser(ctx context.Context, in NewUser) (User, error) {
	if err := CheckEmail(in.Email); err != nil {
		return User{}, err
	}
	if in.Name == "" {
		in.Name = in.Email[:strings.IndexByte(in.Email, '@')]
	}
	if err := checkName("user name", in.Name); err != nil {
		return User{}, err
	}
	if in.Role == "" {
		in.Role = "member"
	}
	var u User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var team Team
		if in.Team != "" {
			var err error
			if team, err = resolveTeam(ctx, tx, in.Team); err != nil {
				return err
			}
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))`, in.Email).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return &DuplicateError{What: "email", Value: in.Email}
		}
		err := tx.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ($1, $2)
			RETURNING id, email, name, created_at, updated_at`, in.Email, in.Name).
			Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt.Time, &u.UpdatedAt.Time)
		if db.IsUniqueViolation(err, "users_email_unique") {
			return &DuplicateError{What: "email", Value: in.Email}
		}
		if err != nil {
			return err
		}
		if in.Team == "" {
			return nil
		}
		m := Membership{TeamID: team.ID, TeamSlug: team.Slug}
		err = tx.QueryRow(ctx, `INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3)
			RETURNING role, joined_at`, team.ID, u.ID, in.Role).Scan(&m.Role, &m.JoinedAt.Time)
		if err != nil {
			return err
		}
		u.Membership = &m
		return nil
	})
	var dup *DuplicateError
	var nf *NotFoundError
	if errors.As(err, &dup) || errors.As(err, &nf) {
		return User{}, err
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// Project is a row of projects.
type Project struct {
	ID        string       `json:"id"`
	TeamID    string       `json:"team_id"`
	Name      string       `json:"name"`
	Slug      string       `json:"slug"`
	Color     string       `json:"color"`
	CreatedAt apitype.Time `json:"created_at"`
}

// DefaultProjectColor is the colour of a project created without --color.
const DefaultProjectColor = "#6366f1"

var colorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// CheckColor validates a #rrggbb colour.
func CheckColor(c string) error {
	if !colorRE.MatchString(c) {
		return &InvalidError{Message: fmt.Sprintf("invalid color %q: use #rrggbb", c)}
	}
	return nil
}

// NewProject is the input of CreateProject.
type NewProject struct {
	// Team is an id or slug.
	Team  string
	Name  string
	Slug  string
	Color string
}

// CreateProject inserts a project into a live team. A slug taken in that team is a
// *DuplicateError.
func (s *Store) CreateProject(ctx context.Context, in NewProject) (Project, error) {
	if err := checkName("project name", in.Name); err != nil {
		return Project{}, err
	}
	if err := CheckSlug(in.Slug); err != nil {
		return Project{}, err
	}
	if in.Color == "" {
		in.Color = DefaultProjectColor
	}
	if err := CheckColor(in.Color); err != nil {
		return Project{}, err
	}
	team, err := s.ResolveTeam(ctx, in.Team)
	if err != nil {
		return Project{}, err
	}
	var p Project
	err = s.pool.QueryRow(ctx, `INSERT INTO projects (team_id, name, slug, color) VALUES ($1, $2, $3, $4)
		RETURNING id, team_id, name, slug, color, created_at`, team.ID, in.Name, in.Slug, strings.ToLower(in.Color)).
		Scan(&p.ID, &p.TeamID, &p.Name, &p.Slug, &p.Color, &p.CreatedAt.Time)
	if db.IsUniqueViolation(err, "projects_team_slug_idx") {
		return Project{}, &DuplicateError{What: "project slug", Value: in.Slug, Within: "team " + team.Slug}
	}
	if err != nil {
		return Project{}, fmt.Errorf("create project: %w", err)
	}
	return p, nil
}

// AgentPermissions are the permissions an agent key can hold (api.md §4.1). A key
// created without --permissions gets all of them.
var AgentPermissions = apikey.AgentPermissions

// CheckPermissions validates a permission list; an unknown one names the valid ones.
// It returns the list without duplicates, in the order given.
func CheckPermissions(perms []string) ([]string, error) {
	valid := map[string]bool{}
	for _, p := range AgentPermissions {
		valid[p] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range perms {
		p = strings.TrimSpace(p)
		if !valid[p] {
			return nil, &InvalidError{Message: fmt.Sprintf("unknown permission %q; valid permissions: %s", p, strings.Join(AgentPermissions, ", "))}
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, &InvalidError{Message: "no permissions given; valid permissions: " + strings.Join(AgentPermissions, ", ")}
	}
	return out, nil
}

// Key is the key object of cli.md §10.9. It never holds the secret or its hash: the
// secret is shown once, by CreateKey's caller.
type Key struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	TeamID      string        `json:"team_id"`
	KeyType     string        `json:"key_type"`
	Permissions []string      `json:"permissions"`
	CreatedBy   string        `json:"created_by"`
	CreatedAt   apitype.Time  `json:"created_at"`
	LastUsedAt  *apitype.Time `json:"last_used_at"`
	ExpiresAt   *apitype.Time `json:"expires_at"`
	SecretHint  string        `json:"secret_hint"`
}

// NewKey is the input of CreateKey.
type NewKey struct {
	// Team is an id or slug.
	Team string
	// CreatedBy is a user id or e-mail; the user must be a member of the team.
	CreatedBy string
	// Name defaults to "owlmetry CLI key".
	Name string
	// Permissions default to AgentPermissions.
	Permissions []string
	// ExpiresIn sets expires_at to now + ExpiresIn; zero never expires.
	ExpiresIn time.Duration
}

// NotMemberError is a --created-by user who is not a member of the key's team.
type NotMemberError struct{ User, Team string }

func (e *NotMemberError) Error() string {
	return fmt.Sprintf("user %s is not a member of team %s", e.User, e.Team)
}

const keyColumns = `id, name, team_id, key_type, permissions, created_by, created_at, last_used_at, expires_at, secret`

func scanKey(row pgx.Row) (Key, error) {
	var k Key
	var perms []byte
	var created time.Time
	var used, expires *time.Time
	if err := row.Scan(&k.ID, &k.Name, &k.TeamID, &k.KeyType, &perms, &k.CreatedBy, &created, &used, &expires, &k.SecretHint); err != nil {
		return Key{}, err
	}
	k.SecretHint = displayHint(k.SecretHint)
	k.CreatedAt = apitype.Time{Time: created.UTC()}
	k.LastUsedAt, k.ExpiresAt = utcTime(used), utcTime(expires)
	k.Permissions = []string{}
	if len(perms) > 0 {
		_ = json.Unmarshal(perms, &k.Permissions)
	}
	return k, nil
}

// displayHint keeps a stored hint as it is, but never lets a full secret through: a row
// written by another tool may hold the plaintext key in the secret column.
func displayHint(stored string) string {
	if strings.HasSuffix(stored, "…") {
		return stored
	}
	if apikey.LooksLikeKey(stored) {
		return apikey.Hint(stored)
	}
	return stored[:min(4, len(stored))] + "…"
}

func utcTime(t *time.Time) *apitype.Time {
	if t == nil {
		return nil
	}
	return &apitype.Time{Time: t.UTC()}
}

// CreateKey creates an agent key and returns it with its secret, which exists nowhere
// else: the database keeps its SHA-256 and a display hint (api.md §3.2).
func (s *Store) CreateKey(ctx context.Context, in NewKey) (Key, string, error) {
	if in.Name == "" {
		in.Name = "owlmetry CLI key"
	}
	if err := checkName("key name", in.Name); err != nil {
		return Key{}, "", err
	}
	if in.Permissions == nil {
		in.Permissions = AgentPermissions
	}
	perms, err := CheckPermissions(in.Permissions)
	if err != nil {
		return Key{}, "", err
	}
	permsJSON, err := json.Marshal(perms)
	if err != nil {
		return Key{}, "", err
	}
	secret := apikey.NewAgent()
	hash, hint := apikey.Hash(secret), apikey.Hint(secret)
	var expires any
	if in.ExpiresIn > 0 {
		expires = in.ExpiresIn.Seconds()
	}
	var k Key
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		team, err := resolveTeam(ctx, tx, in.Team)
		if err != nil {
			return err
		}
		var userID string
		if id, ok := jobtype.ParseUUID(in.CreatedBy); ok {
			err = tx.QueryRow(ctx, `SELECT id FROM users WHERE id = $1`, id).Scan(&userID)
		} else {
			err = tx.QueryRow(ctx, `SELECT id FROM users WHERE lower(email) = lower($1)`, in.CreatedBy).Scan(&userID)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return &NotFoundError{Kind: "user", Ref: in.CreatedBy}
		}
		if err != nil {
			return err
		}
		var member bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2)`,
			team.ID, userID).Scan(&member); err != nil {
			return err
		}
		if !member {
			return &NotMemberError{User: in.CreatedBy, Team: team.Slug}
		}
		k, err = scanKey(tx.QueryRow(ctx, `INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions, expires_at)
			VALUES ($1, $2, 'agent', $3, $4, $5, $6, now() + make_interval(secs => $7::float8))
			RETURNING `+keyColumns, hint, hash, team.ID, in.Name, userID, permsJSON, expires))
		return err
	})
	var nf *NotFoundError
	var nm *NotMemberError
	if errors.As(err, &nf) || errors.As(err, &nm) {
		return Key{}, "", err
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	return k, secret, nil
}

// ListKeys returns the live keys of a team, oldest first, without secrets or hashes.
func (s *Store) ListKeys(ctx context.Context, teamRef string) ([]Key, error) {
	team, err := s.ResolveTeam(ctx, teamRef)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE team_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`, team.ID)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	if keys == nil {
		keys = []Key{}
	}
	return keys, nil
}
