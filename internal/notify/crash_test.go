package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// The child process of TestCrashMidSend reads these.
const (
	childEnvDB   = "OWLMETRY_NOTIFY_CRASH_CHILD_DB"
	childEnvSMTP = "OWLMETRY_NOTIFY_CRASH_CHILD_SMTP"
)

// runCrashChild is a server replica in miniature: a River client working the internal
// queue with the outbox's worker and the production job timeout. It runs until killed.
func runCrashChild() int {
	ctx := context.Background()
	pool, err := db.OpenPool(ctx, os.Getenv(childEnvDB), db.PoolOptions{MaxConns: 8})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	host, port, _ := net.SplitHostPort(os.Getenv(childEnvSMTP))
	p, _ := strconv.Atoi(port)
	svc := New(Options{
		Config: Config{SMTP: &SMTPConfig{Host: host, Port: p, TLS: TLSNone, Timeout: 10 * time.Minute}},
		Pool:   pool, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	workers := river.NewWorkers()
	svc.RegisterWorkers(workers)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{QueueInternal: {MaxWorkers: 5}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		JobTimeout:        -1,
		MaxAttempts:       1,
		// The killed child must not hold River's leadership, so the restarted replica
		// becomes leader and runs the rescuer at once.
		LeaderElectionDisabled: true,
		Logger:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	if err := client.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	select {} // until SIGKILL
}

// A replica is killed while its e-mails are in the DATA phase, before the server accepted
// them. A restarted replica delivers each exactly once.
func TestCrashMidSend(t *testing.T) {
	t.Parallel()
	// The bundle enqueues with an insert-only client: nothing in this process works jobs
	// until the restart.
	b := setup(t, setupOptions{noWorker: true, cfg: Config{AlertEmails: []string{"ops@example.com"}}})
	b.sink.mu.Lock()
	b.sink.hold = true
	b.sink.mu.Unlock()
	s := b.seedTeam(t)
	user := b.seedUser(t, "dev@example.com", "")
	alertRun := b.finish(t, FinishedRun{JobType: jobtype.AttachmentCleanup, Status: "failed", TriggeredBy: "schedule",
		Error: ptr("disk full"), CompletedAt: time.Now()})
	b.finish(t, FinishedRun{JobType: jobtype.AppleAdsSync, Status: "completed", TeamID: &s.teamID,
		TriggeredBy: "manual:user:" + user, Notify: true, CompletedAt: time.Now()})
	require.Len(t, b.emailJobs(t), 2)

	var childOut bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnvDB+"="+b.dbURL, childEnvSMTP+"="+b.sink.addr)
	cmd.Stdout, cmd.Stderr = &childOut, &childOut
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	// Both e-mails reach DATA in the child; then it dies without a word.
	for i := range 2 {
		select {
		case <-b.sink.holding:
		case <-exited:
			t.Fatalf("child exited early (%v): %s", waitErr, childOut.String())
		case <-time.After(waitFor):
			t.Fatalf("only %d of 2 e-mails reached DATA: %s", i, childOut.String())
		}
	}
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no deferred code, no clean shutdown
	select {
	case <-exited:
	case <-time.After(waitFor):
		t.Fatal("killed child did not exit")
	}
	b.sink.releaseHolds() // the dropped connections' DATA ends without acceptance
	require.Empty(t, b.sink.all())

	jobs := b.emailJobs(t)
	require.Len(t, jobs, 2)
	for _, j := range jobs {
		require.Equal(t, rivertype.JobStateRunning, j.State, "the dead replica's attempts are stuck")
	}
	ds := b.deliveries(t, user)
	require.Equal(t, DeliveryPending, ds[0].Status)

	// River rescues a stuck job once its attempt timed out and it has been running for
	// RescueStuckJobsAfter. The restarted replica uses short values for both, and starts
	// only when the dead attempts are that old, so its first rescue pass takes them.
	restarted := New(Options{
		Config: Config{SMTP: b.sink.smtpConfig(), AlertEmails: []string{"ops@example.com"}},
		Pool:   b.pool, Metrics: b.metrics, RetryDelayFunc: quickRetry, JobTimeout: 3 * time.Second,
		Logger: quietLogger(),
	})
	waitUntil(t, func() bool {
		var old bool
		require.NoError(t, b.pool.QueryRow(b.ctx,
			`SELECT now() - max(attempted_at) > interval '3500 milliseconds' FROM river_job WHERE kind = $1`,
			KindEmailDelivery).Scan(&old))
		return old
	})
	client := startWorkerClient(t, b.pool, restarted, func(c *river.Config) {
		c.RescueStuckJobsAfter = 3 * time.Second
	})
	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobCancelled)
	defer cancel()

	// The rescued jobs wait as retryable for River's scheduler; JobRetry brings them on.
	done := map[int64]bool{}
	deadline := time.After(waitFor)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(done) < 2 {
		select {
		case ev := <-events:
			require.Equal(t, river.EventKindJobCompleted, ev.Kind)
			done[ev.Job.ID] = true
		case <-tick.C:
			for _, j := range listEmailJobs(t, client) {
				if j.State == rivertype.JobStateRetryable {
					_, err := client.JobRetry(b.ctx, j.ID)
					require.NoError(t, err)
				}
			}
		case <-deadline:
			t.Fatalf("e-mails not delivered after restart; %d done", len(done))
		}
	}

	got := b.sink.all()
	require.Len(t, got, 2, "each e-mail exactly once")
	subjects := map[string]bool{}
	for _, r := range got {
		subjects[r.To[0]+" "+r.parse(t).Subject] = true
	}
	require.Equal(t, map[string]bool{
		"ops@example.com [Owlmetry] ❌ Job failed: Attachment Cleanup": true,
		"dev@example.com [Owlmetry] ✅ Job completed: Apple Ads Sync":  true,
	}, subjects)
	d := b.deliveries(t, user)[0]
	require.Equal(t, DeliverySent, d.Status)
	require.Equal(t, 2.0, d.Metadata["attempts"], "the killed attempt counts")
	require.Equal(t, "failed", b.runStatus(t, alertRun.ID))
}

// waitUntil polls cond until it holds, failing at the deadline.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
