package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/apikey"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// Roles of team members, highest first (api.md §4.1).
const (
	roleOwner  = "owner"
	roleAdmin  = "admin"
	roleMember = "member"
)

// principal is the authenticated caller: an API key acting for one team, or a user with
// a role in each of their teams.
type principal struct {
	// API key fields.
	KeyID       string
	KeyType     string
	KeyTeamID   string
	CreatedBy   string
	Permissions []string

	// User fields.
	UserID string
	Email  string
	Roles  map[string]string // team id → role, non-deleted teams only
}

func (p *principal) isKey() bool { return p.KeyID != "" }

// actor is the triggered_by / cancel_requested_by form (engine.md §2.5).
func (p *principal) actor() string {
	if p.isKey() {
		return "manual:api_key:" + p.KeyID
	}
	return "manual:user:" + p.UserID
}

// auditActor returns audit_logs.actor_type and actor_id.
func (p *principal) auditActor() (string, string) {
	if p.isKey() {
		return "api_key", p.KeyID
	}
	return "user", p.UserID
}

// can reports whether the caller holds perm. Users are checked by role instead; only
// agent keys can hold the permissions this API checks (api.md §4.1).
func (p *principal) can(perm string) bool {
	if !p.isKey() {
		return true
	}
	if p.KeyType != "agent" {
		return false
	}
	for _, have := range p.Permissions {
		if have == perm {
			return true
		}
	}
	return false
}

// sees reports whether the caller has access to team: the key's team, or any membership.
func (p *principal) sees(teamID string) bool {
	if p.isKey() {
		return p.KeyTeamID == teamID
	}
	_, ok := p.Roles[teamID]
	return ok
}

// requireAdmin is step 6 of api.md §4.3: users need admin or owner in the team; keys
// have no role.
func (p *principal) requireAdmin(teamID string) error {
	if p.isKey() {
		return nil
	}
	switch p.Roles[teamID] {
	case roleOwner, roleAdmin:
		return nil
	}
	return errorf(http.StatusForbidden, msgRequiresAdmin)
}

// requireTeam is the visibility and role check of a team-path route: 403 for a team the
// caller cannot see, whether or not it exists (api.md §4.4).
func (p *principal) requireTeam(teamID string) error {
	if !p.sees(teamID) {
		return errorf(http.StatusForbidden, msgNotMember)
	}
	return p.requireAdmin(teamID)
}

// authenticate reads the Authorization header (api.md §3).
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return nil, errorf(http.StatusUnauthorized, msgMissingAuth)
	}
	parts := strings.Split(values[0], " ")
	if len(parts) != 2 || !strings.EqualFold(parts[0], "Bearer") || parts[1] == "" {
		return nil, errorf(http.StatusUnauthorized, msgInvalidAuthFormat)
	}
	token := parts[1]
	if apikey.LooksLikeKey(token) { // api.md §3.1: a key prefix makes it a key, else a JWT
		return s.authenticateKey(r.Context(), token)
	}
	return s.authenticateUser(r.Context(), token)
}

func (s *Server) authenticateKey(ctx context.Context, token string) (*principal, error) {
	invalid := errorf(http.StatusUnauthorized, "Invalid API key")
	if !apikey.WellFormed(token) {
		return nil, invalid
	}
	var (
		p        principal
		perms    []byte
		expired  bool
		lastUsed *time.Time
	)
	err := s.pool.QueryRow(ctx, `
		SELECT k.id, k.key_type::text, k.team_id, k.created_by, k.permissions,
		       k.expires_at IS NOT NULL AND k.expires_at <= now(), k.last_used_at
		  FROM api_keys k JOIN teams t ON t.id = k.team_id
		 WHERE k.secret_hash = $1 AND k.deleted_at IS NULL AND t.deleted_at IS NULL`,
		apikey.Hash(token)).Scan(&p.KeyID, &p.KeyType, &p.KeyTeamID, &p.CreatedBy, &perms, &expired, &lastUsed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, invalid
	}
	if err != nil {
		return nil, err
	}
	if expired {
		return nil, errorf(http.StatusUnauthorized, "API key expired")
	}
	// A permissions value that is not a list of strings grants nothing.
	if json.Unmarshal(perms, &p.Permissions) != nil {
		p.Permissions = nil
	}
	s.touch.touch(p.KeyID, lastUsed)
	return &p, nil
}

func (s *Server) authenticateUser(ctx context.Context, token string) (*principal, error) {
	invalid := errorf(http.StatusUnauthorized, "Invalid or expired token")
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return s.deps.JWTSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
	if err != nil {
		return nil, invalid
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return nil, invalid
	}
	userID, ok := jobtype.ParseUUID(sub)
	if !ok {
		return nil, invalid
	}
	rows, err := s.pool.Query(ctx, `
		SELECT u.email, tm.team_id, tm.role::text
		  FROM users u
		  LEFT JOIN (team_members tm JOIN teams t ON t.id = tm.team_id AND t.deleted_at IS NULL)
		         ON tm.user_id = u.id
		 WHERE u.id = $1`, userID)
	if err != nil {
		return nil, err
	}
	p := &principal{UserID: userID, Roles: map[string]string{}}
	found := false
	for rows.Next() {
		var teamID, role *string
		if err := rows.Scan(&p.Email, &teamID, &role); err != nil {
			rows.Close()
			return nil, err
		}
		found = true
		if teamID != nil && role != nil {
			p.Roles[*teamID] = *role
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, invalid
	}
	return p, nil
}

// keyToucher updates api_keys.last_used_at in the background, at most once per minute
// per key (api.md §3.2): requests never wait for it, and a burst of requests with one
// key costs one UPDATE. The UPDATE's own guard keeps replicas from repeating each other.
type keyToucher struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time

	mu   sync.Mutex
	last map[string]time.Time

	ch     chan string
	done   chan struct{}
	closed bool
	// written counts UPDATEs that changed a row; tests read it.
	written int
}

// touchEvery is the throttle of last_used_at.
const touchEvery = time.Minute

func newKeyToucher(pool *pgxpool.Pool, log *slog.Logger, now func() time.Time) *keyToucher {
	k := &keyToucher{pool: pool, log: log, now: now, last: map[string]time.Time{},
		ch: make(chan string, 256), done: make(chan struct{})}
	go k.loop()
	return k
}

// touch records a use of key id. lastUsed is the stored value read with the key.
func (k *keyToucher) touch(id string, lastUsed *time.Time) {
	now := k.now()
	if lastUsed != nil && now.Sub(*lastUsed) < touchEvery {
		return
	}
	k.mu.Lock()
	if t, ok := k.last[id]; ok && now.Sub(t) < touchEvery {
		k.mu.Unlock()
		return
	}
	if len(k.last) > 10000 {
		for kid, t := range k.last {
			if now.Sub(t) >= touchEvery {
				delete(k.last, kid)
			}
		}
	}
	k.last[id] = now
	if !k.closed {
		select {
		case k.ch <- id:
		default: // best effort: a full queue only delays the timestamp to the next use
		}
	}
	k.mu.Unlock()
}

func (k *keyToucher) loop() {
	defer close(k.done)
	for id := range k.ch {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tag, err := k.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now()
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= now() - interval '1 minute')`, id)
		cancel()
		if err != nil {
			k.log.Warn("update api key last_used_at", "key_id", id, "error", err)
			continue
		}
		k.mu.Lock()
		k.written += int(tag.RowsAffected())
		k.mu.Unlock()
	}
}

// close waits for queued updates and stops the writer.
func (k *keyToucher) close() {
	k.mu.Lock()
	if !k.closed {
		k.closed = true
		close(k.ch)
	}
	k.mu.Unlock()
	<-k.done
}

func (k *keyToucher) writes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.written
}

// whoami answers GET /v1/auth/whoami (api.md §7.14).
func (s *Server) whoami(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	if p.isKey() {
		type team struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			Slug string `json:"slug"`
		}
		var t team
		var out *team
		err := s.pool.QueryRow(ctx, `SELECT id, name, slug FROM teams WHERE id = $1 AND deleted_at IS NULL`, p.KeyTeamID).
			Scan(&t.ID, &t.Name, &t.Slug)
		switch {
		case err == nil:
			out = &t
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		perms := p.Permissions
		if perms == nil {
			perms = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"type": "api_key", "key_type": p.KeyType, "team": out, "permissions": perms})
		return nil
	}
	type membership struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
		Role string `json:"role"`
	}
	rows, err := s.pool.Query(ctx, `
		SELECT t.id, t.name, t.slug, tm.role::text
		  FROM team_members tm JOIN teams t ON t.id = tm.team_id
		 WHERE tm.user_id = $1 AND t.deleted_at IS NULL
		 ORDER BY t.name, t.id`, p.UserID)
	if err != nil {
		return err
	}
	teams, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (membership, error) {
		var m membership
		err := row.Scan(&m.ID, &m.Name, &m.Slug, &m.Role)
		return m, err
	})
	if err != nil {
		return err
	}
	if teams == nil {
		teams = []membership{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"type": "user", "email": p.Email, "teams": teams})
	return nil
}
