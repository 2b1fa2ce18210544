package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// An SMTP outage while runs finish: the runs' rows are as the engine wrote them, every
// e-mail waits in River, and once the server is back each arrives exactly once.
func TestOutageThenRecovery(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{cfg: Config{AlertEmails: []string{"ops@example.com"}}})
	b.sink.stop() // connections are refused from now on
	s := b.seedTeam(t)
	user := b.seedUser(t, "dev@example.com", "")
	key := b.seedAPIKey(t, s.teamID, user, false)
	started, completed := span(2 * time.Second)

	runs := []FinishedRun{
		b.finish(t, FinishedRun{JobType: jobtype.IssueScan, Status: "failed", TriggeredBy: "schedule",
			Error: ptr("scan: timeout"), StartedAt: started, CompletedAt: completed}),
		b.finish(t, FinishedRun{JobType: jobtype.DBPruning, Status: "completed", TriggeredBy: "schedule",
			Result: map[string]any{"deleted": 12}, StartedAt: started, CompletedAt: completed}),
		b.finish(t, FinishedRun{JobType: jobtype.AppleAdsSync, Status: "completed", TeamID: &s.teamID, ProjectID: &s.projectID,
			TriggeredBy: "manual:user:" + user, Notify: true, StartedAt: started, CompletedAt: completed}),
		b.finish(t, FinishedRun{JobType: jobtype.RevenueCatSync, Status: "cancelled", TeamID: &s.teamID, ProjectID: &s.projectID,
			TriggeredBy: "manual:api_key:" + key, Notify: true, StartedAt: started, CompletedAt: completed}),
	}
	const emails = 4

	// Every e-mail's first attempt fails with a refused connection and is scheduled again.
	failedJobs := map[int64]bool{}
	for len(failedJobs) < emails {
		ev := b.waitEvent(t, river.EventKindJobFailed, river.EventKindJobCompleted, river.EventKindJobCancelled)
		require.Equal(t, river.EventKindJobFailed, ev.Kind, "nothing can finish while the server is down")
		require.Contains(t, ev.Job.Errors[len(ev.Job.Errors)-1].Error, "connection refused")
		failedJobs[ev.Job.ID] = true
	}
	for _, want := range []struct {
		run    FinishedRun
		status string
	}{{runs[0], "failed"}, {runs[1], "completed"}, {runs[2], "completed"}, {runs[3], "cancelled"}} {
		require.Equal(t, want.status, b.runStatus(t, want.run.ID), "an outage never changes a run")
	}
	ds := b.deliveries(t, user)
	var pendingEmail int
	for _, d := range ds {
		if d.Channel == ChannelEmail {
			require.Equal(t, DeliveryPending, d.Status)
			require.NotNil(t, d.Error, "the failed attempt is recorded")
			require.Contains(t, *d.Error, "connection refused")
			require.Equal(t, "smtp", d.Metadata["transport"])
			pendingEmail++
		}
	}
	require.Equal(t, 2, pendingEmail)
	require.Empty(t, b.sink.all())
	require.GreaterOrEqual(t, b.emailCount(KindSystemAlert, OutcomeRetry), 2.0)
	require.GreaterOrEqual(t, b.emailCount(TypeJobCompleted, OutcomeRetry), 2.0)

	// The server comes back. The next attempts are 5 s away; River's JobRetry brings them
	// forward instead of the test waiting for them.
	b.sink.start(t)
	for id := range failedJobs {
		_, err := b.client.JobRetry(b.ctx, id)
		require.NoError(t, err)
	}
	settled := map[int64]bool{}
	for len(settled) < emails {
		ev := b.waitEvent(t, river.EventKindJobCompleted, river.EventKindJobCancelled, river.EventKindJobFailed)
		if ev.Kind == river.EventKindJobFailed {
			// An attempt that had already started before the server was back; retry it too.
			_, err := b.client.JobRetry(b.ctx, ev.Job.ID)
			require.NoError(t, err)
			continue
		}
		require.Equal(t, river.EventKindJobCompleted, ev.Kind)
		settled[ev.Job.ID] = true
	}

	got := b.sink.all()
	require.Len(t, got, emails, "each e-mail exactly once")
	subjects := map[string]int{}
	for _, r := range got {
		m := r.parse(t)
		subjects[r.To[0]+" "+m.Subject]++
	}
	require.Equal(t, map[string]int{
		"ops@example.com [Owlmetry] ❌ Job failed: Issue Scan":          1,
		"ops@example.com [Owlmetry] ✅ Job completed: Database Pruning": 1,
		"dev@example.com [Owlmetry] ✅ Job completed: Apple Ads Sync":   1,
		"dev@example.com [Owlmetry] 🚫 Job cancelled: RevenueCat Sync":  1,
	}, subjects)
	for _, d := range b.deliveries(t, user) {
		if d.Channel == ChannelEmail {
			require.Equal(t, DeliverySent, d.Status)
			require.Nil(t, d.Error)
			require.GreaterOrEqual(t, d.Metadata["attempts"], 2.0)
		}
	}
	require.Equal(t, 2.0, b.emailCount(KindSystemAlert, OutcomeSent))
	require.Equal(t, 2.0, b.emailCount(TypeJobCompleted, OutcomeSent))
}

func TestPermanentRejection(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{configureSink: func(s *smtpSink) {
		s.rcptReply = func(to string) error {
			if strings.HasPrefix(to, "gone@") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
			}
			return nil
		}
	}})
	s := b.seedTeam(t)
	gone := b.seedUser(t, "gone@example.com", "")
	here := b.seedUser(t, "here@example.com", "")
	err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		_, err := Dispatch(b.ctx, tx, b.client, Notification{
			Type: TypeAppReviewNew, TeamID: &s.teamID, Recipients: []string{gone, here},
			Title: "2 new reviews on Owl", Body: "Latest: ★★★★☆ — Nice", Link: "/dashboard/reviews?app_id=1",
		})
		return err
	})
	require.NoError(t, err)

	jobs := b.waitSettled(t, 2)
	var cancelled *rivertype.JobRow
	for _, j := range jobs {
		if j.State == rivertype.JobStateCancelled {
			cancelled = j
		}
	}
	require.NotNil(t, cancelled, "the 550 stops the job at once")
	require.Equal(t, 1, cancelled.Attempt)

	d := b.deliveries(t, gone)[0]
	require.Equal(t, ChannelEmail, d.Channel)
	require.Equal(t, DeliveryFailed, d.Status)
	require.NotNil(t, d.Error)
	require.Contains(t, *d.Error, "550")
	require.Contains(t, *d.Error, "mailbox unavailable")
	require.Equal(t, map[string]any{"attempts": 1.0, "transport": "smtp", "smtp_code": 550.0}, d.Metadata)
	require.Equal(t, DeliverySent, b.deliveries(t, here)[0].Status)
	require.Equal(t, 1.0, b.emailCount(TypeAppReviewNew, OutcomeFailed))
	require.Equal(t, 1.0, b.emailCount(TypeAppReviewNew, OutcomeSent))
	require.Zero(t, b.emailCount(TypeAppReviewNew, OutcomeRetry))
	got := b.sink.all()
	require.Len(t, got, 1)
	require.Equal(t, []string{"here@example.com"}, got[0].To)
}

func TestTransientRejectionIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{
		retryDelay: quickRetry,
		cfg:        Config{AlertEmails: []string{"ops@example.com"}},
		configureSink: func(s *smtpSink) {
			s.mailReply = func(n int) error {
				if n <= 2 {
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try later"}
				}
				return nil
			}
		},
	})
	s := b.seedTeam(t)
	user := b.seedUser(t, "dev@example.com", "")
	b.finish(t, FinishedRun{JobType: jobtype.AppleAdsSync, Status: "completed", TeamID: &s.teamID,
		TriggeredBy: "manual:user:" + user, Notify: true, CompletedAt: time.Now()})

	for range 2 {
		ev := b.waitEvent(t, river.EventKindJobFailed, river.EventKindJobCompleted, river.EventKindJobCancelled)
		require.Equal(t, river.EventKindJobFailed, ev.Kind)
		require.Contains(t, ev.Job.Errors[len(ev.Job.Errors)-1].Error, "451")
	}
	job := b.waitSettled(t, 1)[0]
	require.Equal(t, rivertype.JobStateCompleted, job.State)
	require.Equal(t, 3, job.Attempt)
	require.Len(t, b.sink.wait(t, 1), 1)
	require.Len(t, b.sink.all(), 1)
	d := b.deliveries(t, user)[0]
	require.Equal(t, DeliverySent, d.Status)
	require.Nil(t, d.Error)
	require.Equal(t, map[string]any{"attempts": 3.0, "transport": "smtp"}, d.Metadata)
	require.Equal(t, 2.0, b.emailCount(TypeJobCompleted, OutcomeRetry))
	require.Equal(t, 1.0, b.emailCount(TypeJobCompleted, OutcomeSent))
	warns := b.logs.lines(t, "email failed")
	require.Len(t, warns, 2)
	require.Equal(t, 451.0, warns[0]["smtp_code"])
}

// After 48 hours of transient failures the worker records the failure and stops.
func TestRetryWindowEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{
		now: func() time.Time { return time.Now().Add(RetryWindow + time.Minute) },
		cfg: Config{AlertEmails: []string{"ops@example.com"}},
	})
	b.sink.stop()
	s := b.seedTeam(t)
	user := b.seedUser(t, "dev@example.com", "")
	b.finish(t, FinishedRun{JobType: jobtype.AppleAdsSync, Status: "completed", TeamID: &s.teamID,
		TriggeredBy: "manual:user:" + user, Notify: true, CompletedAt: time.Now()})
	b.finish(t, FinishedRun{JobType: jobtype.IssueNotify, Status: "failed", TriggeredBy: "schedule",
		Error: ptr("x"), CompletedAt: time.Now()})

	for _, j := range b.waitSettled(t, 2) {
		require.Equal(t, rivertype.JobStateCancelled, j.State)
		require.Equal(t, 1, j.Attempt)
	}
	d := b.deliveries(t, user)[0]
	require.Equal(t, DeliveryFailed, d.Status)
	require.Contains(t, *d.Error, "gave up after 1 attempts")
	require.Contains(t, *d.Error, "connection refused")
	require.Equal(t, 1.0, b.emailCount(TypeJobCompleted, OutcomeFailed))
	require.Equal(t, 1.0, b.emailCount(KindSystemAlert, OutcomeFailed))
}

func TestRetryDelayPolicy(t *testing.T) {
	t.Parallel()
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 320 * time.Second, 10 * time.Minute, 10 * time.Minute}
	for i, base := range want {
		for range 50 {
			got := RetryDelay(i + 1)
			require.GreaterOrEqual(t, got, base*9/10, "attempt %d", i+1)
			require.LessOrEqual(t, got, base*11/10, "attempt %d", i+1)
		}
	}
	require.LessOrEqual(t, RetryDelay(400), 11*time.Minute)

	// 400 attempts outlast the 48-hour window, so the window decides.
	var total time.Duration
	attempts := 0
	for total < RetryWindow {
		attempts++
		total += RetryDelay(attempts)
	}
	require.Less(t, attempts, EmailMaxAttempts)
}

// A delivery that is no longer pending when its job runs is not sent again.
func TestDeliveryNoLongerPendingIsSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noWorker: true})
	s := b.seedTeam(t)
	user := b.seedUser(t, "dev@example.com", "")
	b.finish(t, FinishedRun{JobType: jobtype.AppleAdsSync, Status: "completed", TeamID: &s.teamID,
		TriggeredBy: "manual:user:" + user, Notify: true, CompletedAt: time.Now()})
	_, err := b.pool.Exec(b.ctx, `UPDATE notification_deliveries SET status = 'sent' WHERE channel = 'email'`)
	require.NoError(t, err)

	c := startWorkerClient(t, b.pool, b.svc, nil)
	events, cancel := c.Subscribe(river.EventKindJobCompleted, river.EventKindJobCancelled, river.EventKindJobFailed)
	defer cancel()
	if jobs := listEmailJobs(t, c); jobs[0].State != rivertype.JobStateCompleted {
		select {
		case ev := <-events:
			require.Equal(t, river.EventKindJobCompleted, ev.Kind)
		case <-time.After(waitFor):
			t.Fatal("email job never ran")
		}
	}
	require.Empty(t, b.sink.all())
	require.Len(t, b.logs.lines(t, "email skipped: delivery not pending"), 1)
	require.Zero(t, b.emailCount(TypeJobCompleted, OutcomeSent))
}

func TestLogTransport(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{logTransport: true, cfg: Config{AlertEmails: []string{"ops@example.com"}}})
	s := b.seedTeam(t)
	user := b.seedUser(t, "dev@example.com", "")
	run := b.finish(t, FinishedRun{JobType: jobtype.AppleAdsSync, Status: "failed", TeamID: &s.teamID,
		TriggeredBy: "manual:user:" + user, Notify: true, Error: ptr("x"), CompletedAt: time.Now()})
	b.finish(t, FinishedRun{JobType: jobtype.PartitionCreation, Status: "completed", TriggeredBy: "schedule", CompletedAt: time.Now()})
	b.waitSettled(t, 2)

	lines := b.logs.lines(t, "email logged")
	require.Len(t, lines, 2, "one line per e-mail")
	byKind := map[string]map[string]any{}
	for _, l := range lines {
		require.Equal(t, "INFO", l["level"])
		byKind[l["kind"].(string)] = l
	}
	require.Equal(t, "dev@example.com", byKind[TypeJobCompleted]["recipient"])
	require.Equal(t, "[Owlmetry] ❌ Job failed: Apple Ads Sync", byKind[TypeJobCompleted]["subject"])
	require.Equal(t, "ops@example.com", byKind[KindSystemAlert]["recipient"])
	require.Equal(t, "[Owlmetry] ✅ Job completed: Partition Creation", byKind[KindSystemAlert]["subject"])
	require.Empty(t, b.logs.lines(t, "email sent"))
	require.Empty(t, b.sink.all())

	d := b.deliveries(t, user)[0]
	require.Equal(t, DeliverySent, d.Status)
	require.Equal(t, map[string]any{"attempts": 1.0, "transport": "log"}, d.Metadata)
	require.Equal(t, 1.0, b.emailCount(TypeJobCompleted, OutcomeLogged))
	require.Equal(t, 1.0, b.emailCount(KindSystemAlert, OutcomeLogged))
	require.Equal(t, "failed", b.runStatus(t, run.ID))
}

// Mandatory STARTTLS with SMTP AUTH against a relay with its own certificate; the
// password reaches the server and never the logs.
func TestSMTPStartTLSAndAuth(t *testing.T) {
	t.Parallel()
	serverTLS, roots := selfSignedTLS(t)
	const password = "s3cret-Pa55word"
	b := setup(t, setupOptions{
		cfg:           Config{AlertEmails: []string{"ops@example.com"}, From: "Owlmetry <alerts@owlmetry.test>"},
		smtpTLSConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		configureSink: func(s *smtpSink) { s.tlsConfig, s.user, s.pass = serverTLS, "mailer", password },
		overrideSMTPFn: func(c *SMTPConfig) {
			c.TLS, c.Username, c.Password = TLSStartTLS, "mailer", password
		},
	})
	b.finish(t, FinishedRun{JobType: jobtype.DBPruning, Status: "failed", TriggeredBy: "schedule", Error: ptr("x"), CompletedAt: time.Now()})
	got := b.sink.wait(t, 1)[0]
	require.Equal(t, "alerts@owlmetry.test", got.From)
	require.Contains(t, got.parse(t).MessageID, "@owlmetry.test>")
	b.waitSettled(t, 1)
	b.sink.mu.Lock()
	require.Equal(t, []string{"mailer:" + password}, b.sink.authSeen)
	b.sink.mu.Unlock()
	require.NotContains(t, b.logs.String(), password)

	t.Run("without STARTTLS the mandatory policy refuses to send", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOptions{
			cfg:            Config{AlertEmails: []string{"ops@example.com"}},
			overrideSMTPFn: func(c *SMTPConfig) { c.TLS, c.Username, c.Password = TLSStartTLS, "mailer", password },
		})
		b.finish(t, FinishedRun{JobType: jobtype.DBPruning, Status: "failed", TriggeredBy: "schedule", Error: ptr("x"), CompletedAt: time.Now()})
		ev := b.waitEvent(t, river.EventKindJobFailed, river.EventKindJobCompleted, river.EventKindJobCancelled)
		require.Equal(t, river.EventKindJobFailed, ev.Kind, "a relay without STARTTLS is retried, not used in the clear")
		require.Contains(t, ev.Job.Errors[0].Error, "STARTTLS")
		require.Empty(t, b.sink.all())
		require.NotContains(t, b.logs.String(), password)
	})
}

func selfSignedTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "owlmetry test relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

// A run whose e-mail job has not been worked yet still holds only its own rows: the
// outbox sends nothing inside the transaction.
func TestRolledBackRunSendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{cfg: Config{AlertEmails: []string{"ops@example.com"}}})
	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	require.NoError(t, b.svc.RunFinished(b.ctx, tx, b.client, FinishedRun{
		ID: "6f1c2d3e-0000-4000-8000-00000000000a", JobType: jobtype.DBPruning, Status: "failed",
		TriggeredBy: "schedule", Error: ptr("x"), CompletedAt: time.Now(),
	}))
	require.NoError(t, tx.Rollback(context.Background()))
	require.Empty(t, b.emailJobs(t))
	require.Empty(t, b.sink.all())
}
