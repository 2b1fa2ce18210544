package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/engine"
)

// Grace periods and batch size of jobs.md §8.3.
const (
	attachmentSoftDeleteGrace = 7 * 24 * time.Hour
	attachmentFileGrace       = 24 * time.Hour
	attachmentBatch           = 1000
)

// AttachmentCleanup removes expired attachment rows with their files, and files no row
// references, under OWLMETRY_ATTACHMENTS_PATH (jobs.md §8). A file written within the
// last 24 hours is never deleted, whatever its row says: it may be an upload in progress.
type AttachmentCleanup struct {
	deps *Deps
}

// attachmentRun is the state of one run.
type attachmentRun struct {
	d          *Deps
	run        *engine.Run
	log        *slog.Logger
	root       *attachmentRoot
	rootErr    error
	fileCutoff time.Time
	phase      string

	softDeleted, incomplete, pruned, orphans, bytesFreed, fileErrors int64
	sweepSkipped                                                     string
}

func (a *attachmentRun) removed() int64 {
	return a.softDeleted + a.incomplete + a.pruned + a.orphans
}

func (a *attachmentRun) result() engine.Result {
	res := engine.Result{
		"soft_deleted_removed":             a.softDeleted,
		"incomplete_removed":               a.incomplete,
		"pruned_event_attachments_removed": a.pruned,
		"disk_orphans_removed":             a.orphans,
		"bytes_freed":                      a.bytesFreed,
		"file_errors":                      a.fileErrors,
		"_silent":                          a.removed() == 0 && a.fileErrors == 0,
	}
	if a.sweepSkipped != "" {
		res["disk_sweep_skipped"] = a.sweepSkipped
	}
	return res
}

func (a *attachmentRun) progress() {
	report(a.run, a.removed(), 0, fmt.Sprintf("%s · %s removed", a.phase, formatCount(a.removed())))
}

// attachmentPhase is one of the three row phases: which rows it removes, with the
// cutoff as $1, and its counter.
type attachmentPhase struct {
	name    string
	where   string
	counter func(a *attachmentRun) *int64
	// prunedOnly keeps the candidates whose event still exists (phase 3).
	prunedOnly bool
}

var attachmentPhases = []attachmentPhase{
	{
		name:    "soft-deleted attachments",
		where:   `deleted_at IS NOT NULL AND deleted_at < $1`,
		counter: func(a *attachmentRun) *int64 { return &a.softDeleted },
	},
	{
		name:    "incomplete uploads",
		where:   `uploaded_at IS NULL AND created_at < $1 AND deleted_at IS NULL`,
		counter: func(a *attachmentRun) *int64 { return &a.incomplete },
	},
	{
		name: "attachments of pruned events",
		where: `issue_id IS NULL AND deleted_at IS NULL AND uploaded_at IS NOT NULL AND event_id IS NOT NULL
			AND event_client_id IS NOT NULL AND created_at < $1`,
		counter:    func(a *attachmentRun) *int64 { return &a.pruned },
		prunedOnly: true,
	},
}

// Run executes one attachment_cleanup run.
func (h *AttachmentCleanup) Run(ctx context.Context, run *engine.Run) (engine.Result, error) {
	d := h.deps
	t0, err := dbNow(ctx, run.DB)
	if err != nil {
		return nil, err
	}
	// Files are judged by the older of the two clocks, so a database clock ahead of the
	// file system's can never shorten the grace period.
	now := t0
	if pc := d.Clock.Now(); pc.Before(now) {
		now = pc
	}
	a := &attachmentRun{d: d, run: run, log: d.log(run), fileCutoff: now.Add(-attachmentFileGrace)}
	a.root, a.rootErr = openAttachmentRoot(d.Config.AttachmentsPath)
	if a.root != nil {
		defer a.root.Close()
	}

	cutoffs := []time.Time{t0.Add(-attachmentSoftDeleteGrace), t0.Add(-attachmentFileGrace), t0.Add(-attachmentFileGrace)}
	for i, ph := range attachmentPhases {
		if err := d.stopPoint(ctx, CheckpointAttachmentPhase); err != nil {
			return nil, engine.Stopped(a.result())
		}
		a.phase = ph.name
		a.progress()
		if err := a.rowPhase(ctx, ph, cutoffs[i]); err != nil {
			if errors.Is(err, errStopped) {
				return nil, engine.Stopped(a.result())
			}
			return nil, fmt.Errorf("%s: %w", ph.name, err)
		}
	}
	if err := d.stopPoint(ctx, CheckpointAttachmentPhase); err != nil {
		return nil, engine.Stopped(a.result())
	}
	a.phase = "files without a row"
	a.progress()
	if err := a.diskSweep(ctx); err != nil {
		if errors.Is(err, errStopped) {
			return nil, engine.Stopped(a.result())
		}
		return nil, fmt.Errorf("disk sweep: %w", err)
	}
	return a.result(), nil
}

// attachmentRow is a candidate row.
type attachmentRow struct {
	id, appID   string
	eventClient *string
	storagePath string
}

// rowPhase removes the rows of one phase by keyset pagination on id, a batch at a time.
func (a *attachmentRun) rowPhase(ctx context.Context, ph attachmentPhase, cutoff time.Time) error {
	pool := a.run.DB
	selectSQL := `SELECT id::text, app_id::text, event_client_id::text, storage_path FROM event_attachments
		WHERE ` + ph.where + ` AND id > $2 ORDER BY id LIMIT $3`
	last := "00000000-0000-0000-0000-000000000000"
	for {
		if err := a.d.stopPoint(ctx, CheckpointAttachmentBatch); err != nil {
			return err
		}
		rows, err := pool.Query(ctx, selectSQL, cutoff, last, attachmentBatch)
		if err != nil {
			return stopped(ctx, err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (attachmentRow, error) {
			var x attachmentRow
			return x, r.Scan(&x.id, &x.appID, &x.eventClient, &x.storagePath)
		})
		if err != nil {
			return stopped(ctx, err)
		}
		if len(batch) == 0 {
			return nil
		}
		last = batch[len(batch)-1].id
		victims := batch
		if ph.prunedOnly {
			if victims, err = a.withoutEvent(ctx, batch); err != nil {
				return stopped(ctx, err)
			}
		}
		if len(victims) > 0 {
			n, err := a.removeRows(ctx, ph.where, cutoff, victims)
			if err != nil {
				return err
			}
			*ph.counter(a) += n
			a.progress()
		}
		if len(batch) < attachmentBatch {
			return nil
		}
	}
}

// withoutEvent keeps the candidates whose (app_id, event_client_id) no longer has an
// event, found with one lookup per batch through each child's client_eid_idx.
func (a *attachmentRun) withoutEvent(ctx context.Context, batch []attachmentRow) ([]attachmentRow, error) {
	apps := make([]string, len(batch))
	clients := make([]string, len(batch))
	for i, x := range batch {
		apps[i], clients[i] = x.appID, *x.eventClient
	}
	rows, err := a.run.DB.Query(ctx, `
		SELECT c.app_id::text, c.cid::text FROM unnest($1::uuid[], $2::uuid[]) AS c(app_id, cid)
		 WHERE EXISTS (SELECT 1 FROM events e WHERE e.app_id = c.app_id AND e.client_event_id = c.cid)`, apps, clients)
	if err != nil {
		return nil, err
	}
	found := map[[2]string]bool{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			rows.Close()
			return nil, err
		}
		found[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []attachmentRow
	for _, x := range batch {
		if !found[[2]string{x.appID, *x.eventClient}] {
			out = append(out, x)
		}
	}
	return out, nil
}

// removeRows deletes one batch of rows — re-checking the phase's condition, so a row
// that changed meanwhile stays — and unlinks their files, in one transaction that
// commits after the files are gone. Once started it finishes on a context detached from
// the cancellation (jobs.md §3.1 rule 1): rows never outlive files they lost, except
// when the commit itself fails, which the next run tolerates (a missing file is fine).
func (a *attachmentRun) removeRows(ctx context.Context, where string, cutoff time.Time, victims []attachmentRow) (int64, error) {
	ids := make([]string, len(victims))
	for i, x := range victims {
		ids[i] = x.id
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var n int64
	err := a.d.inTx(wctx, a.run.DB, func(tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(wctx, `DELETE FROM event_attachments WHERE id = ANY($2::uuid[]) AND `+where+` RETURNING storage_path`, cutoff, ids)
		if err != nil {
			return err
		}
		paths, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		n = int64(len(paths))
		for _, p := range paths {
			a.removeFile(p)
		}
		return nil
	})
	return n, err
}

// removeFile unlinks the file of a removed row: only a regular file inside the root,
// reached without symlinks and older than the file grace period. A missing file is
// fine; other problems are logged and counted.
func (a *attachmentRun) removeFile(storagePath string) {
	if storagePath == "" {
		return
	}
	if a.root == nil {
		if !errors.Is(a.rootErr, fs.ErrNotExist) {
			a.fileError(storagePath, a.rootErr)
		}
		return
	}
	rel, ok := a.root.rel(storagePath)
	if !ok {
		a.fileError(storagePath, errors.New("path is outside the attachments directory"))
		return
	}
	info, err := a.root.regularFile(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case errors.Is(err, errNotRegular):
		a.log.Info("attachment path is not a regular file; left alone", "path", storagePath)
		return
	case err != nil:
		a.fileError(storagePath, err)
		return
	}
	if !info.ModTime().Before(a.fileCutoff) {
		// Written within the grace period: the disk sweep takes it once it is older.
		return
	}
	if err := a.root.remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.fileError(storagePath, err)
	}
}

func (a *attachmentRun) fileError(path string, err error) {
	a.fileErrors++
	a.log.Warn("attachment file not removed", "path", path, "error", err)
}

// diskCandidate is a file old enough for the disk sweep.
type diskCandidate struct {
	rel  string
	size int64
}

// diskSweep removes the files under the root that no row references and that are older
// than the file grace period (jobs.md §8.3 step 4), a batch of 1,000 at a time.
func (a *attachmentRun) diskSweep(ctx context.Context) error {
	if a.root == nil {
		if errors.Is(a.rootErr, fs.ErrNotExist) {
			a.sweepSkipped = fmt.Sprintf("attachments directory %s does not exist", a.d.Config.AttachmentsPath)
		} else {
			a.sweepSkipped = fmt.Sprintf("attachments directory %s cannot be opened: %v", a.d.Config.AttachmentsPath, a.rootErr)
		}
		return nil
	}
	var batch []diskCandidate
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := a.d.stopPoint(ctx, CheckpointAttachmentBatch); err != nil {
			return err
		}
		err := a.sweepBatch(ctx, batch)
		batch = batch[:0]
		return err
	}
	err := a.root.walk(ctx, func(rel string, info fs.FileInfo) error {
		if !info.ModTime().Before(a.fileCutoff) {
			return nil
		}
		batch = append(batch, diskCandidate{rel: rel, size: info.Size()})
		if len(batch) == attachmentBatch {
			return flush()
		}
		return nil
	}, func(path string, err error) { a.fileError(path, err) })
	if err == nil {
		err = flush()
	}
	return stopped(ctx, err)
}

// sweepBatch removes the candidates no row references by its relative or absolute path.
func (a *attachmentRun) sweepBatch(ctx context.Context, batch []diskCandidate) error {
	rels := make([]string, len(batch))
	abss := make([]string, len(batch))
	for i, c := range batch {
		rels[i], abss[i] = c.rel, a.root.absolute(c.rel)
	}
	rows, err := a.run.DB.Query(ctx, `
		SELECT c.rel FROM unnest($1::text[], $2::text[]) AS c(rel, abs)
		 WHERE EXISTS (SELECT 1 FROM event_attachments e
		                WHERE e.storage_path = ANY(ARRAY[c.rel, c.abs]) AND e.storage_path <> '')`, rels, abss)
	if err != nil {
		return err
	}
	referenced, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	keep := make(map[string]bool, len(referenced))
	for _, r := range referenced {
		keep[r] = true
	}
	for _, c := range batch {
		if keep[c.rel] {
			continue
		}
		// Look again: the file may have been rewritten since the walk saw it.
		info, err := a.root.regularFile(c.rel)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errNotRegular) {
				a.fileError(c.rel, err)
			}
			continue
		}
		if !info.ModTime().Before(a.fileCutoff) {
			continue
		}
		if err := a.root.remove(c.rel); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.fileError(c.rel, err)
			}
			continue
		}
		a.orphans++
		a.bytesFreed += info.Size()
	}
	a.progress()
	return nil
}
