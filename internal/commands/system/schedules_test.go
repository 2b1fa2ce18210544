package system_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
)

type scheduleDoc struct {
	Schedules []struct {
		JobType      string     `json:"job_type"`
		Cron         *string    `json:"cron"`
		Timezone     string     `json:"timezone"`
		Source       string     `json:"source"`
		Enabled      bool       `json:"enabled"`
		NextRunAt    *time.Time `json:"next_run_at"`
		LastTickAt   *time.Time `json:"last_tick_at"`
		ActiveRunID  *string    `json:"active_run_id"`
		DefaultCron  *string    `json:"default_cron"`
		OverrideCron *string    `json:"override_cron"`
		UpdatedBy    *string    `json:"updated_by"`
	} `json:"schedules"`
}

// nextDaily is the next hh:mm UTC strictly after t, computed by hand.
func nextDaily(t time.Time, hh, mm int) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), hh, mm, 0, 0, time.UTC)
	if !d.After(t) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

func TestSchedulesListInUTC(t *testing.T) {
	t.Parallel()
	b := setup(t)
	active := b.insertRun(t, "issue_scan", "running", "")

	before := time.Now()
	res := run(t, b.env, "system", "jobs", "schedules", "--format", "json")
	after := time.Now()
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Empty(t, res.Stderr.String(), "no note in JSON")
	var doc scheduleDoc
	decode(t, res, &doc)
	require.Len(t, doc.Schedules, 13)
	byType := map[string]int{}
	for i, s := range doc.Schedules {
		byType[s.JobType] = i
		require.Equal(t, "UTC", s.Timezone)
	}
	pc := doc.Schedules[byType["partition_creation"]]
	require.Equal(t, "0 4 * * *", *pc.Cron)
	require.Equal(t, "default", pc.Source)
	// The next tick is 04:00 UTC — not 04:00 in New York, which TZ and time.Local say.
	require.Contains(t, []time.Time{nextDaily(before, 4, 0), nextDaily(after, 4, 0)}, pc.NextRunAt.UTC())
	require.Equal(t, active, *doc.Schedules[byType["issue_scan"]].ActiveRunID)
	require.Nil(t, doc.Schedules[byType["revenuecat_sync"]].Cron)
	require.Equal(t, "manual", doc.Schedules[byType["revenuecat_sync"]].Source)

	res = run(t, b.env, "system", "jobs", "schedules")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "No server has written the schedules yet")
	lines := strings.Split(strings.TrimSuffix(res.Stdout.String(), "\n"), "\n")
	require.Len(t, lines, 13)
	for _, l := range lines {
		require.Len(t, strings.Split(l, "\t"), 15)
	}
	require.Contains(t, res.Stdout.String(), "partition_creation\t0 4 * * *\ttrue\t"+pc.NextRunAt.UTC().Format("2006-01-02T15:04:05.000Z")+"\t")

	res = runWith(t, b.env, runOpts{tty: true}, "system", "jobs", "schedules", "list")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stdout.String(), "CRON (UTC)")
	require.Contains(t, res.Stdout.String(), pc.NextRunAt.UTC().Format("2006-01-02")+" 04:00 UTC (in ")
	require.NotContains(t, res.Stdout.String(), "-05:00")
	require.NotContains(t, res.Stdout.String(), "-04:00")

	res = run(t, b.env, "system", "jobs", "schedules", "bogus")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), `unknown command "bogus"`)
}

func TestScheduleChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)

	res := runWith(t, b.env, runOpts{tty: true}, "system", "jobs", "schedules", "set", "revenuecat_sync", "30 14 * * *")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	next := nextDaily(time.Now(), 14, 30)
	require.Regexp(t, `^Schedule of revenuecat_sync set to 30 14 \* \* \* \(UTC\); next run `+next.Format("2006-01-02")+` 14:30 UTC \(in \d+[smh]\)\n$`, res.Stdout.String())
	require.Contains(t, res.Stderr.String(), "running servers apply it from their next minute tick")
	require.Equal(t, "30 14 * * *", b.scalar(t, `SELECT cron FROM job_schedules WHERE job_type = 'revenuecat_sync'`))
	require.True(t, strings.HasPrefix(b.scalar(t, `SELECT updated_by FROM job_schedules WHERE job_type = 'revenuecat_sync'`), "manual:cli:"))

	res = run(t, b.env, "system", "jobs", "schedules", "disable", "revenuecat_sync", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	var doc scheduleDoc
	decode(t, res, &doc)
	require.Len(t, doc.Schedules, 1)
	require.Equal(t, "disabled", doc.Schedules[0].Source)
	require.False(t, doc.Schedules[0].Enabled)
	require.Nil(t, doc.Schedules[0].NextRunAt)

	res = runWith(t, b.env, runOpts{tty: true}, "system", "jobs", "schedules", "enable", "revenuecat_sync")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stdout.String(), "Schedule of revenuecat_sync enabled: 30 14 * * * (UTC); next run ")

	res = runWith(t, b.env, runOpts{tty: true}, "system", "jobs", "schedules", "reset", "revenuecat_sync")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Equal(t, "Schedule of revenuecat_sync reset: manual only\n", res.Stdout.String())

	res = run(t, b.env, "system", "jobs", "schedules", "enable", "revenuecat_sync")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), `error: revenuecat_sync has no default schedule; set one with owlmetry system jobs schedules set revenuecat_sync "<cron>"`)

	res = run(t, b.env, "system", "jobs", "schedules", "disable", "issue_scan")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.True(t, strings.HasPrefix(res.Stdout.String(), "issue_scan\t\tfalse\t"), "the piped layout of the listing")

	res = run(t, b.env, "system", "jobs", "schedules", "reset", "--all", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	decode(t, res, &doc)
	require.Len(t, doc.Schedules, 12)
	for _, s := range doc.Schedules {
		require.True(t, s.Enabled)
		require.Nil(t, s.OverrideCron)
	}
}

func TestScheduleRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"never schedulable", []string{"set", "revenuecat_user_backfill", "0 3 * * *"}, "error: revenuecat_user_backfill needs a project and cannot be scheduled\n"},
		{"never schedulable, other change", []string{"enable", "revenuecat_user_backfill"}, "revenuecat_user_backfill needs a project and cannot be scheduled"},
		{"a time zone prefix", []string{"set", "issue_scan", "CRON_TZ=America/New_York 0 3 * * *"}, `error: invalid cron expression "CRON_TZ=America/New_York 0 3 * * *": schedules are always UTC`},
		{"four fields", []string{"set", "issue_scan", "0 3 * *"}, `error: invalid cron expression "0 3 * *": expected 5 fields, got 4`},
		{"out of range", []string{"set", "issue_scan", "0 25 * * *"}, `error: invalid cron expression "0 25 * * *"`},
		{"unknown type", []string{"disable", "nope"}, `unknown job type "nope"; valid types: retention_cleanup`},
		{"reset needs a type or --all", []string{"reset"}, "missing a job type (or --all)"},
		{"reset takes one or the other", []string{"reset", "issue_scan", "--all"}, "give a job type or --all, not both"},
		{"set needs the expression", []string{"set", "issue_scan"}, "missing a job type and a cron expression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, b.env, append([]string{"system", "jobs", "schedules"}, tt.args...)...)
			require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
			require.Empty(t, res.Stdout.String())
			require.Contains(t, res.Stderr.String(), tt.err)
		})
	}
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM job_schedules`), "refused changes write nothing")
}
