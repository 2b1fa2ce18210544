package localjobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// nextDaily is the next hh:mm UTC strictly after t, computed by hand.
func nextDaily(t time.Time, hh, mm int) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), hh, mm, 0, 0, time.UTC)
	if !d.After(t) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

func byType(list []localjobs.Schedule) map[string]localjobs.Schedule {
	out := map[string]localjobs.Schedule{}
	for _, s := range list {
		out[s.JobType] = s
	}
	return out
}

func TestSchedulesFromRegistry(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	list, err := b.store.Schedules(context.Background())
	require.NoError(t, err)
	require.True(t, list.FromRegistry, "no server has written job_schedules")
	require.Len(t, list.Schedules, 13)
	require.Equal(t, jobtype.Names()[0], list.Schedules[0].JobType, "registry order")

	s := byType(list.Schedules)
	pc := s[jobtype.PartitionCreation]
	require.Equal(t, "0 4 * * *", *pc.Cron)
	require.Equal(t, "default", pc.Source)
	require.Equal(t, "UTC", pc.Timezone)
	require.True(t, pc.Enabled)
	require.Nil(t, pc.LastTickAt)
	require.Nil(t, pc.LastRun)
	require.Equal(t, nextDaily(list.Now, 4, 0), pc.NextRunAt.Time)
	require.Equal(t, time.UTC, pc.NextRunAt.Location())

	for _, manual := range []string{jobtype.RevenueCatSync, jobtype.RevenueCatUserBackfill} {
		require.Equal(t, "manual", s[manual].Source)
		require.Nil(t, s[manual].Cron)
		require.Nil(t, s[manual].NextRunAt)
	}
}

func TestScheduleChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	lastTick := func(jobType string) time.Time {
		var at time.Time
		require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT last_tick_at FROM job_schedules WHERE job_type = $1`, jobType).Scan(&at))
		return at
	}

	// Set a daily schedule for a Manual type: the row is created and the next tick is the
	// next 14:30 UTC, not 14:30 in the process's zone (New York in these tests).
	set, err := b.store.ChangeSchedule(ctx, jobtype.RevenueCatSync, localjobs.ScheduleSet, "30 14 * * *")
	require.NoError(t, err)
	require.Equal(t, "override", set.Source)
	require.Equal(t, "30 14 * * *", *set.Cron)
	require.Equal(t, "30 14 * * *", *set.OverrideCron)
	require.Nil(t, set.DefaultCron)
	require.Equal(t, actor, *set.UpdatedBy)
	require.Equal(t, nextDaily(set.LastTickAt.Time, 14, 30), set.NextRunAt.Time)
	require.Equal(t, 14, set.NextRunAt.UTC().Hour())
	t1 := lastTick(jobtype.RevenueCatSync)

	// Enabling what is already enabled does not change the effective schedule, so the
	// tick count is not restarted.
	en, err := b.store.ChangeSchedule(ctx, jobtype.RevenueCatSync, localjobs.ScheduleEnable, "")
	require.NoError(t, err)
	require.Equal(t, "override", en.Source)
	require.Equal(t, t1, lastTick(jobtype.RevenueCatSync))

	dis, err := b.store.ChangeSchedule(ctx, jobtype.RevenueCatSync, localjobs.ScheduleDisable, "")
	require.NoError(t, err)
	require.Equal(t, "disabled", dis.Source)
	require.False(t, dis.Enabled)
	require.Nil(t, dis.Cron)
	require.Nil(t, dis.NextRunAt)
	require.Equal(t, "30 14 * * *", *dis.OverrideCron, "disabling keeps the override")
	t2 := lastTick(jobtype.RevenueCatSync)
	require.True(t, t2.After(t1), "a change of the effective schedule restarts its ticks")

	en, err = b.store.ChangeSchedule(ctx, jobtype.RevenueCatSync, localjobs.ScheduleEnable, "")
	require.NoError(t, err)
	require.Equal(t, "override", en.Source)

	reset, err := b.store.ChangeSchedule(ctx, jobtype.RevenueCatSync, localjobs.ScheduleReset, "")
	require.NoError(t, err)
	require.Equal(t, "manual", reset.Source, "revenuecat_sync has no default")
	require.Nil(t, reset.Cron)

	_, err = b.store.ChangeSchedule(ctx, jobtype.RevenueCatSync, localjobs.ScheduleEnable, "")
	var se *localjobs.ScheduleError
	require.ErrorAs(t, err, &se)
	require.EqualError(t, err, `revenuecat_sync has no default schedule; set one with owlmetry system jobs schedules set revenuecat_sync "<cron>"`)

	// A type with a default: disable, then reset re-enables the default.
	_, err = b.store.ChangeSchedule(ctx, jobtype.IssueScan, localjobs.ScheduleDisable, "")
	require.NoError(t, err)
	list, err := b.store.Schedules(ctx)
	require.NoError(t, err)
	require.False(t, list.FromRegistry)
	require.Equal(t, "disabled", byType(list.Schedules)[jobtype.IssueScan].Source)
	require.Equal(t, "default", byType(list.Schedules)[jobtype.PartitionCreation].Source, "types without a row still come from the registry")
	all, err := b.store.ResetAllSchedules(ctx)
	require.NoError(t, err)
	require.Len(t, all, 12, "every schedulable type")
	require.Equal(t, "default", byType(all)[jobtype.IssueScan].Source)
	require.Equal(t, "0 * * * *", *byType(all)[jobtype.IssueScan].Cron)
}

func TestScheduleRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	_, err := b.store.ChangeSchedule(ctx, jobtype.RevenueCatUserBackfill, localjobs.ScheduleSet, "0 3 * * *")
	require.EqualError(t, err, "revenuecat_user_backfill needs a project and cannot be scheduled")
	_, err = b.store.ChangeSchedule(ctx, "nope", localjobs.ScheduleDisable, "")
	var ut *engine.UnknownTypeError
	require.ErrorAs(t, err, &ut)
	for _, bad := range []string{"CRON_TZ=UTC 0 3 * * *", "TZ=Europe/Paris 0 3 * * *", "0 3 * *", "@fortnightly", "61 * * * *", ""} {
		_, err := b.store.ChangeSchedule(ctx, jobtype.IssueScan, localjobs.ScheduleSet, bad)
		var ce *engine.CronError
		require.ErrorAs(t, err, &ce, bad)
	}
	var n int
	require.NoError(t, b.tdb.Pool.QueryRow(ctx, `SELECT count(*) FROM job_schedules`).Scan(&n))
	require.Zero(t, n, "refused changes write nothing")
}

func TestScheduleRunsAndState(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	last := insertRun(t, b, jobtype.IssueScan, "completed", "")
	active := insertRun(t, b, jobtype.IssueScan, "pending", "")
	_, err := b.tdb.Pool.Exec(ctx, `INSERT INTO job_schedules (job_type, default_cron, last_tick_at, last_outcome, last_run_id, fired_count, skipped_count)
		VALUES ('issue_scan', '0 * * * *', '2026-01-01T10:00:00Z', 'fired', $1, 7, 2)`, last)
	require.NoError(t, err)

	list, err := b.store.Schedules(ctx)
	require.NoError(t, err)
	s := byType(list.Schedules)[jobtype.IssueScan]
	require.Equal(t, active, *s.ActiveRunID)
	require.Equal(t, last, s.LastRun.ID)
	require.Equal(t, "completed", string(s.LastRun.Status))
	require.NotNil(t, s.LastRun.CompletedAt)
	require.Equal(t, "fired", *s.LastOutcome)
	require.EqualValues(t, 7, s.FiredCount)
	require.EqualValues(t, 2, s.SkippedCount)
	// last_tick_at is long past: the next tick is the next full hour after now.
	now := list.Now
	want := now.Truncate(time.Hour).Add(time.Hour)
	require.Equal(t, want, s.NextRunAt.Time)
}
