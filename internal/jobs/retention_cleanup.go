package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/engine"
)

// retentionDefaults are the effective retentions of a project whose column is NULL
// (schema.md §3.5), and the source column of each event table.
var retentionDefaults = map[string]struct {
	column string
	days   int
}{
	"events":        {"retention_days_events", 120},
	"metric_events": {"retention_days_metrics", 365},
	"funnel_events": {"retention_days_funnels", 365},
}

// RetentionCleanup enforces each live project's retention on the three event tables
// (jobs.md §4). Whole partitions older than every project's retention are dropped; the
// rest is deleted per project in bounded batches, so no statement holds locks on a live
// partition for longer than a batch.
type RetentionCleanup struct {
	deps *Deps
}

// retentionProject is a live project with its effective retention in days per table.
type retentionProject struct {
	id   string
	days map[string]int
}

// retentionResult accumulates the counters of jobs.md §4.7.
type retentionResult struct {
	projects int64
	deleted  map[string]int64
	dropped  []string
}

func (r *retentionResult) total() int64 {
	return r.deleted["events"] + r.deleted["metric_events"] + r.deleted["funnel_events"]
}

func (r *retentionResult) result() engine.Result {
	return engine.Result{
		"projects_processed":    r.projects,
		"events_deleted":        r.deleted["events"],
		"metric_events_deleted": r.deleted["metric_events"],
		"funnel_events_deleted": r.deleted["funnel_events"],
		"partitions_dropped":    r.dropped,
		"_silent":               r.total() == 0,
	}
}

// Run executes one retention_cleanup run.
func (h *RetentionCleanup) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	d := h.deps
	log := d.log(run)
	res := &retentionResult{deleted: map[string]int64{}, dropped: []string{}}
	t0, err := dbNow(ctx, run.DB)
	if err != nil {
		return nil, err
	}

	// Phase A candidates: partitions older than the longest retention any project not yet
	// hard-deleted has, since a soft-deleted project may still be restored.
	globalCutoff := map[string]time.Time{}
	for _, t := range eventTables {
		def := retentionDefaults[t.name]
		var days int
		if err := run.DB.QueryRow(ctx, fmt.Sprintf(`SELECT COALESCE(max(COALESCE(%s, %d)), %d) FROM projects`,
			def.column, def.days, def.days)).Scan(&days); err != nil {
			return nil, fmt.Errorf("read longest %s retention: %w", t.name, err)
		}
		globalCutoff[t.name] = t0.Add(-time.Duration(days) * 24 * time.Hour)
	}
	parts, err := listEventPartitions(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	var candidates []eventPartition
	for _, t := range eventTables {
		for _, p := range parts {
			if p.Parent == t.name && p.olderThan(globalCutoff[t.name]) {
				candidates = append(candidates, p)
			}
		}
	}
	projects, err := liveRetentionProjects(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	total := int64(len(candidates) + len(projects))
	var processed int64

	for i, p := range candidates {
		if err := d.stopPoint(ctx, CheckpointRetentionPartition); err != nil {
			return nil, engine.Stopped(res.result())
		}
		report(run, processed, total, fmt.Sprintf("dropping %s (%d of %d expired partitions)", p.Name, i+1, len(candidates)))
		rows, err := d.removePartition(ctx, run.DB, p, "retention", globalCutoff[p.Parent])
		var lockErr *LockTimeoutError
		switch {
		case errors.Is(err, errStopped):
			return nil, engine.Stopped(res.result())
		case errors.As(err, &lockErr):
			// Skipped for this run; its rows stay eligible for phase B (jobs.md §4.9).
			log.Warn("partition skipped after lock timeouts", "partition", p.Name, "error", err)
		case errors.Is(err, errPartitionGone):
			log.Info("partition already removed", "partition", p.Name)
		case err != nil:
			return nil, fmt.Errorf("remove %s: %w", p.Name, err)
		default:
			res.deleted[p.Parent] += rows
			res.dropped = append(res.dropped, p.Name)
		}
		processed++
	}

	// Phase B: what is left of each table, child by child, per live project.
	children := map[string][]db.Child{}
	for _, t := range eventTables {
		if children[t.name], err = attachedChildren(ctx, run.DB, t.name); err != nil {
			return nil, err
		}
	}
	batches := newBatchRunner(d, run.DB, CheckpointRetentionBatch)
	for i, proj := range projects {
		if err := d.stopPoint(ctx, CheckpointRetentionProject); err != nil {
			return nil, engine.Stopped(res.result())
		}
		progress := func() {
			report(run, processed, total, fmt.Sprintf("%d of %d projects · %s rows deleted", i, len(projects), formatCount(res.total())))
		}
		progress()
		apps, err := liveAppIDs(ctx, run.DB, proj.id)
		if err != nil {
			return nil, err
		}
		for _, t := range eventTables {
			if len(apps) == 0 {
				break
			}
			cutoff := t0.Add(-time.Duration(proj.days[t.name]) * 24 * time.Hour)
			audit := newAudit(&proj.id, t.name, "retention", cutoff)
			for _, ch := range children[t.name] {
				if !ch.From.Before(cutoff) {
					break // children are sorted; none later holds expired rows
				}
				for _, app := range apps {
					err := batches.deleteEventRows(ctx, t, ch.Name, app, cutoff, audit, func(n int64) {
						res.deleted[t.name] += n
						progress()
					})
					if errors.Is(err, errStopped) {
						return nil, engine.Stopped(res.result())
					}
					if err != nil {
						return nil, fmt.Errorf("project %s: %w", proj.id, err)
					}
				}
			}
		}
		res.projects++
		processed++
		report(run, processed, total, fmt.Sprintf("%d of %d projects · %s rows deleted", i+1, len(projects), formatCount(res.total())))
	}
	return res.result(), nil
}

// liveRetentionProjects reads the live projects (jobs.md §3.2.1) with their effective
// retentions, in created_at, id order.
func liveRetentionProjects(ctx context.Context, q db.DBTX) ([]retentionProject, error) {
	rows, err := q.Query(ctx, `
		SELECT p.id::text, COALESCE(p.retention_days_events, 120), COALESCE(p.retention_days_metrics, 365),
		       COALESCE(p.retention_days_funnels, 365)
		  FROM projects p
		  JOIN teams t ON t.id = p.team_id
		 WHERE p.deleted_at IS NULL AND t.deleted_at IS NULL
		 ORDER BY p.created_at, p.id`)
	if err != nil {
		return nil, fmt.Errorf("list live projects: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (retentionProject, error) {
		var (
			p       retentionProject
			e, m, f int
		)
		err := r.Scan(&p.id, &e, &m, &f)
		p.days = map[string]int{"events": e, "metric_events": m, "funnel_events": f}
		return p, err
	})
}

// liveAppIDs returns the ids of a project's apps that are not soft-deleted.
func liveAppIDs(ctx context.Context, q db.DBTX, projectID string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT id::text FROM apps WHERE project_id = $1 AND deleted_at IS NULL ORDER BY id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list apps of project %s: %w", projectID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
