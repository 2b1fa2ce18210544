package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnvDB) != "" {
		os.Exit(runCrashChild())
	}
	code := m.Run()
	pgtest.Shutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitFor is the deadline every wait in these tests shares: generous for a loaded
// 2-core machine, never a fixed sleep.
const waitFor = 60 * time.Second

// ---- SMTP sink ------------------------------------------------------------------------

// received is one message the sink accepted.
type received struct {
	From string
	To   []string
	Raw  []byte
}

// parsedMessage is a received message decoded for assertions.
type parsedMessage struct {
	To        string
	Subject   string
	MessageID string
	Text      string
	HTML      string
}

func (r received) parse(t *testing.T) parsedMessage {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(r.Raw))
	require.NoError(t, err)
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	out := parsedMessage{To: m.Header.Get("To"), Subject: subject, MessageID: m.Header.Get("Message-Id")}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mediaType, "a text part and an HTML part")
	mr := multipart.NewReader(m.Body, params["boundary"])
	var order []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(p)
		require.NoError(t, err)
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			body, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
			require.NoError(t, err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		order = append(order, ct)
		// The wire uses CRLF; compare with the LF the renderer wrote.
		text := strings.ReplaceAll(string(body), "\r\n", "\n")
		switch ct {
		case "text/plain":
			out.Text = text
		case "text/html":
			out.HTML = text
		}
	}
	require.Equal(t, []string{"text/plain", "text/html"}, order, "plain text first, HTML second")
	return out
}

// smtpSink is a real SMTP server on a loopback port that records what it accepts and can
// be told to refuse, to stall in DATA, or to be down.
type smtpSink struct {
	addr string

	mu       sync.Mutex
	srv      *smtp.Server
	received []received
	// mailReply answers the n-th MAIL command (from 1); nil accepts.
	mailReply func(n int) error
	// rcptReply answers RCPT; nil accepts.
	rcptReply func(to string) error
	// hold makes DATA read the message and then wait for release, never accepting it.
	hold    bool
	holding chan struct{}
	release chan struct{}
	// tlsConfig enables STARTTLS; user and pass then require AUTH PLAIN.
	tlsConfig  *tls.Config
	user, pass string
	authSeen   []string

	arrived chan received
	mails   atomic.Int32
}

func newSink(t *testing.T, configure func(*smtpSink)) *smtpSink {
	t.Helper()
	s := &smtpSink{arrived: make(chan received, 64), holding: make(chan struct{}, 16), release: make(chan struct{})}
	if configure != nil {
		configure(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(func() {
		s.releaseHolds()
		s.stop()
	})
	return s
}

func (s *smtpSink) serve(l net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	s.mu.Lock()
	srv.TLSConfig = s.tlsConfig
	srv.AllowInsecureAuth = s.tlsConfig == nil
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(l) //nolint:errcheck // ends with ErrServerClosed when stopped
}

// stop takes the server down: connections are then refused.
func (s *smtpSink) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close() //nolint:errcheck
	}
}

// start brings the server back on the same address.
func (s *smtpSink) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", s.addr)
	require.NoError(t, err, "listen again on %s", s.addr)
	s.serve(l)
}

func (s *smtpSink) releaseHolds() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
	s.hold = false
}

func (s *smtpSink) host() string { h, _, _ := net.SplitHostPort(s.addr); return h }

func (s *smtpSink) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// smtpConfig points the outbox at the sink without TLS.
func (s *smtpSink) smtpConfig() *SMTPConfig {
	return &SMTPConfig{Host: s.host(), Port: s.port(), TLS: TLSNone, Timeout: 10 * time.Second}
}

// wait returns the next n accepted messages, failing after the deadline.
func (s *smtpSink) wait(t *testing.T, n int) []received {
	t.Helper()
	out := make([]received, 0, n)
	deadline := time.After(waitFor)
	for len(out) < n {
		select {
		case r := <-s.arrived:
			out = append(out, r)
		case <-deadline:
			t.Fatalf("sink got %d of %d messages in %s", len(out), n, waitFor)
		}
	}
	return out
}

func (s *smtpSink) all() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.received...)
}

type sinkSession struct {
	s      *smtpSink
	from   string
	to     []string
	authed bool
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		ss.s.mu.Lock()
		defer ss.s.mu.Unlock()
		ss.s.authSeen = append(ss.s.authSeen, user+":"+pass)
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	n := int(ss.s.mails.Add(1))
	ss.s.mu.Lock()
	reply, needAuth := ss.s.mailReply, ss.s.user != ""
	ss.s.mu.Unlock()
	if needAuth && !ss.authed {
		return smtp.ErrAuthRequired
	}
	if reply != nil {
		if err := reply(n); err != nil {
			return err
		}
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	reply := ss.s.rcptReply
	ss.s.mu.Unlock()
	if reply != nil {
		if err := reply(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	hold, release := ss.s.hold, ss.s.release
	ss.s.mu.Unlock()
	if hold {
		ss.s.holding <- struct{}{}
		<-release
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "held and dropped"}
	}
	msg := received{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw}
	ss.s.mu.Lock()
	ss.s.received = append(ss.s.received, msg)
	ss.s.mu.Unlock()
	ss.s.arrived <- msg
	return nil
}

func (ss *sinkSession) Reset() { ss.from, ss.to = "", nil }

func (ss *sinkSession) Logout() error { return nil }

// ---- stack ----------------------------------------------------------------------------

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log records whose msg is msg.
func (b *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

type bundle struct {
	ctx     context.Context
	pool    *pgxpool.Pool
	dbURL   string
	sink    *smtpSink
	svc     *Service
	client  *river.Client[pgx.Tx]
	events  <-chan *river.Event
	metrics *metrics.Set
	logs    *syncBuffer
}

type setupOptions struct {
	// cfg is the configuration; SMTP is pointed at the sink unless logTransport is set.
	cfg          Config
	logTransport bool
	// noWorker leaves the outbox unworked: jobs are only inserted.
	noWorker       bool
	retryDelay     func(int) time.Duration
	now            func() time.Time
	smtpTLSConfig  *tls.Config
	configureSink  func(*smtpSink)
	overrideSMTPFn func(*SMTPConfig)
}

// quickRetry replaces the 5-second backoff where a test is about retrying, not waiting.
func quickRetry(int) time.Duration { return 20 * time.Millisecond }

func setup(t *testing.T, o setupOptions) *bundle {
	t.Helper()
	ctx := context.Background()
	tdb := pgtest.New(t)
	b := &bundle{ctx: ctx, pool: tdb.Pool, dbURL: tdb.URL, metrics: metrics.New(), logs: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("outbox log:\n%s", b.logs.String())
		}
	})
	b.sink = newSink(t, o.configureSink)
	cfg := o.cfg
	if !o.logTransport {
		cfg.SMTP = b.sink.smtpConfig()
		if o.overrideSMTPFn != nil {
			o.overrideSMTPFn(cfg.SMTP)
		}
	}
	b.svc = New(Options{
		Config: cfg, Pool: tdb.Pool, Metrics: b.metrics, NowFunc: o.now, RetryDelayFunc: o.retryDelay,
		Logger:        slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SMTPTLSConfig: o.smtpTLSConfig,
	})
	if o.noWorker {
		b.client = insertOnlyClient(t, tdb.Pool)
		return b
	}
	b.client = startWorkerClient(t, tdb.Pool, b.svc, nil)
	b.events, _ = b.client.Subscribe(river.EventKindJobCompleted, river.EventKindJobCancelled,
		river.EventKindJobFailed, river.EventKindJobSnoozed)
	return b
}

func insertOnlyClient(t *testing.T, pool *pgxpool.Pool) *river.Client[pgx.Tx] {
	t.Helper()
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		SkipUnknownJobCheck: true, TestOnly: true, Logger: quietLogger(),
	})
	require.NoError(t, err)
	return c
}

// startWorkerClient starts a River client working the internal queue with the outbox's
// worker, with River's test settings; tweak adjusts the config.
func startWorkerClient(t *testing.T, pool *pgxpool.Pool, svc *Service, tweak func(*river.Config)) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	svc.RegisterWorkers(workers)
	cfg := &river.Config{
		Queues:            map[string]river.QueueConfig{QueueInternal: {MaxWorkers: 5}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		JobTimeout:        -1,
		MaxAttempts:       1,
		TestOnly:          true,
		Logger:            quietLogger(),
	}
	if tweak != nil {
		tweak(cfg)
	}
	c, err := river.NewClient(riverpgxv5.New(pool), cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, c.Stop(ctx))
	})
	return c
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// waitEvent returns the next River event of one of kinds, skipping others.
func (b *bundle) waitEvent(t *testing.T, kinds ...river.EventKind) *river.Event {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case ev := <-b.events:
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no River event %v in %s", kinds, waitFor)
		}
	}
}

// waitSettled waits until n email jobs reached a final state (completed or cancelled).
func (b *bundle) waitSettled(t *testing.T, n int) []*rivertype.JobRow {
	t.Helper()
	var out []*rivertype.JobRow
	for len(out) < n {
		ev := b.waitEvent(t, river.EventKindJobCompleted, river.EventKindJobCancelled)
		out = append(out, ev.Job)
	}
	return out
}

// emailJobs lists every email_delivery job in any state.
func (b *bundle) emailJobs(t *testing.T) []*rivertype.JobRow {
	t.Helper()
	return listEmailJobs(t, b.client)
}

func listEmailJobs(t *testing.T, c *river.Client[pgx.Tx]) []*rivertype.JobRow {
	t.Helper()
	res, err := c.JobList(context.Background(), river.NewJobListParams().Kinds(KindEmailDelivery).First(1000))
	require.NoError(t, err)
	return res.Jobs
}

func decodeArgs(t *testing.T, job *rivertype.JobRow) EmailArgs {
	t.Helper()
	var a EmailArgs
	require.NoError(t, json.Unmarshal(job.EncodedArgs, &a))
	return a
}

func (b *bundle) emailCount(kind, outcome string) float64 {
	var m dto.Metric
	if err := b.metrics.Emails.WithLabelValues(kind, outcome).Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// ---- seed data ------------------------------------------------------------------------

type seeded struct {
	teamID    string
	projectID string
}

func (b *bundle) seedTeam(t *testing.T) seeded {
	t.Helper()
	var s seeded
	slug := "team-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.NoError(t, b.pool.QueryRow(b.ctx, `INSERT INTO teams (name, slug) VALUES ('Owls', $1) RETURNING id::text`, slug).Scan(&s.teamID))
	require.NoError(t, b.pool.QueryRow(b.ctx,
		`INSERT INTO projects (team_id, name, slug, color) VALUES ($1, 'Owl App', 'owl-app', '#336699') RETURNING id::text`,
		s.teamID).Scan(&s.projectID))
	return s
}

func (b *bundle) seedUser(t *testing.T, email, preferences string) string {
	t.Helper()
	if preferences == "" {
		preferences = "{}"
	}
	var id string
	require.NoError(t, b.pool.QueryRow(b.ctx,
		`INSERT INTO users (email, name, preferences) VALUES ($1, $1, $2::jsonb) RETURNING id::text`, email, preferences).Scan(&id))
	return id
}

func (b *bundle) addMember(t *testing.T, teamID, userID string) {
	t.Helper()
	_, err := b.pool.Exec(b.ctx, `INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)`, teamID, userID)
	require.NoError(t, err)
}

func (b *bundle) seedAPIKey(t *testing.T, teamID, createdBy string, deleted bool) string {
	t.Helper()
	var id string
	hash := fmt.Sprintf("%064x", time.Now().UnixNano())
	require.NoError(t, b.pool.QueryRow(b.ctx, `
		INSERT INTO api_keys (secret, secret_hash, key_type, team_id, name, created_by, permissions, deleted_at)
		VALUES ('owl_s_abcd…', $1, 'server', $2, 'ci key', $3, '[]', CASE WHEN $4 THEN now() END)
		RETURNING id::text`, hash, teamID, createdBy, deleted).Scan(&id))
	return id
}

// finish records a terminal run and calls RunFinished in one committed transaction,
// the way the engine's terminal transitions do.
func (b *bundle) finish(t *testing.T, run FinishedRun) FinishedRun {
	t.Helper()
	err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		resultJSON, err := json.Marshal(run.Result)
		if err != nil {
			return err
		}
		if run.Result == nil {
			resultJSON = nil
		}
		if err := tx.QueryRow(b.ctx, `
			INSERT INTO job_runs (job_type, status, team_id, project_id, triggered_by, result, error, notify, started_at, completed_at)
			VALUES ($1, $2::job_status, $3::uuid, $4::uuid, $5, $6::jsonb, $7, $8, $9, $10)
			RETURNING id::text`,
			run.JobType, run.Status, run.TeamID, run.ProjectID, run.TriggeredBy, resultJSON, run.Error, run.Notify,
			run.StartedAt, run.CompletedAt).Scan(&run.ID); err != nil {
			return err
		}
		return b.svc.RunFinished(b.ctx, tx, b.client, run)
	})
	require.NoError(t, err)
	return run
}

func (b *bundle) runStatus(t *testing.T, id string) string {
	t.Helper()
	var s string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT status::text FROM job_runs WHERE id = $1`, id).Scan(&s))
	return s
}

// deliveryRow is a notification_deliveries row as tests read it.
type deliveryRow struct {
	ID          string
	Channel     string
	Status      string
	Error       *string
	AttemptedAt *time.Time
	Metadata    map[string]any
}

func (b *bundle) deliveries(t *testing.T, userID string) []deliveryRow {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `
		SELECT d.id::text, d.channel, d.status, d.error, d.attempted_at, d.attempt_metadata
		FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE n.user_id = $1 ORDER BY d.channel`, userID)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (deliveryRow, error) {
		var d deliveryRow
		var meta []byte
		err := r.Scan(&d.ID, &d.Channel, &d.Status, &d.Error, &d.AttemptedAt, &meta)
		if err == nil && meta != nil {
			err = json.Unmarshal(meta, &d.Metadata)
		}
		return d, err
	})
	require.NoError(t, err)
	return out
}

func ptr[T any](v T) *T { return &v }

// minutesAgo gives a start and end pair with the given duration.
func span(d time.Duration) (*time.Time, time.Time) {
	end := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	start := end.Add(-d)
	return &start, end
}
