package jobs_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := jobs.LoadConfig(env(map[string]string{"MAX_DATABASE_SIZE_GB": "  ", "WEB_APP_URL": ""}))
	require.NoError(t, err)
	require.Equal(t, jobs.Config{
		AttachmentsPath: "./data/attachments", WebAppURL: "http://localhost:3000",
		IssueScanSettle: 60 * time.Second, FanoutConcurrency: 4,
		ITunes: itunes.Config{BaseURL: "https://itunes.apple.com", MinInterval: 150 * time.Millisecond, Concurrency: 8},
	}, c)
	require.Equal(t, int64(0), c.MaxDatabaseSizeBytes())
}

func TestLoadConfigValues(t *testing.T) {
	t.Parallel()
	c, err := jobs.LoadConfig(env(map[string]string{
		"MAX_DATABASE_SIZE_GB": "2.5", "OWLMETRY_ATTACHMENTS_PATH": "/srv/att", "WEB_APP_URL": "https://app.example.com/",
		"OWLMETRY_ISSUE_SCAN_SETTLE": "0s", "OWLMETRY_FANOUT_CONCURRENCY": "32",
		"OWLMETRY_ITUNES_API_URL": "http://127.0.0.1:4104/", "OWLMETRY_ITUNES_MIN_INTERVAL": "60ms", "OWLMETRY_ITUNES_CONCURRENCY": " 3 ",
	}))
	require.NoError(t, err)
	require.Equal(t, 2.5, c.MaxDatabaseSizeGB)
	require.Equal(t, int64(2684354560), c.MaxDatabaseSizeBytes(), "floor(2.5 × 1024³)")
	require.Equal(t, "/srv/att", c.AttachmentsPath)
	require.Equal(t, "https://app.example.com", c.WebAppURL)
	require.Equal(t, time.Duration(0), c.IssueScanSettle)
	require.Equal(t, 32, c.FanoutConcurrency)
	require.Equal(t, itunes.Config{BaseURL: "http://127.0.0.1:4104", MinInterval: 60 * time.Millisecond, Concurrency: 3}, c.ITunes)

	c, err = jobs.LoadConfig(env(map[string]string{"MAX_DATABASE_SIZE_GB": "0.000000001"}))
	require.NoError(t, err)
	require.Equal(t, int64(1), c.MaxDatabaseSizeBytes())
}

func TestLoadConfigNamesTheBadVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, want string }{
		{"MAX_DATABASE_SIZE_GB", "ten", "a number of gigabytes"},
		{"MAX_DATABASE_SIZE_GB", "-1", "a number of gigabytes"},
		{"MAX_DATABASE_SIZE_GB", "NaN", "a number of gigabytes"},
		{"MAX_DATABASE_SIZE_GB", "9000000", "a number of gigabytes"},
		{"WEB_APP_URL", "localhost:3000", "an http or https URL"},
		{"WEB_APP_URL", "ftp://x", "an http or https URL"},
		{"OWLMETRY_ISSUE_SCAN_SETTLE", "-1s", "a duration"},
		{"OWLMETRY_ISSUE_SCAN_SETTLE", "60", "a duration"},
		{"OWLMETRY_FANOUT_CONCURRENCY", "0", "an integer from 1 to 32"},
		{"OWLMETRY_FANOUT_CONCURRENCY", "33", "an integer from 1 to 32"},
		{"OWLMETRY_FANOUT_CONCURRENCY", "four", "an integer from 1 to 32"},
		{"OWLMETRY_ITUNES_API_URL", "itunes.apple.com", "an absolute http or https URL"},
		{"OWLMETRY_ITUNES_API_URL", "https://itunes.apple.com?x=1", "an absolute http or https URL"},
		{"OWLMETRY_ITUNES_MIN_INTERVAL", "0s", "a positive duration"},
		{"OWLMETRY_ITUNES_MIN_INTERVAL", "150", "a positive duration"},
		{"OWLMETRY_ITUNES_CONCURRENCY", "0", "a positive integer"},
		{"OWLMETRY_ITUNES_CONCURRENCY", "eight", "a positive integer"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			_, err := jobs.LoadConfig(env(map[string]string{tc.name: tc.value}))
			var se *engine.SettingError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tc.name, se.Name)
			require.Equal(t, tc.value, se.Value)
			require.ErrorContains(t, err, "invalid "+tc.name+` "`+tc.value+`": `+tc.want)
		})
	}
}

// The largest limit still fits the max_size_bytes param.
func TestMaxDatabaseSizeFitsTheParam(t *testing.T) {
	t.Parallel()
	c, err := jobs.LoadConfig(env(map[string]string{"MAX_DATABASE_SIZE_GB": "8388607"}))
	require.NoError(t, err)
	require.LessOrEqual(t, c.MaxDatabaseSizeBytes(), int64(jobtype.MaxSafeInteger))
}

func TestAllRegistersTheHandlers(t *testing.T) {
	t.Parallel()
	all := jobs.All(jobs.Deps{})
	require.Len(t, all, 7)
	for _, name := range []string{jobtype.RetentionCleanup, jobtype.DBPruning, jobtype.SoftDeleteCleanup, jobtype.PartitionCreation,
		jobtype.AttachmentCleanup, jobtype.AppVersionSync, jobtype.AppStoreRatingsSync} {
		require.NotNil(t, all[name], name)
		_, ok := jobtype.Lookup(name)
		require.True(t, ok, name)
	}
}
