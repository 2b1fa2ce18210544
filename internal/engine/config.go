package engine

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/metrics"
	"github.com/owlmetry/owlmetry/internal/notify"
)

// Settings are the engine's tunables (engine.md §17). LoadSettings reads them from the
// environment; flags of `owlmetry server` override them afterwards.
type Settings struct {
	// NodeID identifies this host across restarts. Defaults to the host name.
	NodeID string
	// Workers is MaxWorkers of queue jobs. 0 makes an API-only replica. Defaults to 10.
	Workers int
	// InternalWorkers is MaxWorkers of queue internal (ticks, maintenance, e-mail). Defaults to 5.
	InternalWorkers int
	// Scheduler lets this replica take part in leader election and insert cron ticks.
	Scheduler bool
	// FetchCooldown is River's FetchCooldown. Defaults to 5ms.
	FetchCooldown time.Duration
	// FetchPollInterval is River's FetchPollInterval. Defaults to 500ms.
	FetchPollInterval time.Duration
	// ProgressInterval spaces persisted progress writes of one run. Defaults to 1s.
	ProgressInterval time.Duration
	// HeartbeatInterval spaces lease renewals. Defaults to 10s.
	HeartbeatInterval time.Duration
	// StaleAfter is how long a lease lives without a heartbeat. Defaults to 60s; at least
	// three heartbeat intervals.
	StaleAfter time.Duration
	// ReapInterval spaces reaper passes (±20 % jitter). Defaults to 15s.
	ReapInterval time.Duration
	// ShutdownTimeout is how long running handlers get at shutdown. Defaults to 25s.
	ShutdownTimeout time.Duration
	// CronProfile selects default schedules: prod, dev or off. Defaults to prod.
	CronProfile string
	// MaxRunTime overrides the registry's max run time per job type.
	MaxRunTime map[string]time.Duration
	// JobRunsRetentionDays deletes terminal runs older than this; 0 keeps everything.
	// Defaults to 90.
	JobRunsRetentionDays int
	// MaxDatabaseSizeGB enables db_pruning when above 0 (jobs.md §3.10).
	MaxDatabaseSizeGB float64
	// DBMaxConns is the size of the shared pool. Defaults to 40.
	DBMaxConns int
}

// DefaultSettings are the documented defaults.
func DefaultSettings() Settings {
	host, _ := os.Hostname()
	if len(host) > 200 {
		host = host[:200]
	}
	return Settings{
		NodeID: host, Workers: 10, InternalWorkers: 5, Scheduler: true,
		FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 500 * time.Millisecond,
		ProgressInterval: time.Second, HeartbeatInterval: 10 * time.Second, StaleAfter: 60 * time.Second,
		ReapInterval: 15 * time.Second, ShutdownTimeout: 25 * time.Second, CronProfile: "prod",
		MaxRunTime: map[string]time.Duration{}, JobRunsRetentionDays: 90, DBMaxConns: 40,
	}
}

// withDefaults fills zero values with the defaults. Workers stays as given: 0 is an
// API-only replica.
func (s Settings) withDefaults() Settings {
	d := DefaultSettings()
	if s.NodeID == "" {
		s.NodeID = d.NodeID
	}
	if s.InternalWorkers == 0 {
		s.InternalWorkers = d.InternalWorkers
	}
	for _, p := range []struct{ v, def *time.Duration }{
		{&s.FetchCooldown, &d.FetchCooldown}, {&s.FetchPollInterval, &d.FetchPollInterval},
		{&s.ProgressInterval, &d.ProgressInterval}, {&s.HeartbeatInterval, &d.HeartbeatInterval},
		{&s.StaleAfter, &d.StaleAfter}, {&s.ReapInterval, &d.ReapInterval}, {&s.ShutdownTimeout, &d.ShutdownTimeout},
	} {
		if *p.v == 0 {
			*p.v = *p.def
		}
	}
	if s.CronProfile == "" {
		s.CronProfile = d.CronProfile
	}
	if s.DBMaxConns == 0 {
		s.DBMaxConns = d.DBMaxConns
	}
	if s.MaxRunTime == nil {
		s.MaxRunTime = map[string]time.Duration{}
	}
	return s
}

// SettingError names the setting whose value is invalid.
type SettingError struct {
	Name  string
	Value string
	Want  string
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Name, e.Value, e.Want)
}

// LoadSettings reads the engine.md §17 variables from lookupEnv over the defaults.
func LoadSettings(lookupEnv func(string) (string, bool)) (Settings, error) {
	s := DefaultSettings()
	get := func(k string) (string, bool) {
		v, ok := lookupEnv(k)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	durations := []struct {
		name string
		dst  *time.Duration
		min  time.Duration
	}{
		{"OWLMETRY_FETCH_COOLDOWN", &s.FetchCooldown, time.Millisecond},
		{"OWLMETRY_FETCH_POLL_INTERVAL", &s.FetchPollInterval, time.Millisecond},
		{"OWLMETRY_PROGRESS_INTERVAL", &s.ProgressInterval, time.Millisecond},
		{"OWLMETRY_HEARTBEAT_INTERVAL", &s.HeartbeatInterval, time.Millisecond},
		{"OWLMETRY_STALE_AFTER", &s.StaleAfter, time.Millisecond},
		{"OWLMETRY_REAP_INTERVAL", &s.ReapInterval, time.Millisecond},
	}
	for _, d := range durations {
		if v, ok := get(d.name); ok {
			x, err := time.ParseDuration(v)
			if err != nil || x < d.min {
				return s, &SettingError{Name: d.name, Value: v, Want: "a duration such as 10s, at least " + d.min.String()}
			}
			*d.dst = x
		}
	}
	ints := []struct {
		name string
		dst  *int
		min  int
	}{
		{"OWLMETRY_WORKERS", &s.Workers, 0},
		{"OWLMETRY_INTERNAL_WORKERS", &s.InternalWorkers, 1},
		{"OWLMETRY_JOB_RUNS_RETENTION_DAYS", &s.JobRunsRetentionDays, 0},
		{"OWLMETRY_DB_MAX_CONNS", &s.DBMaxConns, 2},
	}
	for _, d := range ints {
		if v, ok := get(d.name); ok {
			x, err := strconv.Atoi(v)
			if err != nil || x < d.min {
				return s, &SettingError{Name: d.name, Value: v, Want: fmt.Sprintf("an integer ≥ %d", d.min)}
			}
			*d.dst = x
		}
	}
	if v, ok := get("OWLMETRY_NODE_ID"); ok {
		s.NodeID = v
	}
	if v, ok := get("OWLMETRY_CRON_PROFILE"); ok {
		s.CronProfile = v
	}
	if v, ok := get("MAX_DATABASE_SIZE_GB"); ok {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 {
			return s, &SettingError{Name: "MAX_DATABASE_SIZE_GB", Value: v, Want: "a number ≥ 0"}
		}
		s.MaxDatabaseSizeGB = x
	}
	for _, t := range jobtype.All() {
		name := "OWLMETRY_MAX_RUN_TIME_" + strings.ToUpper(t.Name)
		if v, ok := get(name); ok {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				return s, &SettingError{Name: name, Value: v, Want: "a positive duration such as 2h"}
			}
			s.MaxRunTime[t.Name] = x
		}
	}
	return s, s.Validate()
}

// Validate checks the relations between settings.
func (s Settings) Validate() error {
	switch s.CronProfile {
	case "prod", "dev", "off":
	default:
		return &SettingError{Name: "OWLMETRY_CRON_PROFILE", Value: s.CronProfile, Want: "prod, dev or off"}
	}
	if s.StaleAfter < 3*s.HeartbeatInterval {
		return &SettingError{Name: "OWLMETRY_STALE_AFTER", Value: s.StaleAfter.String(),
			Want: "at least three times OWLMETRY_HEARTBEAT_INTERVAL (" + (3 * s.HeartbeatInterval).String() + ")"}
	}
	if s.NodeID == "" {
		return &SettingError{Name: "OWLMETRY_NODE_ID", Value: "", Want: "a non-empty node id"}
	}
	if len(s.NodeID) > 200 {
		return &SettingError{Name: "OWLMETRY_NODE_ID", Value: s.NodeID[:20] + "…", Want: "at most 200 characters"}
	}
	if s.Workers < 0 {
		return &SettingError{Name: "OWLMETRY_WORKERS", Value: strconv.Itoa(s.Workers), Want: "an integer ≥ 0"}
	}
	return nil
}

// MaxRunTimeOf returns the effective max run time of a type.
func (s Settings) MaxRunTimeOf(jobType string) time.Duration {
	if d, ok := s.MaxRunTime[jobType]; ok {
		return d
	}
	if t, ok := jobtype.Lookup(jobType); ok {
		return t.MaxRunTime
	}
	return time.Hour
}

// Config is everything New needs.
type Config struct {
	Settings
	// Handlers maps job types to their handlers. Triggering a type without one is refused.
	Handlers map[string]Handler
	// Notifier receives every terminal transition; nil sends nothing.
	Notifier notify.Notifier
	// Metrics records the engine's metrics; nil uses a private set.
	Metrics *metrics.Set
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Version is the binary version recorded in owlmetry_instances.
	Version string
	// Local makes a CLI engine: node id cli-<host>-<pid>, an insert-only River client,
	// no node lock, no scheduler. It executes runs only through RunLocal.
	Local bool
	// TestOnly sets River's test mode (shorter internal timers).
	TestOnly bool
	// Now is the process clock for durations; defaults to time.Now.
	Now func() time.Time
}
