package apitype

import (
	"encoding/json"
)

// keep copies b into dst. It is the shared
// half of the UnmarshalJSON methods below, which keep the bytes they were given so JSON
// output can re-emit fields this version does not know (cli.md §4.4).
func keep(dst *json.RawMessage, b []byte) {
	*dst = append((*dst)[:0], b...)
}

// UnmarshalJSON decodes the list and keeps the envelope's bytes.
func (l *JobRunList) UnmarshalJSON(b []byte) error {
	type plain JobRunList
	if err := json.Unmarshal(b, (*plain)(l)); err != nil {
		return err
	}
	keep(&l.Raw, b)
	return nil
}

// MarshalJSON writes the received envelope when there is one. Runs are written from
// their own raw bytes either way.
func (l JobRunList) MarshalJSON() ([]byte, error) {
	if len(l.Raw) > 0 {
		return l.Raw, nil
	}
	type plain JobRunList
	p := plain(l)
	if p.JobRuns == nil {
		p.JobRuns = []JobRun{}
	}
	return json.Marshal(p)
}

// TriggerRequest is the body of POST /v1/teams/{team}/jobs/trigger (api.md §7.2).
type TriggerRequest struct {
	JobType   string            `json:"job_type"`
	ProjectID string            `json:"project_id,omitempty"`
	Params    map[string]string `json:"params,omitempty"`
	Notify    bool              `json:"notify,omitempty"`
}

// CancelResponse is the answer to POST /v1/jobs/{run}/cancel (api.md §7.4). Status is
// the owlmetry addition: "cancelled" when a pending run was cancelled at once,
// "running" when a running one was asked to stop; the public server sends none.
type CancelResponse struct {
	Cancelled bool   `json:"cancelled"`
	Status    Status `json:"status,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the known fields and keeps the body.
func (r *CancelResponse) UnmarshalJSON(b []byte) error {
	type plain CancelResponse
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	keep(&r.Raw, b)
	return nil
}

// MarshalJSON writes the received body when there is one.
func (r CancelResponse) MarshalJSON() ([]byte, error) {
	if len(r.Raw) > 0 {
		return r.Raw, nil
	}
	type plain CancelResponse
	return json.Marshal(plain(r))
}

// SyncResponse is the answer of the run-creating sync routes (api.md §7.6–§7.10),
// including the public server's zero answer {synced: 0, total: 0}.
type SyncResponse struct {
	Syncing            *bool   `json:"syncing,omitempty"`
	Synced             *int64  `json:"synced,omitempty"`
	Total              *int64  `json:"total,omitempty"`
	JobRunID           *string `json:"job_run_id,omitempty"`
	RevenueCatJobRunID *string `json:"revenuecat_job_run_id,omitempty"`
	AppleAdsJobRunID   *string `json:"apple_ads_job_run_id,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the known fields and keeps the body.
func (r *SyncResponse) UnmarshalJSON(b []byte) error {
	type plain SyncResponse
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	keep(&r.Raw, b)
	return nil
}

// MarshalJSON writes the received body when there is one.
func (r SyncResponse) MarshalJSON() ([]byte, error) {
	if len(r.Raw) > 0 {
		return r.Raw, nil
	}
	type plain SyncResponse
	return json.Marshal(plain(r))
}

// Started reports whether the answer says runs were started. A body without `syncing`
// (the public server's {synced: 0, total: 0}) started nothing unless it names a run.
func (r SyncResponse) Started() bool {
	if r.Syncing != nil {
		return *r.Syncing
	}
	return r.JobRunID != nil || r.RevenueCatJobRunID != nil || r.AppleAdsJobRunID != nil
}

// UserSyncResponse is the answer of the per-user sync routes (api.md §7.16, §7.17).
type UserSyncResponse struct {
	Updated     int64             `json:"updated"`
	Properties  map[string]string `json:"properties"`
	FieldErrors []FieldError      `json:"field_errors,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// FieldError is one name lookup that failed during a per-user Apple Ads sync.
type FieldError struct {
	Field      string `json:"field"`
	StatusCode int    `json:"statusCode"` //nolint:tagliatelle // the public server's name
}

// UnmarshalJSON decodes the known fields and keeps the body.
func (r *UserSyncResponse) UnmarshalJSON(b []byte) error {
	type plain UserSyncResponse
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	keep(&r.Raw, b)
	return nil
}

// MarshalJSON writes the received body when there is one.
func (r UserSyncResponse) MarshalJSON() ([]byte, error) {
	if len(r.Raw) > 0 {
		return r.Raw, nil
	}
	type plain UserSyncResponse
	return json.Marshal(plain(r))
}

// Integration is one configured provider of a project (api.md §7.15). Config holds
// masked hints only.
type Integration struct {
	ID            string            `json:"id"`
	ProjectID     string            `json:"project_id"`
	Provider      string            `json:"provider"`
	Config        map[string]string `json:"config"`
	Enabled       bool              `json:"enabled"`
	MissingFields []string          `json:"missing_fields"`
	CreatedAt     *Time             `json:"created_at"`
	UpdatedAt     *Time             `json:"updated_at"`

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the known fields and keeps the bytes.
func (i *Integration) UnmarshalJSON(b []byte) error {
	type plain Integration
	if err := json.Unmarshal(b, (*plain)(i)); err != nil {
		return err
	}
	keep(&i.Raw, b)
	return nil
}

// MarshalJSON writes the received bytes when there are any.
func (i Integration) MarshalJSON() ([]byte, error) {
	if len(i.Raw) > 0 {
		return i.Raw, nil
	}
	type plain Integration
	p := plain(i)
	if p.MissingFields == nil {
		p.MissingFields = []string{}
	}
	return json.Marshal(p)
}

// IntegrationList is `{"integrations": […]}`.
type IntegrationList struct {
	Integrations []Integration `json:"integrations"`
}

// Team names a team in whoami answers.
type Team struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
	// Role is set for a user's memberships only.
	Role string `json:"role,omitempty"`
}

// WhoAmI is the answer of GET /v1/auth/whoami (api.md §7.14): an API key with its team
// and permissions, or a user with an e-mail and memberships.
type WhoAmI struct {
	Type        string   `json:"type"`
	KeyType     string   `json:"key_type,omitempty"`
	Team        *Team    `json:"team,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	Email       string   `json:"email,omitempty"`
	Teams       []Team   `json:"teams,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the known fields and keeps the body.
func (w *WhoAmI) UnmarshalJSON(b []byte) error {
	type plain WhoAmI
	if err := json.Unmarshal(b, (*plain)(w)); err != nil {
		return err
	}
	keep(&w.Raw, b)
	return nil
}

// MarshalJSON writes the received body when there is one.
func (w WhoAmI) MarshalJSON() ([]byte, error) {
	if len(w.Raw) > 0 {
		return w.Raw, nil
	}
	type plain WhoAmI
	return json.Marshal(plain(w))
}

// ProgressEvent is the data of the event stream's `progress` event (api.md §7.5): the
// fields of a run that change while it runs. Raw keeps the bytes so unknown progress
// fields survive a merge into the last snapshot.
type ProgressEvent struct {
	ID                string    `json:"id"`
	Status            Status    `json:"status"`
	Progress          *Progress `json:"progress"`
	CancelRequestedAt *Time     `json:"cancel_requested_at"`

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the known fields and keeps the bytes.
func (e *ProgressEvent) UnmarshalJSON(b []byte) error {
	type plain ProgressEvent
	if err := json.Unmarshal(b, (*plain)(e)); err != nil {
		return err
	}
	keep(&e.Raw, b)
	return nil
}
