package localjobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// Schedule is one job type's schedule as `system jobs schedules` shows it (cli.md §10.6).
// Every time is UTC: schedules are UTC whatever the shell's TZ says.
type Schedule struct {
	JobType string `json:"job_type"`
	// Cron is the effective expression; nil when the type has none.
	Cron *string `json:"cron"`
	// Timezone is always "UTC".
	Timezone string `json:"timezone"`
	// Source is default, override, disabled or manual.
	Source  string `json:"source"`
	Enabled bool   `json:"enabled"`
	// NextRunAt is the next tick after last_tick_at and after now; nil without an
	// effective schedule.
	NextRunAt    *apitype.Time `json:"next_run_at"`
	LastTickAt   *apitype.Time `json:"last_tick_at"`
	LastOutcome  *string       `json:"last_outcome"`
	LastRun      *LastRun      `json:"last_run"`
	ActiveRunID  *string       `json:"active_run_id"`
	FiredCount   int64         `json:"fired_count"`
	SkippedCount int64         `json:"skipped_count"`
	DefaultCron  *string       `json:"default_cron"`
	OverrideCron *string       `json:"override_cron"`
	UpdatedBy    *string       `json:"updated_by"`
	UpdatedAt    *apitype.Time `json:"updated_at"`
}

// LastRun is the run the type's last fired tick created.
type LastRun struct {
	ID          string         `json:"id"`
	Status      apitype.Status `json:"status"`
	CreatedAt   apitype.Time   `json:"created_at"`
	CompletedAt *apitype.Time  `json:"completed_at"`
}

// ScheduleList is the listing of every registry type.
type ScheduleList struct {
	Schedules []Schedule
	// Now is the database clock the next ticks were computed from (UTC).
	Now time.Time
	// FromRegistry is true when no server has written job_schedules yet: the rows come
	// from the compiled-in registry with the production defaults.
	FromRegistry bool
}

// Schedules lists all 13 types in registry order (cli.md §10.6).
func (s *Store) Schedules(ctx context.Context) (ScheduleList, error) {
	return s.schedules(ctx, nil)
}

func (s *Store) schedules(ctx context.Context, only map[string]bool) (ScheduleList, error) {
	now, err := s.dbNow(ctx)
	if err != nil {
		return ScheduleList{}, fmt.Errorf("read database clock: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+engine.ScheduleColumns+` FROM job_schedules`)
	if err != nil {
		return ScheduleList{}, fmt.Errorf("read schedules: %w", err)
	}
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (engine.ScheduleRow, error) { return engine.ScanSchedule(r) })
	if err != nil {
		return ScheduleList{}, fmt.Errorf("read schedules: %w", err)
	}
	byType := map[string]engine.ScheduleRow{}
	var lastIDs []string
	for _, r := range stored {
		byType[r.JobType] = r
		if r.LastRunID != nil {
			lastIDs = append(lastIDs, *r.LastRunID)
		}
	}
	lastRuns := map[string]LastRun{}
	if len(lastIDs) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT id, status, created_at, completed_at FROM job_runs WHERE id = ANY($1)`, lastIDs)
		if err != nil {
			return ScheduleList{}, fmt.Errorf("read last runs: %w", err)
		}
		for rows.Next() {
			var lr LastRun
			var created time.Time
			var completed *time.Time
			if err := rows.Scan(&lr.ID, &lr.Status, &created, &completed); err != nil {
				rows.Close()
				return ScheduleList{}, fmt.Errorf("read last runs: %w", err)
			}
			lr.CreatedAt = apitype.Time{Time: created.UTC()}
			if completed != nil {
				c := completed.UTC()
				lr.CompletedAt = &apitype.Time{Time: c}
			}
			lastRuns[lr.ID] = lr
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return ScheduleList{}, fmt.Errorf("read last runs: %w", err)
		}
	}
	active := map[string]string{}
	rows, err = s.pool.Query(ctx, `SELECT DISTINCT ON (job_type) job_type, id FROM job_runs
		WHERE status IN ('pending', 'running') ORDER BY job_type, created_at`)
	if err != nil {
		return ScheduleList{}, fmt.Errorf("read active runs: %w", err)
	}
	for rows.Next() {
		var t, id string
		if err := rows.Scan(&t, &id); err != nil {
			rows.Close()
			return ScheduleList{}, fmt.Errorf("read active runs: %w", err)
		}
		active[t] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ScheduleList{}, fmt.Errorf("read active runs: %w", err)
	}

	out := ScheduleList{Now: now, FromRegistry: len(stored) == 0}
	for _, t := range jobtype.All() {
		if only != nil && !only[t.Name] {
			continue
		}
		row, ok := byType[t.Name]
		var sc Schedule
		if ok {
			sc = scheduleOf(row, now)
			if row.LastRunID != nil {
				if lr, ok := lastRuns[*row.LastRunID]; ok {
					sc.LastRun = &lr
				}
			}
		} else {
			sc = registrySchedule(t, now)
		}
		if id, ok := active[t.Name]; ok {
			sc.ActiveRunID = &id
		}
		out.Schedules = append(out.Schedules, sc)
	}
	return out, nil
}

// scheduleOf turns a stored row into its listing entry; the next tick is computed from
// the effective expression in UTC (engine.ParseCron pins the zone).
func scheduleOf(r engine.ScheduleRow, now time.Time) Schedule {
	last := r.LastTickAt.UTC()
	updated := r.UpdatedAt.UTC()
	sc := Schedule{
		JobType: r.JobType, Timezone: "UTC", Source: r.Source(), Enabled: r.Enabled,
		LastTickAt: &apitype.Time{Time: last}, LastOutcome: r.LastOutcome,
		FiredCount: r.FiredCount, SkippedCount: r.SkippedCount,
		DefaultCron: r.DefaultCron, OverrideCron: r.Cron, UpdatedBy: r.UpdatedBy,
		UpdatedAt: &apitype.Time{Time: updated},
	}
	if expr := r.Effective(); expr != "" {
		sc.Cron = &expr
		if next, ok := engine.NextTick(expr, last, now); ok {
			sc.NextRunAt = &apitype.Time{Time: next.UTC()}
		}
	}
	return sc
}

// registrySchedule is the entry of a type no server has written yet: the production
// default of the registry, nothing ticked.
func registrySchedule(t jobtype.Type, now time.Time) Schedule {
	r := engine.ScheduleRow{JobType: t.Name, Enabled: true}
	if def := t.DefaultCron("prod"); def != "" && t.Schedulable {
		r.DefaultCron = &def
	}
	sc := Schedule{
		JobType: t.Name, Timezone: "UTC", Source: r.Source(), Enabled: true, DefaultCron: r.DefaultCron,
	}
	if expr := r.Effective(); expr != "" {
		sc.Cron = &expr
		if next, ok := engine.NextTick(expr, now, now); ok {
			sc.NextRunAt = &apitype.Time{Time: next.UTC()}
		}
	}
	return sc
}

// ScheduleChangeKind is one of the owner's schedule changes (engine.md §10.2).
type ScheduleChangeKind string

// The schedule changes.
const (
	ScheduleSet     ScheduleChangeKind = "set"
	ScheduleEnable  ScheduleChangeKind = "enable"
	ScheduleDisable ScheduleChangeKind = "disable"
	ScheduleReset   ScheduleChangeKind = "reset"
)

// ScheduleError is a schedule change the rules refuse; the command reports it as a usage
// error.
type ScheduleError struct{ Message string }

func (e *ScheduleError) Error() string { return e.Message }

// CheckScheduleType refuses types that can never be scheduled.
func CheckScheduleType(jobType string) error {
	t, ok := jobtype.Lookup(jobType)
	if !ok {
		return &engine.UnknownTypeError{JobType: jobType}
	}
	if !t.Schedulable {
		return &ScheduleError{Message: t.Name + " needs a project and cannot be scheduled"}
	}
	return nil
}

// CheckCron validates an expression the way the scheduler reads it: UTC, 5 fields or a
// descriptor, no time zone prefix.
func CheckCron(expr string) error {
	_, err := engine.ParseCron(expr)
	return err
}

// ChangeSchedule applies one owner change to one type in one transaction and returns the
// changed schedule. A missing row is inserted first with the registry's production
// default; a change of the effective schedule restarts its tick count from now, so it
// never fires for a tick in the past. Running servers read the row at their next tick.
func (s *Store) ChangeSchedule(ctx context.Context, jobType string, kind ScheduleChangeKind, cron string) (Schedule, error) {
	if err := CheckScheduleType(jobType); err != nil {
		return Schedule{}, err
	}
	if kind == ScheduleSet {
		if err := CheckCron(cron); err != nil {
			return Schedule{}, err
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return s.changeScheduleTx(ctx, tx, jobType, kind, cron)
	})
	if err != nil {
		return Schedule{}, err
	}
	list, err := s.schedules(ctx, map[string]bool{jobType: true})
	if err != nil {
		return Schedule{}, err
	}
	return list.Schedules[0], nil
}

// ResetAllSchedules drops every override and re-enables every default, in one
// transaction, and returns the schedules it changed.
func (s *Store) ResetAllSchedules(ctx context.Context) ([]Schedule, error) {
	changed := map[string]bool{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, t := range jobtype.All() {
			if !t.Schedulable {
				continue
			}
			if err := s.changeScheduleTx(ctx, tx, t.Name, ScheduleReset, ""); err != nil {
				return err
			}
			changed[t.Name] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	list, err := s.schedules(ctx, changed)
	if err != nil {
		return nil, err
	}
	return list.Schedules, nil
}

func (s *Store) changeScheduleTx(ctx context.Context, tx pgx.Tx, jobType string, kind ScheduleChangeKind, cron string) error {
	t := jobtype.MustLookup(jobType)
	var def *string
	if d := t.DefaultCron("prod"); d != "" {
		def = &d
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_schedules (job_type, default_cron, last_tick_at) VALUES ($1, $2, now())
		ON CONFLICT (job_type) DO NOTHING`, jobType, def); err != nil {
		return fmt.Errorf("change schedule of %s: %w", jobType, err)
	}
	old, err := engine.ScanSchedule(tx.QueryRow(ctx, `SELECT `+engine.ScheduleColumns+` FROM job_schedules WHERE job_type = $1 FOR UPDATE`, jobType))
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("change schedule of %s: row vanished", jobType)
	}
	if err != nil {
		return fmt.Errorf("change schedule of %s: %w", jobType, err)
	}
	next := old
	switch kind {
	case ScheduleSet:
		c := cron
		next.Cron, next.Enabled = &c, true
	case ScheduleEnable:
		if (old.Cron == nil || *old.Cron == "") && (old.DefaultCron == nil || *old.DefaultCron == "") {
			return &ScheduleError{Message: fmt.Sprintf(`%s has no default schedule; set one with owlmetry system jobs schedules set %s "<cron>"`, jobType, jobType)}
		}
		next.Enabled = true
	case ScheduleDisable:
		next.Enabled = false
	case ScheduleReset:
		next.Cron, next.Enabled = nil, true
	default:
		return fmt.Errorf("unknown schedule change %q", kind)
	}
	restart := old.Effective() != next.Effective()
	_, err = tx.Exec(ctx, `UPDATE job_schedules SET cron = $2, enabled = $3, updated_by = $4, updated_at = now(),
		last_tick_at = CASE WHEN $5 THEN now() ELSE last_tick_at END
		WHERE job_type = $1`, jobType, next.Cron, next.Enabled, s.cfg.Actor, restart)
	if err != nil {
		return fmt.Errorf("change schedule of %s: %w", jobType, err)
	}
	return nil
}
