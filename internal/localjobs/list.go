package localjobs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// Scope selects system runs, team runs or both (cli.md §10.2).
type Scope string

// The scopes of `system jobs list`.
const (
	ScopeAll    Scope = "all"
	ScopeSystem Scope = "system"
	ScopeTeam   Scope = "team"
)

// ParseScope accepts all, system and team.
func ParseScope(s string) (Scope, bool) {
	switch Scope(s) {
	case ScopeAll, ScopeSystem, ScopeTeam:
		return Scope(s), true
	}
	return "", false
}

// ListFilter selects runs for ListRuns. Empty fields do not filter.
type ListFilter struct {
	// Scope defaults to system.
	Scope Scope
	// Types and Statuses match any of their values.
	Types    []string
	Statuses []apitype.Status
	// TeamID and ProjectID are lower-case UUIDs.
	TeamID    string
	ProjectID string
	// Since and Until bound created_at: Since ≤ created_at < Until.
	Since, Until *time.Time
	// Stale keeps only running runs whose lease expired (the engine's rule, §11.6).
	Stale bool
	// Limit is the page size. Defaults to 20.
	Limit int
	// Cursor continues after the last run of a previous page.
	Cursor string
}

// Page is one page of runs, newest first.
type Page struct {
	Runs []Run
	// Cursor continues the listing; nil on the last page.
	Cursor  *string
	HasMore bool
}

// listRuns selects a page of runs newest first; $12 is the page size plus one, so the
// extra row tells whether there is more.
const listRuns = `SELECT ` + engine.RunColumns + ` FROM job_runs
	WHERE ($1::text = 'all' OR ($1 = 'system' AND team_id IS NULL) OR ($1 = 'team' AND team_id IS NOT NULL))
	  AND ($2::text[] IS NULL OR job_type = ANY($2))
	  AND ($3::text[] IS NULL OR status::text = ANY($3))
	  AND ($4::uuid IS NULL OR team_id = $4)
	  AND ($5::uuid IS NULL OR project_id = $5)
	  AND ($6::timestamptz IS NULL OR created_at >= $6)
	  AND ($7::timestamptz IS NULL OR created_at < $7)
	  AND ($10::timestamptz IS NULL OR (created_at, id) < ($10, $11::uuid))
	  AND ($8::bool = false OR %s)
	ORDER BY created_at DESC, id DESC
	LIMIT $12`

// ListRuns returns one page of runs (cli.md §10.2), ordered by created_at then id, both
// descending.
func (s *Store) ListRuns(ctx context.Context, f ListFilter) (Page, error) {
	if f.Scope == "" {
		f.Scope = ScopeSystem
	}
	if f.Limit <= 0 {
		f.Limit = 20
	}
	var afterAt *time.Time
	var afterID *string
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		afterAt, afterID = &at, &id
	}
	// The stale predicate is the engine's own (engine.md §11.6); without --stale the
	// $9 placeholder still needs a value of the right type.
	stale := `$9::float8 IS NULL`
	var staleArg any
	if f.Stale {
		e, err := s.engine()
		if err != nil {
			return Page{}, err
		}
		stale, staleArg = e.StaleRunsWhere(9)
	}
	statuses := make([]string, len(f.Statuses))
	for i, st := range f.Statuses {
		statuses[i] = string(st)
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf(listRuns, stale),
		string(f.Scope), nilIfEmpty(f.Types), nilIfEmpty(statuses), nilIfBlank(f.TeamID), nilIfBlank(f.ProjectID),
		f.Since, f.Until, f.Stale, staleArg, afterAt, afterID, f.Limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("list job runs: %w", err)
	}
	recs, err := engine.CollectRuns(rows)
	if err != nil {
		return Page{}, fmt.Errorf("list job runs: %w", err)
	}
	page := Page{}
	if len(recs) > f.Limit {
		recs = recs[:f.Limit]
		page.HasMore = true
		last := recs[len(recs)-1]
		c := encodeCursor(last.CreatedAt, last.ID)
		page.Cursor = &c
	}
	page.Runs = fromRecords(recs)
	return page, nil
}

// ErrInvalidCursor is a --cursor value that this program did not produce.
var ErrInvalidCursor = errors.New("invalid cursor")

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrInvalidCursor
	}
	at, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, "", ErrInvalidCursor
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, "", ErrInvalidCursor
	}
	uid, ok := jobtype.ParseUUID(id)
	if !ok {
		return time.Time{}, "", ErrInvalidCursor
	}
	return t, uid, nil
}

// CheckCursor validates a cursor before any query, so a bad one is a usage error.
func CheckCursor(c string) error {
	_, _, err := decodeCursor(c)
	return err
}

// GetRun reads one run with the details of `system jobs view`: whether its lease has
// expired and the state of its River job.
func (s *Store) GetRun(ctx context.Context, id string) (Detail, error) {
	rec, err := engine.ScanRun(s.pool.QueryRow(ctx, `SELECT `+engine.RunColumns+` FROM job_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Detail{}, &RunNotFoundError{ID: id}
	}
	if err != nil {
		return Detail{}, fmt.Errorf("read job run %s: %w", id, err)
	}
	d := Detail{Run: fromRecord(rec)}
	if rec.Status == apitype.StatusRunning && rec.HeartbeatAt != nil {
		var expired bool
		err := s.pool.QueryRow(ctx, `SELECT $1::timestamptz < now() - make_interval(secs => $2)`,
			*rec.HeartbeatAt, s.settings.StaleAfter.Seconds()).Scan(&expired)
		if err != nil {
			return Detail{}, fmt.Errorf("read job run %s: %w", id, err)
		}
		d.LeaseExpired = expired
	}
	if rec.RiverJobID != nil {
		e, err := s.engine()
		if err != nil {
			return Detail{}, err
		}
		job, err := e.River().JobGet(ctx, *rec.RiverJobID)
		switch {
		case err == nil:
			d.RiverState = string(job.State)
		case isRiverNotFound(err):
		default:
			return Detail{}, fmt.Errorf("read river job %d: %w", *rec.RiverJobID, err)
		}
	}
	return d, nil
}

// snapshot reads one run without the view extras.
func (s *Store) snapshot(ctx context.Context, id string) (Run, error) {
	rec, err := engine.ScanRun(s.pool.QueryRow(ctx, `SELECT `+engine.RunColumns+` FROM job_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, &RunNotFoundError{ID: id}
	}
	if err != nil {
		return Run{}, fmt.Errorf("read job run %s: %w", id, err)
	}
	return fromRecord(rec), nil
}

func nilIfEmpty(v []string) any {
	if len(v) == 0 {
		return nil
	}
	return v
}

func nilIfBlank(v string) any {
	if v == "" {
		return nil
	}
	return v
}
