package engine_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/notify"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A system run that fails on a queue worker has its alert queued in the outbox by the
// terminal transition and sent by the same process's internal workers; a silent
// completion sends nothing.
func TestTerminalTransitionsReachTheOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	logs := &lockedBuffer{}
	svc := notify.New(notify.Options{
		Config: notify.Config{AlertEmails: []string{"ops@example.com"}, AlertOn: notify.AlertAll},
		Pool:   tdb.Pool, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	e := newEngine(t, tdb, map[string]engine.Handler{
		jobtype.PartitionCreation: noop(), // _silent: true
		jobtype.AttachmentCleanup: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			return nil, context.DeadlineExceeded
		}),
	}, func(c *engine.Config) { c.Notifier = svc })

	silent := waitRun(t, e, enqueueSystem(t, e, jobtype.PartitionCreation).ID, terminal)
	failed := waitRun(t, e, enqueueSystem(t, e, jobtype.AttachmentCleanup).ID, terminal)
	require.Equal(t, "failed", string(failed.Status))

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "Job failed: Attachment Cleanup") {
		require.True(t, time.Now().Before(deadline), "no alert for the failed run; log:\n%s", logs.String())
		time.Sleep(20 * time.Millisecond)
	}
	var queued int
	require.NoError(t, tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'email_delivery'`).Scan(&queued))
	require.Equal(t, 1, queued, "the silent completion of %s queued nothing", silent.ID)
}
