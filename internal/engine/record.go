package engine

import (
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// RunRecord is one job_runs row with every column (engine.md §3.1).
type RunRecord struct {
	ID                string
	JobType           string
	Status            apitype.Status
	TeamID            *string
	ProjectID         *string
	TriggeredBy       string
	Params            map[string]any
	Progress          *apitype.Progress
	Result            map[string]any
	Error             *string
	Notify            bool
	StartedAt         *time.Time
	CompletedAt       *time.Time
	CreatedAt         time.Time
	Executor          string
	RiverJobID        *int64
	ScheduledFor      *time.Time
	OwnerNode         *string
	OwnerInstance     *string
	HeartbeatAt       *time.Time
	CancelRequestedAt *time.Time
	CancelRequestedBy *string
}

// RunColumns lists the job_runs columns in the order ScanRun reads them.
const RunColumns = `id, job_type, status, team_id, project_id, triggered_by, params, progress, result, error,
	notify, started_at, completed_at, created_at, executor, river_job_id, scheduled_for, owner_node,
	owner_instance, heartbeat_at, cancel_requested_at, cancel_requested_by`

// ScanRun reads one row selected with RunColumns.
func ScanRun(row pgx.Row) (RunRecord, error) {
	var (
		r                    RunRecord
		status               string
		params, prog, result []byte
	)
	err := row.Scan(&r.ID, &r.JobType, &status, &r.TeamID, &r.ProjectID, &r.TriggeredBy, &params, &prog, &result,
		&r.Error, &r.Notify, &r.StartedAt, &r.CompletedAt, &r.CreatedAt, &r.Executor, &r.RiverJobID, &r.ScheduledFor,
		&r.OwnerNode, &r.OwnerInstance, &r.HeartbeatAt, &r.CancelRequestedAt, &r.CancelRequestedBy)
	if err != nil {
		return r, err
	}
	r.Status = apitype.Status(status)
	if len(params) > 0 {
		if err := json.Unmarshal(params, &r.Params); err != nil {
			return r, err
		}
	}
	if len(prog) > 0 {
		r.Progress = &apitype.Progress{}
		if err := json.Unmarshal(prog, r.Progress); err != nil {
			return r, err
		}
	}
	if len(result) > 0 {
		if err := json.Unmarshal(result, &r.Result); err != nil {
			return r, err
		}
	}
	for _, t := range []*time.Time{r.StartedAt, r.CompletedAt, &r.CreatedAt, r.ScheduledFor, r.HeartbeatAt, r.CancelRequestedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return r, nil
}

// CollectRuns reads every row of rows selected with RunColumns.
func CollectRuns(rows pgx.Rows) ([]RunRecord, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunRecord, error) { return ScanRun(r) })
}

// API returns the run as the HTTP API shows it (api.md §6.1).
func (r RunRecord) API() apitype.JobRun {
	out := apitype.JobRun{
		ID: r.ID, JobType: r.JobType, Status: r.Status, TeamID: r.TeamID, ProjectID: r.ProjectID,
		TriggeredBy: r.TriggeredBy, Progress: r.Progress, Error: r.Error, Notify: r.Notify,
		StartedAt: apitype.NewTime(r.StartedAt), CompletedAt: apitype.NewTime(r.CompletedAt),
		CreatedAt: apitype.Time{Time: r.CreatedAt}, CancelRequestedAt: apitype.NewTime(r.CancelRequestedAt),
	}
	out.Params = rawJSON(r.Params)
	out.Result = rawJSON(r.Result)
	return out
}

func rawJSON(m map[string]any) json.RawMessage {
	if m == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// Aborted reports a completed run whose result says aborted.
func (r RunRecord) Aborted() bool {
	a, _ := r.Result["aborted"].(bool)
	return r.Status == apitype.StatusCompleted && a
}
