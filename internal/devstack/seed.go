package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/apikey"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
)

// Seeded is what the demo seed created; it is kept in <data-dir>/seed.json (mode 0600)
// because the agent key's plaintext exists nowhere else.
type Seeded struct {
	TeamID   string            `json:"team_id"`
	UserID   string            `json:"user_id"`
	Projects map[string]string `json:"projects"` // universe key → project id
	Apps     map[string]string `json:"apps"`     // universe key → app id
	APIKey   string            `json:"api_key"`
}

// OwnerEmail is the demo team owner's address.
const OwnerEmail = "owner@dev.owlmetry.local"

func seedPath(dir string) string { return filepath.Join(dir, "seed.json") }

func loadSeeded(dir string) (*Seeded, error) {
	b, err := os.ReadFile(seedPath(dir))
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var s Seeded
	return &s, json.Unmarshal(b, &s)
}

// seed writes the demo universe (upstreams.md §9.3) into an empty database: the team, its
// owner, the projects and apps, an agent key with every agent permission, app users and
// events across the last 14 months. It runs in one transaction, so a failed seed leaves
// nothing behind and the next start tries again.
func seed(ctx context.Context, pool *pgxpool.Pool, u *universe.Universe, now time.Time) (*Seeded, error) {
	// Event rows need their months' partitions; the migration made only the current
	// month and the next two.
	for k := 14; k >= 1; k-- {
		if _, err := db.EnsurePartitions(ctx, pool, db.MonthStart(now).AddDate(0, -k, 0), db.PartitionOptions{}); err != nil {
			return nil, fmt.Errorf("partitions for demo events: %w", err)
		}
	}
	s := &Seeded{Projects: map[string]string{}, Apps: map[string]string{}, APIKey: apikey.NewAgent()}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO teams (name, slug) VALUES ($1, $2) RETURNING id`, u.Team.Name, u.Team.Slug).Scan(&s.TeamID); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ($1, 'Dev Owner') RETURNING id`, OwnerEmail).Scan(&s.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'owner')`, s.TeamID, s.UserID); err != nil {
			return err
		}
		perms, _ := json.Marshal(apikey.AgentPermissions)
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions)
			VALUES ($1, $2, 'agent', $3, 'owlmetry dev', $4, $5)`,
			apikey.Hint(s.APIKey), apikey.Hash(s.APIKey), s.TeamID, s.UserID, perms); err != nil {
			return err
		}
		for _, p := range u.Projects {
			var pid string
			if err := tx.QueryRow(ctx, `INSERT INTO projects (team_id, name, slug, color) VALUES ($1, $2, $3, $4) RETURNING id`,
				s.TeamID, p.Name, p.Slug, p.Color).Scan(&pid); err != nil {
				return err
			}
			s.Projects[p.Key] = pid
			for _, a := range p.Apps {
				var aid string
				if err := tx.QueryRow(ctx, `INSERT INTO apps (team_id, project_id, name, platform, bundle_id, apple_app_store_id)
					VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6) RETURNING id`,
					s.TeamID, pid, a.Name, a.Platform, a.BundleID, a.AppleAppStoreID).Scan(&aid); err != nil {
					return err
				}
				s.Apps[a.Key] = aid
			}
		}
		return seedActivity(ctx, tx, s, now)
	})
	if err != nil {
		return nil, fmt.Errorf("seed demo data: %w", err)
	}
	return s, nil
}

// seedActivity adds app users and events: steady traffic over 14 months (for retention),
// production versions in the last 90 days (for version sync) and a burst of errors (for
// the issue scan).
func seedActivity(ctx context.Context, tx pgx.Tx, s *Seeded, now time.Time) error {
	projectA := s.Projects["A"]
	if _, err := tx.Exec(ctx, `INSERT INTO app_users (project_id, user_id, is_anonymous, first_seen_at, last_seen_at)
		SELECT $1, 'u_' || lpad(g::text, 5, '0'), false, $2::timestamptz - make_interval(days => g % 300), $2
		  FROM generate_series(1, 100) g`, projectA, now); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO app_users (project_id, user_id, is_anonymous, first_seen_at, last_seen_at)
		SELECT $1, 'owl_anon_' || md5(g::text), true, $2, $2 FROM generate_series(1, 10) g`, projectA, now); err != nil {
		return err
	}
	for _, key := range []string{"snapframe-ios", "snapframe-android"} {
		app := s.Apps[key]
		if _, err := tx.Exec(ctx, `INSERT INTO events (app_id, session_id, user_id, level, message, screen_name, environment,
			app_version, is_dev, "timestamp")
			SELECT $1, gen_random_uuid(), 'u_' || lpad((g % 100 + 1)::text, 5, '0'), 'info', 'screen viewed', 'home',
			       CASE WHEN $2 = 'snapframe-ios' THEN 'ios' ELSE 'android' END::environment,
			       CASE WHEN g % 3 = 0 THEN '4.12.0' WHEN g % 3 = 1 THEN '4.11.2' ELSE '4.10.0' END, false,
			       $3::timestamptz - make_interval(hours => g * 5)
			  FROM generate_series(1, 2000) g`, app, key, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO events (app_id, session_id, user_id, level, message, source_module,
			environment, app_version, is_dev, "timestamp")
			SELECT $1, gen_random_uuid(), 'u_' || lpad((g % 40 + 1)::text, 5, '0'), 'error',
			       CASE WHEN g % 2 = 0 THEN 'Decoding failed: missing key "frame"' ELSE 'Upload timed out' END,
			       'Uploader', CASE WHEN $2 = 'snapframe-ios' THEN 'ios' ELSE 'android' END::environment, '4.12.0', false,
			       $3::timestamptz - make_interval(mins => g * 7)
			  FROM generate_series(1, 60) g`, app, key, now); err != nil {
			return err
		}
	}
	return nil
}
