package localjobs

import (
	"encoding/json"
	"fmt"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
)

// Run is a system run object (cli.md §10.1): the keys of the API's JobRun followed by
// the engine's additive job_runs columns under their column names. It is what every
// server-owner command prints for a run.
type Run struct {
	ID                string            `json:"id"`
	JobType           string            `json:"job_type"`
	Status            apitype.Status    `json:"status"`
	TeamID            *string           `json:"team_id"`
	ProjectID         *string           `json:"project_id"`
	TriggeredBy       string            `json:"triggered_by"`
	Params            json.RawMessage   `json:"params"`
	Progress          *apitype.Progress `json:"progress"`
	Result            json.RawMessage   `json:"result"`
	Error             *string           `json:"error"`
	Notify            bool              `json:"notify"`
	StartedAt         *apitype.Time     `json:"started_at"`
	CompletedAt       *apitype.Time     `json:"completed_at"`
	CreatedAt         apitype.Time      `json:"created_at"`
	CancelRequestedAt *apitype.Time     `json:"cancel_requested_at"`
	Executor          string            `json:"executor"`
	RiverJobID        *int64            `json:"river_job_id"`
	ScheduledFor      *apitype.Time     `json:"scheduled_for"`
	OwnerNode         *string           `json:"owner_node"`
	OwnerInstance     *string           `json:"owner_instance"`
	HeartbeatAt       *apitype.Time     `json:"heartbeat_at"`
	CancelRequestedBy *string           `json:"cancel_requested_by"`
}

// fromRecord converts the engine's record of a row.
func fromRecord(r engine.RunRecord) Run {
	api := r.API()
	return Run{
		ID: r.ID, JobType: r.JobType, Status: r.Status, TeamID: r.TeamID, ProjectID: r.ProjectID,
		TriggeredBy: r.TriggeredBy, Params: api.Params, Progress: r.Progress, Result: api.Result,
		Error: r.Error, Notify: r.Notify, StartedAt: api.StartedAt, CompletedAt: api.CompletedAt,
		CreatedAt: api.CreatedAt, CancelRequestedAt: api.CancelRequestedAt,
		Executor: r.Executor, RiverJobID: r.RiverJobID, ScheduledFor: apitype.NewTime(r.ScheduledFor),
		OwnerNode: r.OwnerNode, OwnerInstance: r.OwnerInstance, HeartbeatAt: apitype.NewTime(r.HeartbeatAt),
		CancelRequestedBy: r.CancelRequestedBy,
	}
}

func fromRecords(recs []engine.RunRecord) []Run {
	out := make([]Run, len(recs))
	for i, r := range recs {
		out[i] = fromRecord(r)
	}
	return out
}

// JobRun returns the run as the wait machinery and the run renderers take it. Its raw
// bytes are the whole system run object, so JSON output built from it keeps the engine
// columns.
func (r Run) JobRun() apitype.JobRun {
	out := apitype.JobRun{
		ID: r.ID, JobType: r.JobType, Status: r.Status, TeamID: r.TeamID, ProjectID: r.ProjectID,
		TriggeredBy: r.TriggeredBy, Params: r.Params, Progress: r.Progress, Result: r.Result, Error: r.Error,
		Notify: r.Notify, StartedAt: r.StartedAt, CompletedAt: r.CompletedAt, CreatedAt: r.CreatedAt,
		CancelRequestedAt: r.CancelRequestedAt,
	}
	if b, err := json.Marshal(r); err == nil {
		out.Raw = b
	}
	return out
}

// RunOf recovers the system run object from a JobRun made by Run.JobRun (or received as
// a system run object). Engine columns are zero when the bytes do not carry them.
func RunOf(j apitype.JobRun) (Run, error) {
	b, err := j.MarshalJSON()
	if err != nil {
		return Run{}, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return Run{}, fmt.Errorf("decode system run object: %w", err)
	}
	return r, nil
}

// MarshalJSON writes null for empty params and result, as the API does.
func (r Run) MarshalJSON() ([]byte, error) {
	type plain Run
	p := plain(r)
	if len(p.Params) == 0 {
		p.Params = json.RawMessage("null")
	}
	if len(p.Result) == 0 {
		p.Result = json.RawMessage("null")
	}
	return json.Marshal(p)
}

// Detail is a run with what `system jobs view` adds about its execution.
type Detail struct {
	Run
	// LeaseExpired is true for a running run whose heartbeat is older than the engine's
	// stale-after setting: the reaper will fail it (engine.md §11.3).
	LeaseExpired bool
	// RiverState is the state of the run's River job, "" when it has none or River has
	// already deleted it.
	RiverState string
}

// RunNotFoundError is a run id without a job_runs row.
type RunNotFoundError struct{ ID string }

func (e *RunNotFoundError) Error() string { return "no job run " + e.ID }

// AlreadyEndedError is a cancel of a run that already reached a terminal status.
type AlreadyEndedError struct {
	ID     string
	Status apitype.Status
}

func (e *AlreadyEndedError) Error() string {
	return fmt.Sprintf("run %s already ended (%s)", e.ID, e.Status)
}
