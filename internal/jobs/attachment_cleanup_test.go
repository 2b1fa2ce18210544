package jobs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// attachment describes one event_attachments row.
type attachment struct {
	path        string
	uploaded    bool
	createdAgo  time.Duration
	deletedAgo  time.Duration // 0: live
	eventID     bool
	eventClient string // "": NULL
	issue       string // "": NULL
}

func seedAttachment(t *testing.T, pool *pgxpool.Pool, project, app string, a attachment) string {
	t.Helper()
	var eventID, client, issue *string
	if a.eventID {
		s := uuid.NewString()
		eventID = &s
	}
	if a.eventClient != "" {
		client = &a.eventClient
	}
	if a.issue != "" {
		issue = &a.issue
	}
	var deleted *float64
	if a.deletedAgo > 0 {
		s := a.deletedAgo.Seconds()
		deleted = &s
	}
	return insertID(t, pool, `INSERT INTO event_attachments (project_id, app_id, event_id, event_client_id, issue_id, original_filename,
		content_type, size_bytes, sha256, storage_path, uploaded_at, created_at, deleted_at)
		VALUES ($1, $2, $3, $4, $5, 'f', 'application/octet-stream', 1, 'x', $6,
		        CASE WHEN $7 THEN now() - make_interval(secs => $8) END, now() - make_interval(secs => $8),
		        now() - make_interval(secs => $9))`,
		project, app, eventID, client, issue, a.path, a.uploaded, a.createdAgo.Seconds(), deleted)
}

// writeFile writes size bytes at root/rel with a modification time age ago.
func writeFile(t *testing.T, root, rel string, size int, age time.Duration) string {
	t.Helper()
	p := filepath.Join(root, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, make([]byte, size), 0o644))
	at := time.Now().Add(-age)
	require.NoError(t, os.Chtimes(p, at, at))
	return p
}

func fileExists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Lstat(p)
	if os.IsNotExist(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

func attachmentDeps(root string, clock jobs.Clock) jobs.Deps {
	d := testDeps(nil)
	d.Clock = clock
	d.Config = jobs.DefaultConfig()
	d.Config.AttachmentsPath = root
	return d
}

func TestAttachmentCleanupRules(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	project := seedProject(t, pool, seedTeam(t, pool))
	app := seedApp(t, pool, project)
	base := t.TempDir()
	root := filepath.Join(base, "attachments")
	outside := writeFile(t, base, "outside.bin", 10, 48*time.Hour)
	const old, fresh = 48 * time.Hour, time.Hour

	rows := map[string]string{}
	add := func(name string, a attachment) { rows[name] = seedAttachment(t, pool, project, app, a) }
	add("softOld", attachment{path: "a/b/soft.bin", uploaded: true, createdAgo: 10 * day, deletedAgo: 8 * day})
	writeFile(t, root, "a/b/soft.bin", 10, old)
	add("softFresh", attachment{path: "c/fresh.bin", uploaded: true, createdAgo: 10 * day, deletedAgo: 8 * day})
	freshFile := writeFile(t, root, "c/fresh.bin", 10, fresh)
	add("softRecent", attachment{path: "d/recent.bin", uploaded: true, createdAgo: 10 * day, deletedAgo: 6 * day})
	writeFile(t, root, "d/recent.bin", 10, old)
	add("incompleteOld", attachment{createdAgo: 25 * time.Hour})
	add("incompleteRecent", attachment{createdAgo: 23 * time.Hour})
	add("pruned", attachment{path: "e/pruned.bin", uploaded: true, createdAgo: 25 * time.Hour, eventID: true, eventClient: uuid.NewString()})
	writeFile(t, root, "e/pruned.bin", 10, old)
	alive := uuid.NewString()
	exec(t, pool, `INSERT INTO events (app_id, session_id, level, message, "timestamp", client_event_id) VALUES ($1, gen_random_uuid(), 'info', 'm', now(), $2)`, app, alive)
	add("eventAlive", attachment{uploaded: true, createdAgo: 25 * time.Hour, eventID: true, eventClient: alive})
	issue := insertID(t, pool, `INSERT INTO issues (app_id, project_id, title, first_seen_at, last_seen_at) VALUES ($1, $2, 'boom', now(), now())`, app, project)
	add("issueLinked", attachment{uploaded: true, createdAgo: 25 * time.Hour, eventID: true, eventClient: uuid.NewString(), issue: issue})
	add("noClientID", attachment{uploaded: true, createdAgo: 25 * time.Hour, eventID: true})
	add("prunedRecent", attachment{uploaded: true, createdAgo: 23 * time.Hour, eventID: true, eventClient: uuid.NewString()})
	add("outside", attachment{path: "../outside.bin", uploaded: true, createdAgo: 10 * day, deletedAgo: 8 * day})
	absFile := writeFile(t, root, "f/abs.bin", 10, old)
	add("absolute", attachment{path: absFile, uploaded: true, createdAgo: 10 * day})
	relFile := writeFile(t, root, "g/rel.bin", 10, old)
	add("relative", attachment{path: "g/rel.bin", uploaded: true, createdAgo: 10 * day})

	orphan := writeFile(t, root, "h/i/orphan.bin", 100, old)
	upload := writeFile(t, root, "fresh-upload.bin", 100, fresh)
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "link.bin")))
	outsideDir := filepath.Join(base, "elsewhere")
	hidden := writeFile(t, outsideDir, "old.bin", 10, old)
	require.NoError(t, os.Symlink(outsideDir, filepath.Join(root, "linkdir")))

	res, err, prog := runHandler(bg, t, pool, attachmentDeps(root, newFakeClock(time.Now())), jobtype.AttachmentCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(3), res["soft_deleted_removed"])
	require.Equal(t, int64(1), res["incomplete_removed"])
	require.Equal(t, int64(1), res["pruned_event_attachments_removed"])
	require.Equal(t, int64(1), res["disk_orphans_removed"])
	require.Equal(t, int64(100), res["bytes_freed"])
	require.Equal(t, int64(1), res["file_errors"], "the path outside the root")
	require.Equal(t, false, res["_silent"])
	require.NotContains(t, res, "disk_sweep_skipped")

	for name, id := range rows {
		gone := map[string]bool{"softOld": true, "softFresh": true, "incompleteOld": true, "pruned": true, "outside": true}[name]
		require.Equal(t, !gone, count(t, pool, `SELECT count(*) FROM event_attachments WHERE id = $1`, id) == 1, name)
	}
	require.False(t, fileExists(t, filepath.Join(root, "a")), "emptied directories go, up to the root")
	require.False(t, fileExists(t, filepath.Join(root, "e")))
	require.False(t, fileExists(t, filepath.Join(root, "h")))
	require.False(t, fileExists(t, orphan))
	require.True(t, fileExists(t, root))
	for _, p := range []string{freshFile, filepath.Join(root, "d/recent.bin"), absFile, relFile, upload, outside, hidden,
		filepath.Join(root, "link.bin"), filepath.Join(root, "linkdir")} {
		require.True(t, fileExists(t, p), p)
	}
	require.Equal(t, int64(6), prog.last().processed)
	require.Equal(t, "files without a row · 6 removed", prog.last().message)

	// The fresh file of the removed row is an orphan now; it goes once it is old enough.
	at := time.Now().Add(-old)
	require.NoError(t, os.Chtimes(freshFile, at, at))
	res, err, _ = runHandler(bg, t, pool, attachmentDeps(root, newFakeClock(time.Now())), jobtype.AttachmentCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), res["disk_orphans_removed"])
	require.False(t, fileExists(t, filepath.Join(root, "c")))
	require.True(t, fileExists(t, upload))
}

// The process clock decides a file's age as well as the database clock: a file is only
// deleted when both say it is older than 24 hours.
func TestAttachmentCleanupFileAgeFollowsTheInjectedClock(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	root := t.TempDir()
	orphan := writeFile(t, root, "orphan.bin", 10, 30*time.Hour)

	res, err, _ := runHandler(bg, t, tdb.Pool, attachmentDeps(root, newFakeClock(time.Now().Add(-2*day))), jobtype.AttachmentCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(0), res["disk_orphans_removed"])
	require.Equal(t, true, res["_silent"])
	require.True(t, fileExists(t, orphan))

	res, err, _ = runHandler(bg, t, tdb.Pool, attachmentDeps(root, newFakeClock(time.Now())), jobtype.AttachmentCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), res["disk_orphans_removed"])
	require.False(t, fileExists(t, orphan))
}

func TestAttachmentCleanupWithoutADirectory(t *testing.T) {
	t.Parallel()
	tdb := newDB(t)
	pool := tdb.Pool
	project := seedProject(t, pool, seedTeam(t, pool))
	app := seedApp(t, pool, project)
	seedAttachment(t, pool, project, app, attachment{path: "x.bin", uploaded: true, createdAgo: 10 * day, deletedAgo: 8 * day})
	root := filepath.Join(t.TempDir(), "missing")
	res, err, _ := runHandler(bg, t, pool, attachmentDeps(root, newFakeClock(time.Now())), jobtype.AttachmentCleanup, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), res["soft_deleted_removed"])
	require.Equal(t, int64(0), res["file_errors"])
	require.Equal(t, fmt.Sprintf("attachments directory %s does not exist", root), res["disk_sweep_skipped"])
}

// Rows go by keyset pages of 1,000 and files by batches of 1,000; a cancellation between
// batches returns what was removed.
func TestAttachmentCleanupBatches(t *testing.T) {
	t.Parallel()
	t.Run("rows and files", func(t *testing.T) {
		t.Parallel()
		tdb := newDB(t)
		pool := tdb.Pool
		project := seedProject(t, pool, seedTeam(t, pool))
		app := seedApp(t, pool, project)
		exec(t, pool, `INSERT INTO event_attachments (project_id, app_id, original_filename, content_type, size_bytes, sha256, storage_path, deleted_at)
			SELECT $1, $2, 'f', 't', 1, 'x', '', now() - interval '8 days' FROM generate_series(1, 2500)`, project, app)
		root := t.TempDir()
		for i := range 1001 {
			writeFile(t, root, fmt.Sprintf("d%d/f%d.bin", i%7, i), 1, 48*time.Hour)
		}
		var batches int
		deps := attachmentDeps(root, newFakeClock(time.Now()))
		deps.CheckpointFunc = func(_ context.Context, p jobs.Checkpoint) {
			if p == jobs.CheckpointAttachmentBatch {
				batches++
			}
		}
		res, err, _ := runHandler(bg, t, pool, deps, jobtype.AttachmentCleanup, nil)
		require.NoError(t, err)
		require.Equal(t, int64(2500), res["soft_deleted_removed"])
		require.Equal(t, int64(1001), res["disk_orphans_removed"])
		require.Equal(t, int64(1001), res["bytes_freed"])
		// Three pages of soft-deleted rows, one empty page for each of the two other row
		// phases, two batches of files.
		require.Equal(t, 3+1+1+2, batches)
		entries, err := os.ReadDir(root)
		require.NoError(t, err)
		require.Empty(t, entries)
	})
	t.Run("stopped between batches", func(t *testing.T) {
		t.Parallel()
		tdb := newDB(t)
		pool := tdb.Pool
		project := seedProject(t, pool, seedTeam(t, pool))
		app := seedApp(t, pool, project)
		exec(t, pool, `INSERT INTO event_attachments (project_id, app_id, original_filename, content_type, size_bytes, sha256, storage_path, deleted_at)
			SELECT $1, $2, 'f', 't', 1, 'x', '', now() - interval '8 days' FROM generate_series(1, 2500)`, project, app)
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		deps := attachmentDeps(t.TempDir(), newFakeClock(time.Now()))
		deps.CheckpointFunc = cancelAt(jobs.CheckpointAttachmentBatch, 2, cancel)
		_, err, _ := runHandler(ctx, t, pool, deps, jobtype.AttachmentCleanup, nil)
		partial := stoppedResult(t, err)
		require.Equal(t, int64(1000), partial["soft_deleted_removed"])
		require.Equal(t, int64(1500), count(t, pool, `SELECT count(*) FROM event_attachments`))
	})
	t.Run("stopped between phases", func(t *testing.T) {
		t.Parallel()
		tdb := newDB(t)
		pool := tdb.Pool
		project := seedProject(t, pool, seedTeam(t, pool))
		app := seedApp(t, pool, project)
		seedAttachment(t, pool, project, app, attachment{uploaded: true, createdAgo: 10 * day, deletedAgo: 8 * day})
		seedAttachment(t, pool, project, app, attachment{createdAgo: 2 * day})
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		deps := attachmentDeps(t.TempDir(), newFakeClock(time.Now()))
		deps.CheckpointFunc = cancelAt(jobs.CheckpointAttachmentPhase, 2, cancel)
		_, err, _ := runHandler(ctx, t, pool, deps, jobtype.AttachmentCleanup, nil)
		partial := stoppedResult(t, err)
		require.Equal(t, int64(1), partial["soft_deleted_removed"])
		require.Equal(t, int64(0), partial["incomplete_removed"])
		require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM event_attachments`))
	})
}
