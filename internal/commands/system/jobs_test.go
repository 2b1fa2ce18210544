package system_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// systemRun is the system run object as the tests read it.
type systemRun struct {
	ID                string          `json:"id"`
	JobType           string          `json:"job_type"`
	Status            string          `json:"status"`
	TeamID            *string         `json:"team_id"`
	ProjectID         *string         `json:"project_id"`
	TriggeredBy       string          `json:"triggered_by"`
	Error             *string         `json:"error"`
	Result            json.RawMessage `json:"result"`
	Executor          string          `json:"executor"`
	OwnerNode         *string         `json:"owner_node"`
	OwnerInstance     *string         `json:"owner_instance"`
	HeartbeatAt       *string         `json:"heartbeat_at"`
	RiverJobID        *int64          `json:"river_job_id"`
	CancelRequestedBy *string         `json:"cancel_requested_by"`
	CompletedAt       *string         `json:"completed_at"`
}

func TestListAndView(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for i := range 3 {
		ids = append(ids, b.insertRun(t, jobtype.IssueScan, "completed", "created_at = now() - make_interval(mins => $2)", 10-i))
	}
	failed := b.insertRun(t, jobtype.IssueNotify, "failed", "error = 'smtp down\nretry later'")
	stale := b.insertRun(t, jobtype.SoftDeleteCleanup, "running", "heartbeat_at = now() - interval '1 hour'")

	t.Run("piped list, newest first, system runs", func(t *testing.T) {
		t.Parallel()
		res := run(t, b.env, "system", "jobs", "list")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		lines := strings.Split(strings.TrimSuffix(res.Stdout.String(), "\n"), "\n")
		require.Len(t, lines, 5)
		fields := strings.Split(lines[len(lines)-1], "\t")
		require.Len(t, fields, 11)
		require.Equal(t, ids[0], fields[0], "the oldest last")
		require.Equal(t, []string{"issue_scan", "completed", "", "", "schedule"}, fields[1:6])
		require.Contains(t, res.Stdout.String(), `smtp down\nretry later`, "piped values are escaped")
	})

	t.Run("JSON pages with a cursor", func(t *testing.T) {
		t.Parallel()
		res := run(t, b.env, "system", "jobs", "list", "--limit", "2", "--format", "json")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		var page struct {
			JobRuns []systemRun `json:"job_runs"`
			Cursor  *string     `json:"cursor"`
			HasMore bool        `json:"has_more"`
		}
		decode(t, res, &page)
		require.Len(t, page.JobRuns, 2)
		require.True(t, page.HasMore)
		require.NotNil(t, page.Cursor)
		require.Empty(t, res.Stderr.String())

		res = run(t, b.env, "system", "jobs", "list", "--limit", "2", "--cursor", *page.Cursor, "--format", "json")
		var next struct {
			JobRuns []systemRun `json:"job_runs"`
		}
		decode(t, res, &next)
		require.Len(t, next.JobRuns, 2)
		require.NotEqual(t, page.JobRuns[1].ID, next.JobRuns[0].ID)

		res = run(t, b.env, "system", "jobs", "list", "--limit", "2", "--all", "--format", "json")
		var all struct {
			JobRuns []systemRun `json:"job_runs"`
			Cursor  *string     `json:"cursor"`
			HasMore bool        `json:"has_more"`
		}
		decode(t, res, &all)
		require.Len(t, all.JobRuns, 5)
		require.Nil(t, all.Cursor)
		require.False(t, all.HasMore)
	})

	t.Run("the pagination hint repeats the filters on a terminal", func(t *testing.T) {
		t.Parallel()
		res := runWith(t, b.env, runOpts{tty: true}, "system", "jobs", "list", "--type", "issue_scan", "--limit", "1")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "More results: owlmetry system jobs list --type issue_scan --limit 1 --cursor '")
		require.Contains(t, res.Stdout.String(), "SCOPE")
		require.Contains(t, res.Stdout.String(), ids[2][:8])
	})

	t.Run("filters", func(t *testing.T) {
		t.Parallel()
		res := run(t, b.env, "system", "jobs", "list", "--stale", "--format", "json")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		var page struct {
			JobRuns []systemRun `json:"job_runs"`
		}
		decode(t, res, &page)
		require.Len(t, page.JobRuns, 1)
		require.Equal(t, stale, page.JobRuns[0].ID)

		res = run(t, b.env, "system", "jobs", "list", "--status", "failed", "--status", "running")
		require.Equal(t, 2, strings.Count(res.Stdout.String(), "\n"))
		res = run(t, b.env, "system", "jobs", "list", "--scope", "team")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		require.Empty(t, res.Stdout.String())
		require.Equal(t, "No job runs found.\n", res.Stderr.String())
		res = run(t, b.env, "system", "jobs", "list", "--since", "9m30s")
		require.Equal(t, cmdutil.ExitUsage, res.ExitCode, "9m30s is not a time filter")
		res = run(t, b.env, "system", "jobs", "list", "--since", "570s", "--type", "issue_scan")
		require.Equal(t, 2, strings.Count(res.Stdout.String(), "\n"), "created 9 and 8 minutes ago")
	})

	t.Run("view shows the run and its engine columns", func(t *testing.T) {
		t.Parallel()
		res := run(t, b.env, "system", "jobs", "view", strings.ToUpper(stale))
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		out := res.Stdout.String()
		require.Contains(t, out, "id\t"+stale+"\n")
		require.Contains(t, out, "owner_node\tgone-node\n")
		require.Contains(t, out, "lease_expired\ttrue\n")
		require.Less(t, strings.Index(out, "params\t"), strings.Index(out, "executor\t"), "engine columns follow the jobs view keys")

		res = runWith(t, b.env, runOpts{tty: true}, "system", "jobs", "view", failed)
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		require.Contains(t, res.Stdout.String(), "Issue Notify (issue_notify)")
		require.Contains(t, res.Stdout.String(), "Engine")

		res = run(t, b.env, "system", "jobs", "view", failed, "--format", "json")
		var r systemRun
		decode(t, res, &r)
		require.Equal(t, "failed", r.Status)
		require.Equal(t, "queue", r.Executor)
		require.Equal(t, "smtp down\nretry later", *r.Error)

		res = run(t, b.env, "system", "jobs", "view", "00000000-0000-4000-8000-000000000000")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Equal(t, "error: no job run 00000000-0000-4000-8000-000000000000\n", res.Stderr.String())
		res = run(t, b.env, "system", "jobs", "view", "00000000-0000-4000-8000-000000000000", "--format", "json")
		require.Contains(t, res.Stderr.String(), `"code":"not_found"`)
		res = run(t, b.env, "system", "jobs", "view", "3f2a9c1e")
		require.Equal(t, cmdutil.ExitUsage, res.ExitCode, "short ids are not accepted")
	})

	t.Run("a wait that times out names how to re-attach", func(t *testing.T) {
		t.Parallel()
		res := run(t, b.env, "system", "jobs", "view", stale, "--wait", "--timeout", "1s", "--progress", "none")
		require.Equal(t, cmdutil.ExitPending, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "soft_delete_cleanup "+stale+" still running after")
		require.Contains(t, res.Stderr.String(), "hint: re-attach: owlmetry system jobs view "+stale+" --wait\n")
		require.Contains(t, res.Stdout.String(), "status\trunning\n")
	})

	t.Run("view --wait on an ended run returns at once with its outcome", func(t *testing.T) {
		t.Parallel()
		res := run(t, b.env, "system", "jobs", "view", failed, "--wait")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "issue_notify "+failed+" failed after")
		require.Contains(t, res.Stderr.String(), "smtp down")
		res = run(t, b.env, "system", "jobs", "view", ids[0], "--watch", "--format", "json")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	})
}

// partitionHandlers hands the CLI a scripted handler for partition_creation: the
// registry type is real, the work is scripted.
func partitionHandlers(s *scripted) (*scripted, localjobs.Handlers) {
	if s.started == nil {
		s.started = make(chan string, 16)
	}
	return s, localjobs.Handlers{jobtype.PartitionCreation: s}
}

func TestRunLocal(t *testing.T) {
	t.Parallel()

	t.Run("a local run shows its lifecycle and exits 0", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, handlers := partitionHandlers(&scripted{steps: []step{
			{1, 3, "ensured events_2026_11"},
			{3, 3, "ensured funnel_events_2027_01"},
		}, pause: 100 * time.Millisecond})
		res := runWith(t, b.env, runOpts{handlers: handlers}, "system", "jobs", "run", "partition_creation", "--local", "--wait")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		stderr := res.Stderr.String()
		require.Contains(t, stderr, "waiting for partition_creation run ")
		require.Regexp(t, `\+\d+s [0-9a-f]{8} partition_creation running`, stderr)
		require.Regexp(t, `\+\d+s [0-9a-f]{8} partition_creation completed 3/3 \(100%\)`, stderr)
		require.Contains(t, stderr, "partition_creation run ")
		require.Contains(t, res.Stdout.String(), "status\tcompleted\n")
		require.Contains(t, res.Stdout.String(), "executor\tlocal\n")

		var row struct {
			status, executor, node string
			started, completed     bool
			team                   *string
		}
		require.NoError(t, b.tdb.Pool.QueryRow(context.Background(), `SELECT status::text, executor, owner_node,
			started_at IS NOT NULL, completed_at IS NOT NULL, team_id::text FROM job_runs`).
			Scan(&row.status, &row.executor, &row.node, &row.started, &row.completed, &row.team))
		require.Equal(t, "completed", row.status)
		require.Equal(t, "local", row.executor)
		require.True(t, strings.HasPrefix(row.node, "cli-"), row.node)
		require.True(t, row.started && row.completed)
		require.Nil(t, row.team, "a run without a project is a system run")
	})

	t.Run("the partition job of this build", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// The test database has this and the next two months' partitions; drop next
		// month's so the real handler has one to create.
		next := b.scalar(t, `SELECT 'metric_events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY_MM')`)
		b.exec(t, `DROP TABLE `+next)
		res := run(t, b.env, "system", "jobs", "run", "partition_creation", "--local", "--wait")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		require.Regexp(t, `\+\d+s [0-9a-f]{8} partition_creation completed`, res.Stderr.String())
		require.Contains(t, res.Stdout.String(), "status\tcompleted\n")
		require.Contains(t, res.Stdout.String(), next)
		require.Equal(t, "true", b.scalar(t, `SELECT (to_regclass($1) IS NOT NULL)::text`, next))
		require.Equal(t, "local", b.scalar(t, `SELECT executor FROM job_runs`))
	})

	t.Run("JSON is the final system run object", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, handlers := partitionHandlers(&scripted{})
		res := runWith(t, b.env, runOpts{handlers: handlers}, "system", "jobs", "run", "partition_creation", "--local", "--format", "json")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		require.Empty(t, res.Stderr.String())
		var r systemRun
		decode(t, res, &r)
		require.Equal(t, "completed", r.Status)
		require.Equal(t, "local", r.Executor)
		require.True(t, strings.HasPrefix(r.TriggeredBy, "manual:cli:"), r.TriggeredBy)
		require.NotNil(t, r.OwnerInstance)
	})

	t.Run("a failing local run exits 1", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, handlers := partitionHandlers(&scripted{fail: "permission denied for schema public"})
		res := runWith(t, b.env, runOpts{handlers: handlers}, "system", "jobs", "run", "partition_creation", "--local")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Contains(t, res.Stderr.String(), "failed after")
		require.Contains(t, res.Stderr.String(), "permission denied for schema public")
		require.Contains(t, res.Stdout.String(), "status\tfailed\n")
		require.NotContains(t, res.Stderr.String(), "error:", "the outcome line takes the place of the error line")

		res = runWith(t, b.env, runOpts{handlers: handlers}, "system", "jobs", "run", "partition_creation", "--local", "--format", "json")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Contains(t, res.Stderr.String(), `"code":"job_failed"`)
	})

	t.Run("first signal stops the run cooperatively, exit 130", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h, handlers := partitionHandlers(&scripted{steps: []step{{1, 4, "working"}}, block: true})
		sigs := make(chan os.Signal, 2)
		go func() {
			h.waitStarted(t)
			sigs <- syscall.SIGINT
		}()
		res := runWith(t, b.env, runOpts{handlers: handlers, signals: sigs}, "system", "jobs", "run", "partition_creation", "--local", "--progress", "lines")
		require.Equal(t, cmdutil.ExitInterrupted, res.ExitCode)
		// The run may end before the first progress line is printed, so the note and the
		// lines come in either order.
		require.Regexp(t, `(?m)^stopping run [0-9a-f]{8}…$`, res.Stderr.String())
		require.Regexp(t, `(?s)waiting for partition_creation run .*cancelled 1/4`, res.Stderr.String())
		require.Contains(t, res.Stderr.String(), "cancelled after")
		require.NotContains(t, res.Stderr.String(), "the run was not cancelled")
		require.Contains(t, res.Stdout.String(), "status\tcancelled\n")
		require.Equal(t, "cancelled", b.scalar(t, `SELECT status::text FROM job_runs`))
		require.Contains(t, b.scalar(t, `SELECT cancel_requested_by FROM job_runs`), "manual:cli:")
	})

	t.Run("second signal fails the run as interrupted by operator", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// The handler ignores its context, so only the second signal ends the run.
		started := make(chan struct{})
		release := make(chan struct{})
		defer close(release)
		handlers := localjobs.Handlers{jobtype.PartitionCreation: engine.HandlerFunc(func(ctx context.Context, run *engine.Run) (engine.Result, error) {
			close(started)
			<-release
			return nil, nil
		})}
		sigs := make(chan os.Signal, 2)
		go func() {
			<-started
			sigs <- syscall.SIGINT
			// Insist only once the engine has recorded the cancel request.
			b.awaitCondition(`SELECT cancel_requested_at IS NOT NULL FROM job_runs`)
			sigs <- syscall.SIGINT
		}()
		res := runWith(t, b.env, runOpts{handlers: handlers, signals: sigs}, "system", "jobs", "run", "partition_creation", "--local", "--progress", "none")
		require.Equal(t, cmdutil.ExitInterrupted, res.ExitCode)
		require.Equal(t, "failed", b.scalar(t, `SELECT status::text FROM job_runs`))
		require.Equal(t, "interrupted by operator", b.scalar(t, `SELECT error FROM job_runs`))
		require.Contains(t, res.Stderr.String(), "interrupted by operator")
	})
}

func TestRunEnqueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, handlers := partitionHandlers(&scripted{})
	ro := runOpts{handlers: handlers}

	res := runWith(t, b.env, ro, "system", "jobs", "run", "partition_creation")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	first, jobType, ok := strings.Cut(strings.TrimSpace(res.Stdout.String()), "\t")
	require.True(t, ok)
	require.Equal(t, "partition_creation", jobType)
	require.Contains(t, res.Stderr.String(), "warning: no running owlmetry server found; the run starts when one does (or use --local)")
	require.Equal(t, "pending", b.scalar(t, `SELECT status::text FROM job_runs WHERE id = $1`, first))
	require.Equal(t, "queue", b.scalar(t, `SELECT executor FROM job_runs WHERE id = $1`, first))

	t.Run("a second run while one is active exits 5 and names it", func(t *testing.T) {
		t.Parallel()
		res := runWith(t, b.env, ro, "system", "jobs", "run", "partition_creation")
		require.Equal(t, cmdutil.ExitConflict, res.ExitCode)
		require.Empty(t, res.Stdout.String())
		require.Contains(t, res.Stderr.String(), "error: partition_creation is already running or pending\n")
		require.Contains(t, res.Stderr.String(), "existing run: "+first+"\n")
		require.Contains(t, res.Stderr.String(), "hint: wait for it: owlmetry system jobs view "+first+" --wait\n")

		res = runWith(t, b.env, ro, "system", "jobs", "run", "partition_creation", "--local", "--format", "json")
		require.Equal(t, cmdutil.ExitConflict, res.ExitCode)
		require.Contains(t, res.Stderr.String(), `"existing_run_id":"`+first+`"`)
	})

	t.Run("--attach adopts the existing run", func(t *testing.T) {
		t.Parallel()
		res := runWith(t, b.env, ro, "system", "jobs", "run", "partition_creation", "--attach")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		require.True(t, strings.HasPrefix(res.Stdout.String(), first+"\t"))
		require.Contains(t, res.Stderr.String(), "attached to existing run "+first[:8]+" (pending")
	})

	t.Run("a cancel reaches the queued run", func(t *testing.T) {
		t.Parallel()
		other := b.insertRun(t, jobtype.IssueScan, "running", "")
		res := run(t, b.env, "system", "jobs", "cancel", other, "--format", "json")
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
		var doc struct {
			Cancelled bool      `json:"cancelled"`
			JobRun    systemRun `json:"job_run"`
		}
		decode(t, res, &doc)
		require.True(t, doc.Cancelled)
		require.Equal(t, "running", doc.JobRun.Status, "a running run stops at its next checkpoint")
		require.NotNil(t, doc.JobRun.CancelRequestedBy)
	})
}

func TestRunValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, handlers := partitionHandlers(&scripted{})
	handlers[jobtype.AppVersionSync] = handlers[jobtype.PartitionCreation]
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"unknown type lists the known ones", []string{"nope"}, `unknown job type "nope"; valid types: retention_cleanup, db_pruning`},
		{"no handler in this build", []string{"issue_scan"}, "error: issue_scan has no handler in this build\n"},
		{"undeclared param", []string{"partition_creation", "--param", "months=3"}, `Unknown param "months" for job type "partition_creation"`},
		{"param of the wrong type", []string{"app_version_sync", "--param", "app_id=42"}, `Invalid param "app_id": must be a UUID`},
		{"project_id is a flag", []string{"app_version_sync", "--param", "project_id=1a2b3c4d-0000-4000-8000-000000000001"}, "--param project_id is not allowed: use --project-id"},
		{"repeated param", []string{"db_pruning", "--param", "max_size_bytes=1", "--param", "max_size_bytes=2"}, "--param max_size_bytes given twice"},
		{"a project where the type takes none", []string{"partition_creation", "--project-id", "1a2b3c4d-0000-4000-8000-000000000001"}, `Unknown param "project_id"`},
		{"required project", []string{"revenuecat_user_backfill"}, `Invalid param "project_id": is required`},
		{"timeout with local", []string{"partition_creation", "--local", "--timeout", "1m"}, "--timeout cannot be used with --local"},
		{"cancel-on-interrupt with local", []string{"partition_creation", "--local", "--cancel-on-interrupt"}, "--cancel-on-interrupt cannot be used with --local"},
		{"wait flags need --wait", []string{"partition_creation", "--timeout", "1m"}, "--timeout requires --wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runWith(t, b.env, runOpts{handlers: handlers}, append([]string{"system", "jobs", "run"}, tt.args...)...)
			require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
			require.Empty(t, res.Stdout.String())
			require.Contains(t, res.Stderr.String(), tt.err)
		})
	}
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM job_runs`), "nothing was written")

	t.Run("a project that does not exist", func(t *testing.T) {
		t.Parallel()
		h := localjobs.Handlers{jobtype.AppleAdsSync: handlers[jobtype.PartitionCreation]}
		res := runWith(t, b.env, runOpts{handlers: h}, "system", "jobs", "run", "apple_ads_sync", "--project-id", "1a2b3c4d-0000-4000-8000-000000000001")
		require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
		require.Contains(t, res.Stderr.String(), `Invalid param "project_id": project 1a2b3c4d-0000-4000-8000-000000000001 not found or deleted`)
	})

	t.Run("integration jobs need the secret key to run locally", func(t *testing.T) {
		t.Parallel()
		h := localjobs.Handlers{jobtype.AppleAdsSync: handlers[jobtype.PartitionCreation]}
		res := runWith(t, b.env, runOpts{handlers: h}, "system", "jobs", "run", "apple_ads_sync", "--local")
		require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
		require.Equal(t, "error: OWLMETRY_SECRET_KEY is required to run apple_ads_sync locally\n", res.Stderr.String())
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pending := b.insertRun(t, jobtype.IssueScan, "pending", "")
	done := b.insertRun(t, jobtype.IssueNotify, "completed", "")

	res := run(t, b.env, "system", "jobs", "cancel", pending)
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Equal(t, pending+"\n", res.Stdout.String())
	require.Equal(t, "cancelled", b.scalar(t, `SELECT status::text FROM job_runs WHERE id = $1`, pending))

	res = runWith(t, b.env, runOpts{tty: true}, "system", "jobs", "cancel", done)
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "run "+done+" already ended (completed)")

	res = run(t, b.env, "system", "jobs", "cancel", "00000000-0000-4000-8000-000000000000")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Equal(t, "error: no job run 00000000-0000-4000-8000-000000000000\n", res.Stderr.String())

	// --wait on a run that then stops: any end is success.
	running := b.insertRun(t, jobtype.SoftDeleteCleanup, "running", "")
	go func() {
		// The run's owner finishes it as cancelled once it sees the request.
		b.awaitCondition(`SELECT cancel_requested_at IS NOT NULL FROM job_runs WHERE id = $1`, running)
		_, _ = b.tdb.Pool.Exec(context.Background(), `UPDATE job_runs SET status = 'cancelled', completed_at = now() WHERE id = $1`, running)
	}()
	res = run(t, b.env, "system", "jobs", "cancel", running, "--wait", "--progress", "none", "--poll-interval", "500ms")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Contains(t, res.Stdout.String(), "status\tcancelled\n")
}

func TestRecover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stale := b.insertRun(t, jobtype.IssueScan, "running", "heartbeat_at = now() - interval '1 hour'")
	fresh := b.insertRun(t, jobtype.IssueNotify, "running", "")
	pending := b.insertRun(t, jobtype.SoftDeleteCleanup, "pending", "created_at = now() - interval '1 day'")
	snapshot := func() string {
		return b.scalar(t, `SELECT string_agg(id || ':' || status || ':' || coalesce(error, ''), ',' ORDER BY id) FROM job_runs`)
	}
	before := snapshot()

	res := run(t, b.env, "system", "jobs", "recover", "--dry-run", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var doc struct {
		DryRun    bool        `json:"dry_run"`
		Recovered []systemRun `json:"recovered"`
	}
	decode(t, res, &doc)
	require.True(t, doc.DryRun)
	require.Len(t, doc.Recovered, 1)
	require.Equal(t, stale, doc.Recovered[0].ID)
	require.Equal(t, before, snapshot(), "--dry-run changes nothing")

	res = run(t, b.env, "system", "jobs", "recover")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.True(t, strings.HasPrefix(res.Stdout.String(), stale+"\tissue_scan\tfailed\t"))
	require.Contains(t, res.Stderr.String(), "Recovered 1 run.")
	require.Equal(t, "Server restarted during execution", b.scalar(t, `SELECT error FROM job_runs WHERE id = $1`, stale))
	require.Equal(t, "running", b.scalar(t, `SELECT status::text FROM job_runs WHERE id = $1`, fresh))
	require.Equal(t, "pending", b.scalar(t, `SELECT status::text FROM job_runs WHERE id = $1`, pending))

	res = run(t, b.env, "system", "jobs", "recover")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	require.Equal(t, "No stale runs.\n", res.Stderr.String())
}

func TestPrune(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := "completed_at = now() - interval '100 days', created_at = now() - interval '100 days'"
	oldRuns := []string{
		b.insertRun(t, jobtype.IssueScan, "completed", old),
		b.insertRun(t, jobtype.IssueScan, "failed", old),
	}
	newest := b.insertRun(t, jobtype.IssueScan, "completed", "")
	active := b.insertRun(t, jobtype.IssueScan, "running", "created_at = now() - interval '200 days', started_at = now() - interval '200 days'")
	count := func() string { return b.scalar(t, `SELECT count(*)::text FROM job_runs`) }

	res := run(t, b.env, "system", "jobs", "prune", "--dry-run", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var doc struct {
		DryRun    bool             `json:"dry_run"`
		OlderThan string           `json:"older_than"`
		Deleted   int64            `json:"deleted"`
		ByType    map[string]int64 `json:"by_type"`
	}
	decode(t, res, &doc)
	require.Equal(t, map[string]int64{"issue_scan": 2}, doc.ByType)
	require.EqualValues(t, 2, doc.Deleted)
	require.Equal(t, "90d", doc.OlderThan)
	require.Equal(t, "4", count())

	res = run(t, b.env, "system", "jobs", "prune")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode, "no terminal to ask on: --yes is required")
	res = run(t, b.env, "system", "jobs", "prune", "--format", "json")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Equal(t, "4", count())

	res = runWith(t, b.env, runOpts{tty: true, stdin: "n\n"}, "system", "jobs", "prune")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "Delete 2 runs older than ")
	require.Contains(t, res.Stderr.String(), "error: not confirmed")
	require.Equal(t, "4", count())

	res = runWith(t, b.env, runOpts{tty: true, stdin: "yes\n"}, "system", "jobs", "prune")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Contains(t, res.Stderr.String(), "Deleted 2 runs.")
	require.Equal(t, "2", count())
	for _, id := range oldRuns {
		require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM job_runs WHERE id = $1`, id))
	}
	require.Equal(t, "1", b.scalar(t, `SELECT count(*)::text FROM job_runs WHERE id = $1`, active), "active runs are never deleted")
	require.Equal(t, "1", b.scalar(t, `SELECT count(*)::text FROM job_runs WHERE id = $1`, newest))

	res = run(t, b.env, "system", "jobs", "prune", "--older-than", "1d", "--keep-last", "1", "--yes")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Equal(t, "No runs to prune.\n", res.Stderr.String(), "the newest terminal run is kept")

	for _, bad := range [][]string{{"--older-than", "12h"}, {"--older-than", "soon"}, {"--keep-last", "0"}, {"--batch-size", "20000"}} {
		res = run(t, b.env, append([]string{"system", "jobs", "prune", "--yes"}, bad...)...)
		require.Equal(t, cmdutil.ExitUsage, res.ExitCode, bad)
	}
}
