// Package apitype holds the wire types of the Owlmetry HTTP API, shared by the server
// that writes them and the client that reads them: one definition of the wire format.
package apitype

import (
	"encoding/json"
	"fmt"
	"time"
)

// Status is a run's lifecycle state.
type Status string

// The five statuses.
const (
	StatusPending   Status = "pending"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Statuses lists the statuses in lifecycle order.
var Statuses = []Status{StatusPending, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled}

// Valid reports whether s is one of the five statuses.
func (s Status) Valid() bool {
	for _, x := range Statuses {
		if s == x {
			return true
		}
	}
	return false
}

// Active reports pending or running.
func (s Status) Active() bool { return s == StatusPending || s == StatusRunning }

// Terminal reports completed, failed or cancelled.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Progress is a run's progress (api.md §6.2).
type Progress struct {
	Processed int64          `json:"processed"`
	Total     int64          `json:"total"`
	Message   string         `json:"message,omitempty"`
	Inner     *InnerProgress `json:"inner,omitempty"`
}

// InnerProgress is the per-project progress of a fan-out (engine.md §7.4).
type InnerProgress struct {
	Processed int64  `json:"processed"`
	Total     int64  `json:"total"`
	Message   string `json:"message,omitempty"`
	ProjectID string `json:"project_id"`
}

// Time is a timestamp that marshals as RFC 3339 UTC with exactly three fractional
// digits and Z (api.md §1), and parses any RFC 3339 value.
type Time struct{ time.Time }

// TimeFormat is the API's timestamp layout.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// MarshalJSON writes the API layout.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimeFormat) + `"`), nil
}

// UnmarshalJSON accepts any RFC 3339 timestamp.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("invalid timestamp %q: %w", s, err)
	}
	t.Time = v
	return nil
}

// NewTime wraps a time.Time pointer; nil stays nil.
func NewTime(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	return &Time{Time: *t}
}

// JobRun is one run as the API returns it (api.md §6.1). Raw keeps the exact bytes
// received, so JSON output can re-emit fields this version does not know.
type JobRun struct {
	ID                string          `json:"id"`
	JobType           string          `json:"job_type"`
	Status            Status          `json:"status"`
	TeamID            *string         `json:"team_id"`
	ProjectID         *string         `json:"project_id"`
	TriggeredBy       string          `json:"triggered_by"`
	Params            json.RawMessage `json:"params"`
	Progress          *Progress       `json:"progress"`
	Result            json.RawMessage `json:"result"`
	Error             *string         `json:"error"`
	Notify            bool            `json:"notify"`
	StartedAt         *Time           `json:"started_at"`
	CompletedAt       *Time           `json:"completed_at"`
	CreatedAt         Time            `json:"created_at"`
	CancelRequestedAt *Time           `json:"cancel_requested_at"`

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the known fields and keeps a copy of the input.
func (r *JobRun) UnmarshalJSON(b []byte) error {
	type plain JobRun // no methods, so no recursion
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	r.Raw = append(r.Raw[:0], b...)
	return nil
}

// MarshalJSON writes the received bytes when there are any.
func (r JobRun) MarshalJSON() ([]byte, error) {
	if len(r.Raw) > 0 {
		return r.Raw, nil
	}
	type plain JobRun
	p := plain(r)
	if len(p.Params) == 0 {
		p.Params = json.RawMessage("null")
	}
	if len(p.Result) == 0 {
		p.Result = json.RawMessage("null")
	}
	return json.Marshal(p)
}

// Aborted reports a completed run whose result says an upstream refused to continue.
func (r JobRun) Aborted() bool {
	if r.Status != StatusCompleted || len(r.Result) == 0 {
		return false
	}
	var res struct {
		Aborted bool `json:"aborted"`
	}
	_ = json.Unmarshal(r.Result, &res)
	return res.Aborted
}

// AbortReason returns result.abort_reason, or "".
func (r JobRun) AbortReason() string {
	var res struct {
		AbortReason *string `json:"abort_reason"`
	}
	if len(r.Result) > 0 {
		_ = json.Unmarshal(r.Result, &res)
	}
	if res.AbortReason == nil {
		return ""
	}
	return *res.AbortReason
}

// JobRunEnvelope is `{"job_run": …}`.
type JobRunEnvelope struct {
	JobRun JobRun `json:"job_run"`
}

// JobRunList is the list response (api.md §7.1).
type JobRunList struct {
	JobRuns []JobRun `json:"job_runs"`
	Cursor  *string  `json:"cursor"`
	HasMore bool     `json:"has_more"`

	// Raw keeps the envelope as received; see MarshalJSON.
	Raw json.RawMessage `json:"-"`
}

// ErrorBody is the error envelope (api.md §2.1). Extra keeps every other field.
type ErrorBody struct {
	Error         string `json:"error"`
	ExistingRunID string `json:"existing_run_id,omitempty"`
}

// ConflictError is an active run holding the overlap key (engine.md §5). The engine
// returns it for the database path and the client for a 409 with existing_run_id.
type ConflictError struct {
	JobType       string
	ProjectID     string
	ExistingRunID string
	// Message is the API's error text when the conflict came over HTTP.
	Message string
	// ExistingRunIDs maps job types to active runs (ads sync).
	ExistingRunIDs map[string]string
}

func (e *ConflictError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return ConflictMessage(e.JobType, e.ProjectID != "")
}

// ConflictMessage is the API's 409 text (api.md §2.4).
func ConflictMessage(jobType string, keyed bool) string {
	if keyed {
		return jobType + " is already running or pending for this project"
	}
	return jobType + " is already running or pending"
}
