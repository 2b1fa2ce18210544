package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// riverInsertPayload is River's insert notification for queue jobs.
const riverInsertPayload = `{"queue": "jobs"}`

// Executors (engine.md §3.1).
const (
	ExecutorQueue = "queue"
	ExecutorLocal = "local"
)

// EnqueueRequest is one run to create. Every entry point fills it and calls Enqueue.
type EnqueueRequest struct {
	JobType string
	Entry   jobtype.EntryPoint
	// TeamID is the run's team; nil makes a system run. For the CLI entry point it is
	// derived from the project.
	TeamID *string
	// ProjectID is the verified project of a trigger or route; nil otherwise. The CLI
	// entry point passes its project as Params["project_id"].
	ProjectID *string
	// Params are the raw params (JSON values: strings, json.Number or float64 numbers).
	Params map[string]any
	// Notify asks for an e-mail to the triggering user when the run ends.
	Notify bool
	// TriggeredBy is the actor string (engine.md §2.5), at most 100 characters.
	TriggeredBy string
	// Executor is queue (default) or local.
	Executor string
	// ScheduledFor is the cron tick that created the run.
	ScheduledFor *time.Time
	// AfterInsert runs in the same transaction once the run and its River job exist;
	// API entry points write their audit rows here.
	AfterInsert func(ctx context.Context, tx pgx.Tx, run RunRecord) error
}

// SkippedError is a cron tick that found an active run of its type (engine.md §10.4).
type SkippedError struct {
	JobType       string
	ExistingRunID string
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("%s skipped: run %s is still active", e.JobType, e.ExistingRunID)
}

// ProjectMismatchError is a params.project_id that differs from the verified project.
var ErrProjectMismatch = errors.New("params.project_id must match project_id")

// EntryNotAllowedError is a type that the entry point cannot create.
type EntryNotAllowedError struct {
	JobType string
	Entry   jobtype.EntryPoint
}

func (e *EntryNotAllowedError) Error() string {
	if e.Entry == jobtype.EntryTrigger {
		return fmt.Sprintf("%q is a system job and cannot be triggered through the API", e.JobType)
	}
	return fmt.Sprintf("%s cannot be started from %s", e.JobType, e.Entry)
}

// UnknownTypeError is a job type that is not in the registry.
type UnknownTypeError struct{ JobType string }

func (e *UnknownTypeError) Error() string { return jobtype.InvalidTypeMessage(e.JobType) }

// Enqueue records a run and, for the queue executor, its River job in one transaction
// (engine.md §5). An active run with the same overlap key makes it return
// *apitype.ConflictError naming that run; a cron entry returns *SkippedError instead
// when any run of the type is active.
func (e *Engine) Enqueue(ctx context.Context, req EnqueueRequest) (RunRecord, error) {
	return e.enqueue(ctx, nil, req)
}

// EnqueueTx is Enqueue inside the caller's transaction, on a savepoint: a conflict rolls
// back only this run, so /ads/sync can create its two runs atomically.
func (e *Engine) EnqueueTx(ctx context.Context, tx pgx.Tx, req EnqueueRequest) (RunRecord, error) {
	return e.enqueue(ctx, tx, req)
}

// enqueue validates and inserts. With outer set it works on savepoints of the caller's
// transaction; without, each attempt is its own transaction, which saves the savepoint
// round trips on the hot path.
func (e *Engine) enqueue(ctx context.Context, outer pgx.Tx, req EnqueueRequest) (RunRecord, error) {
	t, ok := jobtype.Lookup(req.JobType)
	if !ok {
		return RunRecord{}, &UnknownTypeError{JobType: req.JobType}
	}
	if !t.AllowsEntry(req.Entry) {
		return RunRecord{}, &EntryNotAllowedError{JobType: t.Name, Entry: req.Entry}
	}
	if !e.HasHandler(t.Name) {
		return RunRecord{}, &NoHandlerError{JobType: t.Name}
	}
	if req.Executor == "" {
		req.Executor = ExecutorQueue
	}
	if len(req.TriggeredBy) > 100 {
		req.TriggeredBy = req.TriggeredBy[:100]
	}
	var q dbQuerier = e.pool
	if outer != nil {
		q = outer
	}
	params, err := e.validateParams(ctx, q, t, &req)
	if err != nil {
		return RunRecord{}, err
	}
	paramsJSON, err := json.Marshal(params)
	if err != nil {
		return RunRecord{}, err
	}

	for attempt := 0; ; attempt++ {
		rec, conflictID, err := e.insertRun(ctx, outer, t, req, paramsJSON)
		if err != nil {
			return RunRecord{}, err
		}
		if conflictID == "" {
			e.metrics.RunsCreated.WithLabelValues(t.Name, req.Entry.Label()).Inc()
			e.runLogger(rec).Info("run created", "triggered_by", rec.TriggeredBy, "executor", rec.Executor, "entry", req.Entry.Label())
			return rec, nil
		}
		if conflictID != "-" || attempt > 0 {
			e.metrics.Conflicts.WithLabelValues(t.Name, req.Entry.Label()).Inc()
			if req.Entry == jobtype.EntryCron {
				return RunRecord{}, &SkippedError{JobType: t.Name, ExistingRunID: conflictID}
			}
			if conflictID == "-" {
				conflictID = ""
			}
			pid := ""
			if req.ProjectID != nil {
				pid = *req.ProjectID
			}
			return RunRecord{}, &apitype.ConflictError{JobType: t.Name, ProjectID: pid, ExistingRunID: conflictID}
		}
		// The active run ended between the failed insert and the lookup: start over once.
	}
}

// validateParams applies engine.md §2.3 and resolves the run's project and team.
func (e *Engine) validateParams(ctx context.Context, tx dbQuerier, t jobtype.Type, req *EnqueueRequest) (map[string]any, error) {
	raw := make(map[string]any, len(req.Params)+1)
	for k, v := range req.Params {
		raw[k] = v
	}
	if req.ProjectID != nil {
		pid, ok := jobtype.ParseUUID(*req.ProjectID)
		if !ok {
			return nil, &jobtype.InvalidParamError{Key: "project_id", Reason: "must be a UUID"}
		}
		if given, has := raw["project_id"].(string); has {
			if g, ok := jobtype.ParseUUID(given); ok && g != pid {
				return nil, ErrProjectMismatch
			}
		}
		req.ProjectID = &pid
		// job_runs.project_id is authoritative: the stored params carry the verified
		// project wherever the type takes one (engine.md §2.3 rule 4).
		if declaresAt(t, req.Entry, "project_id") {
			raw["project_id"] = pid
		} else {
			delete(raw, "project_id")
		}
	}
	params, err := jobtype.ValidateParams(t, req.Entry, raw)
	if err != nil {
		return nil, err
	}
	if pid, has := params["project_id"].(string); has && req.ProjectID == nil {
		req.ProjectID = &pid
	}
	if req.ProjectID != nil {
		var teamID string
		err := tx.QueryRow(ctx, `SELECT p.team_id FROM projects p JOIN teams t ON t.id = p.team_id
			WHERE p.id = $1 AND p.deleted_at IS NULL AND t.deleted_at IS NULL`, *req.ProjectID).Scan(&teamID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, &jobtype.InvalidParamError{Key: "project_id", Reason: "project " + *req.ProjectID + " not found or deleted"}
		}
		if err != nil {
			return nil, err
		}
		if req.TeamID == nil && req.Entry == jobtype.EntryCLI {
			req.TeamID = &teamID
		}
	}
	if appID, has := params["app_id"].(string); has {
		var projectID string
		err := tx.QueryRow(ctx, `SELECT a.project_id FROM apps a JOIN projects p ON p.id = a.project_id JOIN teams t ON t.id = p.team_id
			WHERE a.id = $1 AND a.deleted_at IS NULL AND p.deleted_at IS NULL AND t.deleted_at IS NULL`, appID).Scan(&projectID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, &jobtype.InvalidParamError{Key: "app_id", Reason: "app " + appID + " not found or deleted"}
		}
		if err != nil {
			return nil, err
		}
		if req.ProjectID != nil && projectID != *req.ProjectID {
			return nil, &jobtype.InvalidParamError{Key: "app_id", Reason: "app " + appID + " does not belong to project " + *req.ProjectID}
		}
	}
	return params, nil
}

func declaresAt(t jobtype.Type, e jobtype.EntryPoint, name string) bool {
	p, ok := t.Param(name)
	return ok && p.AllowedAt(e)
}

// dbQuerier is a pool or a transaction.
type dbQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// insertRun performs steps 2–6 of engine.md §5.3 once, in a savepoint of outer or, when
// outer is nil, in a transaction of its own. It returns the run, or the id of the
// conflicting active run ("-" when the conflict vanished before it could be read).
func (e *Engine) insertRun(ctx context.Context, outer pgx.Tx, t jobtype.Type, req EnqueueRequest, paramsJSON []byte) (RunRecord, string, error) {
	var (
		tx  pgx.Tx
		err error
	)
	if outer != nil {
		tx, err = outer.Begin(ctx)
	} else {
		tx, err = e.pool.Begin(ctx)
	}
	if err != nil {
		return RunRecord{}, "", err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op once committed

	// The type lock orders keyed inserts against the cron skip check (§5.3 step 2): a
	// keyed insert holds it shared until commit, a cron tick takes it exclusively.
	lockFn := "pg_advisory_xact_lock_shared"
	if req.Entry == jobtype.EntryCron {
		lockFn = "pg_advisory_xact_lock"
		if _, err := tx.Exec(ctx, `SELECT `+lockFn+`(hashtextextended('owlmetry.job_type:' || $1, 0))`, t.Name); err != nil {
			return RunRecord{}, "", err
		}
		var active string
		err := tx.QueryRow(ctx, `SELECT id FROM job_runs WHERE job_type = $1 AND status IN ('pending','running') LIMIT 1`, t.Name).Scan(&active)
		if err == nil {
			return RunRecord{}, active, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return RunRecord{}, "", err
		}
	}

	// The run id is chosen here so the River job can be queued first and the run row
	// inserted with its River job id in one statement — one round trip and one row
	// version fewer per run than inserting, queueing and then updating the link. An
	// overlap conflict still aborts the transaction (or savepoint) and with it the queued
	// job. River's own insert notification may be suppressed by its per-client limiter, so
	// the transaction sends River's notification itself: the producers debounce fetches
	// on their side, and Postgres folds identical notifications of one transaction into
	// one. The channel and payload are River's own (pinned River version, engine.md §18.1).
	runID := uuid.NewString()
	var riverJobID *int64
	if req.Executor != ExecutorLocal {
		res, err := e.river.InsertTx(ctx, tx, runArgs{RunID: runID, kind: t.Name}, &river.InsertOpts{Queue: QueueJobs, MaxAttempts: 1})
		if err != nil {
			return RunRecord{}, "", fmt.Errorf("queue %s: %w", t.Name, err)
		}
		riverJobID = &res.Job.ID
	}

	// One statement takes the type lock and inserts (a CTE the INSERT selects from runs
	// first), which saves another round trip on every enqueue.
	var rec RunRecord
	if req.Executor == ExecutorLocal {
		rec, err = ScanRun(tx.QueryRow(ctx, `
			WITH l AS (SELECT `+lockFn+`(hashtextextended('owlmetry.job_type:' || $1, 0)))
			INSERT INTO job_runs (id, job_type, status, team_id, project_id, triggered_by, params, notify, executor,
			                      scheduled_for, started_at, heartbeat_at, owner_node, owner_instance)
			SELECT $10, $1, 'running', $2, $3, $4, $5, $6, 'local', $7, now(), now(), $8, $9 FROM l
			RETURNING `+RunColumns,
			t.Name, req.TeamID, req.ProjectID, req.TriggeredBy, paramsJSON, req.Notify, req.ScheduledFor, e.nodeID, e.instance, runID))
	} else {
		rec, err = ScanRun(tx.QueryRow(ctx, `
			WITH l AS (SELECT `+lockFn+`(hashtextextended('owlmetry.job_type:' || $1, 0))),
			     n AS (SELECT pg_notify(current_schema() || '.river_insert', $10))
			INSERT INTO job_runs (id, job_type, team_id, project_id, triggered_by, params, notify, executor, scheduled_for, river_job_id)
			SELECT $9, $1, $2, $3, $4, $5, $6, 'queue', $7, $8 FROM l, n
			RETURNING `+RunColumns,
			t.Name, req.TeamID, req.ProjectID, req.TriggeredBy, paramsJSON, req.Notify, req.ScheduledFor, riverJobID, runID,
			riverInsertPayload))
	}
	if db.IsUniqueViolation(err, db.ActiveRunIndex) {
		if rerr := tx.Rollback(ctx); rerr != nil {
			return RunRecord{}, "", rerr
		}
		var q dbQuerier = e.pool
		if outer != nil {
			q = outer
		}
		var existing string
		err := q.QueryRow(ctx, `SELECT id FROM job_runs
			WHERE job_type = $1 AND COALESCE(project_id, '00000000-0000-0000-0000-000000000000'::uuid)
			      = COALESCE($2::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
			  AND status IN ('pending','running')`, t.Name, req.ProjectID).Scan(&existing)
		if errors.Is(err, pgx.ErrNoRows) {
			return RunRecord{}, "-", nil
		}
		if err != nil {
			return RunRecord{}, "", err
		}
		return RunRecord{}, existing, nil
	}
	if err != nil {
		return RunRecord{}, "", err
	}
	if req.AfterInsert != nil {
		if err := req.AfterInsert(ctx, tx, rec); err != nil {
			return RunRecord{}, "", err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return RunRecord{}, "", err
	}
	return rec, "", nil
}
