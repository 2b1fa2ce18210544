package jobtype

import (
	"encoding/json"
	"testing"

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/require"
)

func TestRegistryShape(t *testing.T) {
	t.Parallel()

	all := All()
	require.Len(t, all, 13)
	seen := map[string]bool{}
	for _, jt := range all {
		require.False(t, seen[jt.Name], "duplicate %s", jt.Name)
		seen[jt.Name] = true
		require.NotEmpty(t, jt.Label)
		require.Positive(t, jt.MaxRunTime)
		for _, expr := range []string{jt.Cron, jt.DevCron} {
			if expr == "" {
				continue
			}
			_, err := cron.ParseStandard("CRON_TZ=UTC " + expr)
			require.NoError(t, err, "%s cron %q", jt.Name, expr)
		}
	}
	// Project scope is exactly the three API-triggerable types.
	var triggerable []string
	for _, jt := range all {
		if jt.APITriggerable() {
			triggerable = append(triggerable, jt.Name)
			require.True(t, jt.AllowsEntry(EntryTrigger))
		} else {
			require.False(t, jt.AllowsEntry(EntryTrigger), jt.Name)
		}
	}
	require.Equal(t, []string{AppleAdsSync, RevenueCatSync, RevenueCatUserBackfill}, triggerable)

	// Manual types have no default in any profile; backfill can never be scheduled.
	require.Empty(t, MustLookup(RevenueCatSync).DefaultCron("prod"))
	require.Empty(t, MustLookup(RevenueCatUserBackfill).DefaultCron("dev"))
	require.False(t, MustLookup(RevenueCatUserBackfill).AllowsEntry(EntryCron))
	require.True(t, MustLookup(RevenueCatSync).AllowsEntry(EntryCron))
	require.Equal(t, "*/5 * * * *", MustLookup(RetentionCleanup).DefaultCron("dev"))
	require.Empty(t, MustLookup(RetentionCleanup).DefaultCron("off"))
}

func TestInvalidTypeMessageListsRegistryOrder(t *testing.T) {
	t.Parallel()
	require.Equal(t,
		`Invalid job_type "nope". Valid types: retention_cleanup, db_pruning, soft_delete_cleanup, partition_creation, attachment_cleanup, issue_scan, issue_notify, app_version_sync, app_store_ratings_sync, apple_ads_sync, app_store_connect_reviews_sync, revenuecat_sync, revenuecat_user_backfill`,
		InvalidTypeMessage("nope"))
	require.Equal(t, "nope", LabelOf("nope"))
	require.Equal(t, "Issue Notify", LabelOf(IssueNotify))
}

func TestValidateParams(t *testing.T) {
	t.Parallel()

	const id = "1A2B3C4D-0000-4000-8000-000000000001"
	tests := []struct {
		name    string
		jobType string
		entry   EntryPoint
		params  string
		want    map[string]any
		wantErr string
	}{
		{name: "empty", jobType: RetentionCleanup, entry: EntryCLI, params: `{}`, want: map[string]any{}},
		{name: "undeclared key", jobType: RetentionCleanup, entry: EntryCLI, params: `{"x":1}`,
			wantErr: `Unknown param "x" for job type "retention_cleanup" (allowed: none)`},
		{name: "declared but not at this entry", jobType: AppStoreRatingsSync, entry: EntryRouteRatings, params: `{"app_id":"` + id + `"}`,
			wantErr: `Unknown param "app_id" for job type "app_store_ratings_sync" (allowed: project_id)`},
		{name: "uuid lower-cased", jobType: AppleAdsSync, entry: EntryTrigger, params: `{"project_id":"` + id + `"}`,
			want: map[string]any{"project_id": "1a2b3c4d-0000-4000-8000-000000000001"}},
		{name: "malformed uuid", jobType: AppleAdsSync, entry: EntryTrigger, params: `{"project_id":"nope"}`,
			wantErr: `Invalid param "project_id": must be a UUID`},
		{name: "uuid of wrong JSON type", jobType: AppleAdsSync, entry: EntryTrigger, params: `{"project_id":5}`,
			wantErr: `Invalid param "project_id": must be a UUID string`},
		{name: "integer from string", jobType: DBPruning, entry: EntryCLI, params: `{"max_size_bytes":"1024"}`,
			want: map[string]any{"max_size_bytes": int64(1024)}},
		{name: "integer from number", jobType: DBPruning, entry: EntryCLI, params: `{"max_size_bytes":2048}`,
			want: map[string]any{"max_size_bytes": int64(2048)}},
		{name: "fractional integer", jobType: DBPruning, entry: EntryCLI, params: `{"max_size_bytes":1.5}`,
			wantErr: `Invalid param "max_size_bytes": must be an integer`},
		{name: "integer too small", jobType: DBPruning, entry: EntryCLI, params: `{"max_size_bytes":0}`,
			wantErr: `must be between 1 and 9007199254740991`},
		{name: "integer too large", jobType: DBPruning, entry: EntryCLI, params: `{"max_size_bytes":"9007199254740992"}`,
			wantErr: `must be between 1`},
		{name: "signed string", jobType: DBPruning, entry: EntryCLI, params: `{"max_size_bytes":"+5"}`,
			wantErr: `must be an integer`},
		{name: "empty string", jobType: RevenueCatUserBackfill, entry: EntryTrigger,
			params:  `{"project_id":"` + id + `","starting_after":"` + string(make([]byte, 0)) + `"}`,
			wantErr: `Invalid param "starting_after": must be 1-255 characters`},
		{name: "required missing", jobType: RevenueCatUserBackfill, entry: EntryCLI, params: `{}`,
			wantErr: `Invalid param "project_id": is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var raw map[string]any
			dec := json.NewDecoder(stringsReader(tt.params))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&raw))
			got, err := ValidateParams(MustLookup(tt.jobType), tt.entry, raw)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseUUID(t *testing.T) {
	t.Parallel()
	got, ok := ParseUUID("3F2A9C1E-5B7D-4C1A-9E2F-0A1B2C3D4E5F")
	require.True(t, ok)
	require.Equal(t, "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f", got)
	for _, bad := range []string{"", "3f2a9c1e5b7d4c1a9e2f0a1b2c3d4e5f", "{3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f}",
		"urn:uuid:3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f", "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5g"} {
		_, ok := ParseUUID(bad)
		require.False(t, ok, bad)
	}
}
