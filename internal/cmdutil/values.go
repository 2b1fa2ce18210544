package cmdutil

import (
	"regexp"
	"time"

	"github.com/spf13/pflag"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

var relativeTime = regexp.MustCompile(`^[0-9]{1,9}[smhdw]$`)

// ParseTimeFilter checks a time filter (cli.md §0): `<n>s|m|h|d|w`, an RFC 3339
// timestamp with a zone, or YYYY-MM-DD. The value is sent as typed; anything else is a
// usage error naming the flag.
func ParseTimeFilter(flag, value string) (string, error) {
	if relativeTime.MatchString(value) {
		return value, nil
	}
	if _, err := time.Parse(time.RFC3339Nano, value); err == nil {
		return value, nil
	}
	if len(value) == len("2006-01-02") {
		if _, err := time.Parse("2006-01-02", value); err == nil {
			return value, nil
		}
	}
	return "", FlagErrorf("invalid %s %q: use a relative time (30s, 15m, 2h, 7d, 1w), an RFC 3339 timestamp with zone, or YYYY-MM-DD", flag, value)
}

// ParseStatus checks a run status.
func ParseStatus(flag, value string) (apitype.Status, error) {
	s := apitype.Status(value)
	if !s.Valid() {
		return "", FlagErrorf("invalid %s %q: valid statuses are pending, running, completed, failed, cancelled", flag, value)
	}
	return s, nil
}

// Statuses lists the run statuses, for completion.
func Statuses() []string {
	out := make([]string, len(apitype.Statuses))
	for i, s := range apitype.Statuses {
		out[i] = string(s)
	}
	return out
}

// ProjectFlag is --project-id on commands that need a project. The flag value is checked
// in Validate; the environment and profile defaults come from Settings.ProjectID.
type ProjectFlag struct {
	// Value is the lower-cased flag value, "" when not given.
	Value string
}

// BuildFlags adds --project-id.
func (p *ProjectFlag) BuildFlags(fs *pflag.FlagSet) {
	fs.StringVar(&p.Value, "project-id", "", "project UUID (default: OWLMETRY_PROJECT_ID or the profile's default_project)")
}

// Validate checks the flag value before any request.
func (p *ProjectFlag) Validate(fs *pflag.FlagSet) error {
	if !fs.Changed("project-id") {
		p.Value = ""
		return nil
	}
	id, err := ParseUUID("--project-id", p.Value)
	if err != nil {
		return err
	}
	p.Value = id
	return nil
}

// MessageError gives an error a friendlier sentence while keeping the original in the
// chain, so its exit code and JSON fields still come from the original
// ("no job run 3f2a…" for a 404).
type MessageError struct {
	Message string
	Err     error
}

func (e *MessageError) Error() string { return e.Message }

// Unwrap returns the original error.
func (e *MessageError) Unwrap() error { return e.Err }

// Reword replaces err's message.
func Reword(err error, message string) error {
	if err == nil {
		return nil
	}
	return &MessageError{Message: message, Err: err}
}
