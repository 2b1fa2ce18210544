package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// Tick outcomes (engine.md §10.2, §16.2).
const (
	OutcomeFired           = "fired"
	OutcomeSkippedActive   = "skipped_active"
	OutcomeSkippedDisabled = "skipped_disabled"
	OutcomeCoalesced       = "coalesced"
	OutcomeError           = "error"
)

// ScheduleRow is one job_schedules row (engine.md §10.2).
type ScheduleRow struct {
	JobType      string
	DefaultCron  *string
	Cron         *string
	Enabled      bool
	UpdatedBy    *string
	LastTickAt   time.Time
	LastOutcome  *string
	LastRunID    *string
	FiredCount   int64
	SkippedCount int64
	UpdatedAt    time.Time
}

// ScheduleColumns lists job_schedules columns in the order ScanSchedule reads them.
const ScheduleColumns = `job_type, default_cron, cron, enabled, updated_by, last_tick_at, last_outcome, last_run_id,
	fired_count, skipped_count, updated_at`

// ScanSchedule reads a row selected with ScheduleColumns.
func ScanSchedule(row pgx.Row) (ScheduleRow, error) {
	var s ScheduleRow
	err := row.Scan(&s.JobType, &s.DefaultCron, &s.Cron, &s.Enabled, &s.UpdatedBy, &s.LastTickAt, &s.LastOutcome,
		&s.LastRunID, &s.FiredCount, &s.SkippedCount, &s.UpdatedAt)
	s.LastTickAt, s.UpdatedAt = s.LastTickAt.UTC(), s.UpdatedAt.UTC()
	return s, err
}

// Effective returns the effective expression of the row (§10.1): none when disabled,
// else the override, else the default. "" means no schedule.
func (s ScheduleRow) Effective() string {
	if !s.Enabled || s.JobType == jobtype.RevenueCatUserBackfill {
		return ""
	}
	if s.Cron != nil && *s.Cron != "" {
		return *s.Cron
	}
	if s.DefaultCron != nil {
		return *s.DefaultCron
	}
	return ""
}

// Source is default, override, disabled or manual (cli.md §10.6).
func (s ScheduleRow) Source() string {
	switch {
	case !s.Enabled:
		return "disabled"
	case s.Cron != nil && *s.Cron != "":
		return "override"
	case s.DefaultCron != nil && *s.DefaultCron != "":
		return "default"
	}
	return "manual"
}

// CronError is an expression that is not a valid UTC schedule.
type CronError struct {
	Expr   string
	Reason string
}

func (e *CronError) Error() string {
	return fmt.Sprintf("invalid cron expression %q: %s", e.Expr, e.Reason)
}

// ParseCron validates a schedule expression (§10.1): at most 100 characters, 5 fields or
// a descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every <duration>), never a
// CRON_TZ= or TZ= prefix — schedules are always UTC, whatever the process's zone.
func ParseCron(expr string) (cron.Schedule, error) {
	e := strings.TrimSpace(expr)
	switch {
	case e == "":
		return nil, &CronError{Expr: expr, Reason: "empty"}
	case len(e) > 100:
		return nil, &CronError{Expr: expr, Reason: "longer than 100 characters"}
	case strings.HasPrefix(e, "CRON_TZ=") || strings.HasPrefix(e, "TZ="):
		return nil, &CronError{Expr: expr, Reason: "schedules are always UTC; remove the time zone prefix"}
	}
	if strings.HasPrefix(e, "@") {
		switch {
		case e == "@hourly", e == "@daily", e == "@midnight", e == "@weekly", e == "@monthly", e == "@yearly", e == "@annually":
		case strings.HasPrefix(e, "@every "):
			d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(e, "@every ")))
			if err != nil || d < time.Second {
				return nil, &CronError{Expr: expr, Reason: "@every needs a duration of at least 1s"}
			}
		default:
			return nil, &CronError{Expr: expr, Reason: "unknown descriptor"}
		}
	} else if n := len(strings.Fields(e)); n != 5 {
		return nil, &CronError{Expr: expr, Reason: fmt.Sprintf("expected 5 fields, got %d", n)}
	}
	s, err := cron.ParseStandard("CRON_TZ=UTC " + e)
	if err != nil {
		return nil, &CronError{Expr: expr, Reason: err.Error()}
	}
	return s, nil
}

// DueTick returns the latest tick D of sched with after < D ≤ now, and how many earlier
// ticks in that window it coalesces (§10.5).
func DueTick(sched cron.Schedule, after, now time.Time) (time.Time, int, bool) {
	var due time.Time
	n := 0
	for d := sched.Next(after); !d.IsZero() && !d.After(now); d = sched.Next(d) {
		due = d
		n++
		if n > 1_000_000 { // a pathological expression cannot stall the tick
			break
		}
	}
	if n == 0 {
		return time.Time{}, 0, false
	}
	return due.UTC(), n - 1, true
}

// NextTick is the next tick after both lastTick and now, in UTC (cli.md §10.6).
func NextTick(expr string, lastTick, now time.Time) (time.Time, bool) {
	sched, err := ParseCron(expr)
	if err != nil {
		return time.Time{}, false
	}
	from := lastTick
	if now.After(from) {
		from = now
	}
	next := sched.Next(from)
	return next.UTC(), !next.IsZero()
}

// UpsertSchedules writes one job_schedules row per registry type with this replica's
// default under its cron profile (§10.2). A new row starts counting from now; an existing
// row keeps the owner's settings, and its tick count restarts only when the new default
// changes its effective schedule.
func (e *Engine) UpsertSchedules(ctx context.Context) error {
	for _, t := range jobtype.All() {
		def := t.DefaultCron(e.cfg.CronProfile)
		var defArg *string
		if def != "" && t.Schedulable {
			defArg = &def
		}
		var previous *string
		var changed bool
		err := e.pool.QueryRow(ctx, `
			WITH old AS (SELECT default_cron, cron, enabled FROM job_schedules WHERE job_type = $1)
			INSERT INTO job_schedules (job_type, default_cron, last_tick_at) VALUES ($1, $2, now())
			ON CONFLICT (job_type) DO UPDATE SET
			    default_cron = EXCLUDED.default_cron,
			    last_tick_at = CASE WHEN job_schedules.enabled AND job_schedules.cron IS NULL
			                         AND job_schedules.default_cron IS DISTINCT FROM EXCLUDED.default_cron
			                        THEN now() ELSE job_schedules.last_tick_at END,
			    updated_at = CASE WHEN job_schedules.default_cron IS DISTINCT FROM EXCLUDED.default_cron
			                      THEN now() ELSE job_schedules.updated_at END
			RETURNING (SELECT default_cron FROM old), (SELECT default_cron FROM old) IS DISTINCT FROM $2
			          AND EXISTS (SELECT 1 FROM old)`, t.Name, defArg).Scan(&previous, &changed)
		if err != nil {
			return fmt.Errorf("upsert schedule of %s: %w", t.Name, err)
		}
		if changed {
			e.log.Info("default schedule changed", "job_type", t.Name, "from", deref(previous), "to", def)
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TickResult says what one evaluation did per type.
type TickResult struct {
	JobType   string
	Outcome   string
	Tick      time.Time
	RunID     string
	Coalesced int
}

// Tick evaluates every type's schedule once (§10.3). Each type is one transaction that
// locks its row, so concurrent ticks on several replicas fire a due tick at most once.
func (e *Engine) Tick(ctx context.Context) ([]TickResult, error) {
	return e.tick(ctx, nil)
}

// TickAt evaluates the schedules as if the database clock read now. Tests use it to
// drive the scheduler without waiting for minutes to pass.
func (e *Engine) TickAt(ctx context.Context, now time.Time) ([]TickResult, error) {
	return e.tick(ctx, &now)
}

func (e *Engine) tick(ctx context.Context, nowOverride *time.Time) ([]TickResult, error) {
	var out []TickResult
	var errs []error
	for _, t := range jobtype.All() {
		if !t.Schedulable {
			continue
		}
		res, err := e.tickType(ctx, t, nowOverride)
		if err != nil {
			errs = append(errs, fmt.Errorf("tick %s: %w", t.Name, err))
			continue
		}
		if res.Outcome != "" {
			out = append(out, res)
		}
	}
	return out, errors.Join(errs...)
}

func (e *Engine) tickType(ctx context.Context, t jobtype.Type, nowOverride *time.Time) (TickResult, error) {
	res := TickResult{JobType: t.Name}
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		row, err := ScanSchedule(tx.QueryRow(ctx, `SELECT `+ScheduleColumns+` FROM job_schedules WHERE job_type = $1 FOR UPDATE`, t.Name))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		expr := row.Effective()
		if expr == "" {
			return nil
		}
		var now time.Time
		if nowOverride != nil {
			now = *nowOverride
		} else if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
			return err
		}
		sched, perr := ParseCron(expr)
		if perr != nil {
			e.logBadCron(t.Name, expr, perr)
			if row.LastOutcome == nil || *row.LastOutcome != OutcomeError {
				_, err := tx.Exec(ctx, `UPDATE job_schedules SET last_outcome = 'error', updated_at = now() WHERE job_type = $1`, t.Name)
				return err
			}
			return nil
		}
		due, coalesced, ok := DueTick(sched, row.LastTickAt, now.UTC())
		if !ok {
			return nil
		}
		res.Tick, res.Coalesced = due, coalesced
		if coalesced > 0 {
			e.metrics.ScheduleTicks.WithLabelValues(t.Name, OutcomeCoalesced).Add(float64(coalesced))
		}
		var runID *string
		fired, skipped := 0, 0
		switch {
		case t.Name == jobtype.DBPruning && e.cfg.MaxDatabaseSizeGB <= 0:
			res.Outcome = OutcomeSkippedDisabled
		case !e.HasHandler(t.Name):
			// The tick is consumed so it does not pile up; the operator hears of it once.
			res.Outcome = OutcomeError
			e.logOnce("nohandler\x00"+t.Name, func() {
				e.log.Error("scheduled type has no handler in this build; its ticks fire nothing", "job_type", t.Name, "cron", expr)
			})
		default:
			rec, err := e.EnqueueTx(ctx, tx, EnqueueRequest{
				JobType: t.Name, Entry: jobtype.EntryCron, TriggeredBy: "schedule",
				Params: e.scheduledParams(t.Name), ScheduledFor: &due,
			})
			var skip *SkippedError
			switch {
			case err == nil:
				res.Outcome, res.RunID, fired = OutcomeFired, rec.ID, 1
				runID = &rec.ID
				e.log.Info("scheduled run fired", "job_type", t.Name, "tick", due, "run_id", rec.ID)
			case errors.As(err, &skip):
				res.Outcome, res.RunID, skipped = OutcomeSkippedActive, skip.ExistingRunID, 1
				e.log.Info("scheduled run skipped: previous run still active", "job_type", t.Name, "tick", due, "existing_run_id", skip.ExistingRunID)
			default:
				res.Outcome = OutcomeError
				e.log.Error("scheduled run failed to enqueue", "job_type", t.Name, "tick", due, "error", err)
			}
		}
		e.metrics.ScheduleTicks.WithLabelValues(t.Name, res.Outcome).Inc()
		_, err = tx.Exec(ctx, `UPDATE job_schedules SET last_tick_at = $2, last_outcome = $3,
			last_run_id = COALESCE($4, last_run_id), fired_count = fired_count + $5, skipped_count = skipped_count + $6,
			updated_at = now() WHERE job_type = $1`, t.Name, due, res.Outcome, runID, fired, skipped)
		return err
	})
	return res, err
}

// scheduledParams are the params of cron runs: {} except db_pruning (§2.2 note 1).
func (e *Engine) scheduledParams(jobType string) map[string]any {
	if jobType == jobtype.DBPruning && e.cfg.MaxDatabaseSizeGB > 0 {
		return map[string]any{"max_size_bytes": int64(math.Floor(e.cfg.MaxDatabaseSizeGB * (1 << 30)))}
	}
	return map[string]any{}
}

// logBadCron logs an unparsable expression once per process and expression.
func (e *Engine) logBadCron(jobType, expr string, err error) {
	e.logOnce(jobType+"\x00"+expr, func() {
		e.log.Error("schedule expression does not parse; nothing fires until it is corrected", "job_type", jobType, "cron", expr, "error", err)
	})
}

// logOnce runs log the first time this process sees key.
func (e *Engine) logOnce(key string, log func()) {
	e.mu.Lock()
	seen := e.loggedOnce[key]
	e.loggedOnce[key] = true
	e.mu.Unlock()
	if !seen {
		log()
	}
}

// startupPruning enqueues the server-start db_pruning run (§10.6).
func (e *Engine) startupPruning(ctx context.Context) {
	if e.cfg.MaxDatabaseSizeGB <= 0 || !e.HasHandler(jobtype.DBPruning) {
		return
	}
	var enabled bool
	err := e.pool.QueryRow(ctx, `SELECT COALESCE((SELECT enabled FROM job_schedules WHERE job_type = 'db_pruning'), true)`).Scan(&enabled)
	if err != nil || !enabled {
		return
	}
	_, err = e.Enqueue(ctx, EnqueueRequest{JobType: jobtype.DBPruning, Entry: jobtype.EntryCron, TriggeredBy: "schedule",
		Params: e.scheduledParams(jobtype.DBPruning)})
	var skip *SkippedError
	switch {
	case errors.As(err, &skip):
		e.metrics.ScheduleTicks.WithLabelValues(jobtype.DBPruning, OutcomeSkippedActive).Inc()
	case err != nil:
		e.log.Warn("start-up db_pruning run not enqueued", "error", err)
	}
}

// tickWorker runs scheduler_tick jobs.
type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	e *Engine
}

func (w *tickWorker) Timeout(*river.Job[tickArgs]) time.Duration { return 50 * time.Second }

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[tickArgs]) error {
	_, err := w.e.Tick(ctx)
	return err
}

// TickJobArgs returns the args of a scheduler_tick job, for callers (tests, operators)
// that want an evaluation now instead of at the next minute.
func TickJobArgs() river.JobArgs { return tickArgs{} }
