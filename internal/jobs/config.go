package jobs

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

// Config is the environment the handlers read (jobs.md §3.10). LoadConfig builds it once
// at start-up, so an invalid value stops the server before any run starts rather than
// failing runs one by one.
type Config struct {
	// MaxDatabaseSizeGB is MAX_DATABASE_SIZE_GB, the size db_pruning keeps the database
	// under. Decimals are allowed. Defaults to 0, which disables size pruning.
	MaxDatabaseSizeGB float64
	// AttachmentsPath is OWLMETRY_ATTACHMENTS_PATH, the root of the attachment files that
	// attachment_cleanup sweeps. Defaults to ./data/attachments.
	AttachmentsPath string
	// WebAppURL is WEB_APP_URL, the dashboard base URL that notification links are
	// rendered against. Defaults to http://localhost:3000.
	WebAppURL string
	// IssueScanSettle is OWLMETRY_ISSUE_SCAN_SETTLE, how far behind the newest received
	// error the issue scan stays. Defaults to 60s.
	IssueScanSettle time.Duration
	// FanoutConcurrency is OWLMETRY_FANOUT_CONCURRENCY, how many projects a fan-out run
	// processes at once (1–32). Defaults to 4.
	FanoutConcurrency int
	// ITunes is the iTunes Lookup part (upstreams.md §1.3): OWLMETRY_ITUNES_API_URL,
	// OWLMETRY_ITUNES_MIN_INTERVAL (the pacer's baseline) and
	// OWLMETRY_ITUNES_CONCURRENCY (requests in flight per process). Defaults to
	// itunes.DefaultConfig(); zero fields take their defaults.
	ITunes itunes.Config
}

// Defaults of jobs.md §3.10.
const (
	DefaultAttachmentsPath   = "./data/attachments"
	DefaultWebAppURL         = "http://localhost:3000"
	DefaultIssueScanSettle   = 60 * time.Second
	DefaultFanoutConcurrency = 4
)

// maxDatabaseSizeGB keeps floor(GB × 1024³) within the integers a JSON number carries
// exactly, the range of the max_size_bytes param.
const maxDatabaseSizeGB = float64(jobtype.MaxSafeInteger) / (1 << 30)

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		AttachmentsPath:   DefaultAttachmentsPath,
		WebAppURL:         DefaultWebAppURL,
		IssueScanSettle:   DefaultIssueScanSettle,
		FanoutConcurrency: DefaultFanoutConcurrency,
		ITunes:            itunes.DefaultConfig(),
	}
}

// LoadConfig reads the jobs.md §3.10 variables through lookupEnv over the defaults. An
// unset or blank variable keeps its default; an invalid one is an *engine.SettingError
// naming the variable, its value and what was expected.
func LoadConfig(lookupEnv func(string) (string, bool)) (Config, error) {
	c := DefaultConfig()
	get := func(k string) (string, bool) {
		v, ok := lookupEnv(k)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	if v, ok := get("MAX_DATABASE_SIZE_GB"); ok {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || x < 0 || x > maxDatabaseSizeGB {
			return c, &engine.SettingError{Name: "MAX_DATABASE_SIZE_GB", Value: v,
				Want: fmt.Sprintf("a number of gigabytes from 0 to %.0f, such as 10 or 2.5", math.Floor(maxDatabaseSizeGB))}
		}
		c.MaxDatabaseSizeGB = x
	}
	if v, ok := get("OWLMETRY_ATTACHMENTS_PATH"); ok {
		c.AttachmentsPath = v
	}
	if v, ok := get("WEB_APP_URL"); ok {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, &engine.SettingError{Name: "WEB_APP_URL", Value: v, Want: "an http or https URL such as https://app.example.com"}
		}
		c.WebAppURL = strings.TrimRight(v, "/")
	}
	if v, ok := get("OWLMETRY_ISSUE_SCAN_SETTLE"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, &engine.SettingError{Name: "OWLMETRY_ISSUE_SCAN_SETTLE", Value: v, Want: "a duration of 0 or more, such as 60s"}
		}
		c.IssueScanSettle = d
	}
	if v, ok := get("OWLMETRY_FANOUT_CONCURRENCY"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 32 {
			return c, &engine.SettingError{Name: "OWLMETRY_FANOUT_CONCURRENCY", Value: v, Want: "an integer from 1 to 32"}
		}
		c.FanoutConcurrency = n
	}
	if v, ok := get(itunes.EnvAPIURL); ok {
		u, err := itunes.ParseBaseURL(v)
		if err != nil {
			return c, &engine.SettingError{Name: itunes.EnvAPIURL, Value: redactedURL(v),
				Want: "an absolute http or https URL without query or fragment, such as " + itunes.DefaultBaseURL}
		}
		c.ITunes.BaseURL = u
	}
	if v, ok := get(itunes.EnvMinInterval); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, &engine.SettingError{Name: itunes.EnvMinInterval, Value: v, Want: "a positive duration such as 150ms"}
		}
		c.ITunes.MinInterval = d
	}
	if v, ok := get(itunes.EnvConcurrency); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, &engine.SettingError{Name: itunes.EnvConcurrency, Value: v, Want: "a positive integer such as 8"}
		}
		c.ITunes.Concurrency = n
	}
	return c, nil
}

// redactedURL hides a password in a URL before it appears in a message.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// MaxDatabaseSizeBytes is floor(MaxDatabaseSizeGB × 1024³), the max_size_bytes of
// scheduled db_pruning runs (jobs.md §2.1); 0 when pruning is disabled.
func (c Config) MaxDatabaseSizeBytes() int64 {
	return int64(math.Floor(c.MaxDatabaseSizeGB * (1 << 30)))
}
