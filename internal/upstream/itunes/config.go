package itunes

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The environment variables of upstreams.md §1.3 this package reads.
const (
	EnvAPIURL      = "OWLMETRY_ITUNES_API_URL"
	EnvMinInterval = "OWLMETRY_ITUNES_MIN_INTERVAL"
	EnvConcurrency = "OWLMETRY_ITUNES_CONCURRENCY"
)

// DefaultBaseURL is Apple's iTunes host; the client appends /lookup.
const DefaultBaseURL = "https://itunes.apple.com"

// Config is the iTunes part of owlmetry's configuration.
type Config struct {
	// BaseURL is the API base without a trailing slash. Defaults to DefaultBaseURL;
	// tests and owlmetry dev point it at the emulator.
	BaseURL string
	// MinInterval is the pacer's baseline interval between requests (jobs.md §3.5.2).
	// Defaults to 150ms.
	MinInterval time.Duration
	// Concurrency caps requests in flight per process (jobs.md §3.5.3). Defaults to 8.
	Concurrency int
}

// DefaultConfig is the configuration with no variable set.
func DefaultConfig() Config {
	return Config{BaseURL: DefaultBaseURL, MinInterval: 150 * time.Millisecond, Concurrency: 8}
}

// LoadConfig reads the iTunes variables through lookupEnv (an empty value counts as
// unset). An invalid value is an error naming the variable, so owlmetry server and
// owlmetry system jobs run can refuse to start with a message that says what to fix.
func LoadConfig(lookupEnv func(string) (string, bool)) (Config, error) {
	cfg := DefaultConfig()
	get := func(name string) string {
		v, _ := lookupEnv(name)
		return strings.TrimSpace(v)
	}
	if v := get(EnvAPIURL); v != "" {
		u, err := ParseBaseURL(v)
		if err != nil {
			return Config{}, fmt.Errorf("invalid %s %q: %w", EnvAPIURL, redactURL(v), err)
		}
		cfg.BaseURL = u
	}
	if v := get(EnvMinInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("invalid %s %q: want a positive Go duration such as 150ms", EnvMinInterval, v)
		}
		cfg.MinInterval = d
	}
	if v := get(EnvConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return Config{}, fmt.Errorf("invalid %s %q: want a positive integer", EnvConcurrency, v)
		}
		cfg.Concurrency = n
	}
	return cfg, nil
}

// ParseBaseURL validates an upstream base URL the way upstreams.md §1.3 requires:
// absolute http or https, a host, no query and no fragment. It returns the URL with a
// trailing "/" removed; the path is kept, since the client appends its own.
func ParseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("want an absolute http or https URL")
	case u.Host == "":
		return "", errors.New("URL has no host")
	case u.RawQuery != "" || u.ForceQuery:
		return "", errors.New("URL must not have a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", errors.New("URL must not have a fragment")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// redactURL hides a password in a URL before it appears in a message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
