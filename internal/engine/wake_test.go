package engine_test

import (
	"testing"
	"time"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

// A run enqueued right after another starts without waiting for River's poll. River
// suppresses its own insert notification inside FetchCooldown; with the poll an hour
// away, the second run would never start before the test's deadline.
func TestBackToBackEnqueuesWakeTheWorkers(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	b := newBlocker()
	close(b.release)
	e := newEngine(t, tdb, map[string]engine.Handler{jobtype.PartitionCreation: b, jobtype.AttachmentCleanup: b},
		func(c *engine.Config) {
			c.FetchPollInterval = time.Hour
			c.FetchCooldown = 300 * time.Millisecond
		})
	first := enqueueSystem(t, e, jobtype.PartitionCreation)
	b.waitStarted(t)
	second := enqueueSystem(t, e, jobtype.AttachmentCleanup) // inside the cooldown of the first notification
	waitRun(t, e, first.ID, terminal)
	waitRun(t, e, second.ID, terminal)
}
