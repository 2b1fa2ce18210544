package localjobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river/rivertype"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

func isRiverNotFound(err error) bool { return errors.Is(err, rivertype.ErrNotFound) }

// StartRequest is a run to start from the server-owner CLI (engine.md §2.4, entry point
// cli): any registry type, the project's team when ProjectID is set, a system run
// otherwise.
type StartRequest struct {
	JobType string
	// ProjectID becomes params.project_id; "" starts a run without a project (a system
	// run, or a fan-out for the fan-out types).
	ProjectID string
	// Params are the --param values, still strings; the engine converts them to the
	// declared types.
	Params map[string]string
}

func (s *Store) enqueueRequest(r StartRequest) engine.EnqueueRequest {
	params := make(map[string]any, len(r.Params)+1)
	for k, v := range r.Params {
		params[k] = v
	}
	if r.ProjectID != "" {
		params["project_id"] = r.ProjectID
	}
	return engine.EnqueueRequest{JobType: r.JobType, Entry: jobtype.EntryCLI, Params: params, TriggeredBy: s.cfg.Actor}
}

// CheckParams applies the static rules of engine.md §2.3 for the cli entry point before
// anything connects: the type's declared params, their types, required ones, and
// project_id only where the type takes one. Whether the project or app exists is the
// engine's check at enqueue time.
func CheckParams(r StartRequest) error {
	t, ok := jobtype.Lookup(r.JobType)
	if !ok {
		return &engine.UnknownTypeError{JobType: r.JobType}
	}
	raw := make(map[string]any, len(r.Params)+1)
	for k, v := range r.Params {
		raw[k] = v
	}
	if r.ProjectID != "" {
		raw["project_id"] = r.ProjectID
	}
	_, err := jobtype.ValidateParams(t, jobtype.EntryCLI, raw)
	return err
}

// Enqueue queues a run for a running server through the engine's single enqueue path,
// with the overlap rule: an active run with the same key is *apitype.ConflictError.
func (s *Store) Enqueue(ctx context.Context, r StartRequest) (Run, error) {
	e, err := s.engine()
	if err != nil {
		return Run{}, err
	}
	rec, err := e.Enqueue(ctx, s.enqueueRequest(r))
	if err != nil {
		return Run{}, wrapConflict(err)
	}
	return fromRecord(rec), nil
}

// RunConflictError is an active run holding the overlap key, met by a server-owner
// command. It wraps the engine's *apitype.ConflictError — so it exits 5 like any
// conflict — and says that the existing run is followed with `system jobs view`, since a
// system run is invisible to the API.
type RunConflictError struct {
	*apitype.ConflictError
}

// Unwrap returns the engine's conflict.
func (e *RunConflictError) Unwrap() error { return e.ConflictError }

func wrapConflict(err error) error {
	var c *apitype.ConflictError
	if errors.As(err, &c) {
		return &RunConflictError{ConflictError: c}
	}
	return err
}

// LiveWorkers reports whether a server that executes queued runs is alive
// (engine.md §11.8).
func (s *Store) LiveWorkers(ctx context.Context) (bool, error) {
	e, err := s.engine()
	if err != nil {
		return false, err
	}
	return e.LiveWorkers(ctx)
}

// secretKeyTypes are the integration jobs, which open sealed credentials.
var secretKeyTypes = map[string]bool{
	jobtype.AppleAdsSync:               true,
	jobtype.RevenueCatSync:             true,
	jobtype.RevenueCatUserBackfill:     true,
	jobtype.AppStoreConnectReviewsSync: true,
}

// SecretKeyMissingError is a local run of an integration job without the server's
// OWLMETRY_SECRET_KEY, which it needs to open the stored credentials.
type SecretKeyMissingError struct{ JobType string }

func (e *SecretKeyMissingError) Error() string {
	return fmt.Sprintf("OWLMETRY_SECRET_KEY is required to run %s locally", e.JobType)
}

// LocalOptions tune RunLocal.
type LocalOptions struct {
	// Interrupt fails the run at once with "interrupted by operator" (the second signal).
	Interrupt <-chan struct{}
	// Started is called once the run is recorded as running, before its handler starts.
	Started func(Run)
}

// RunLocal executes a run in this process (engine.md §13): the engine runs one reaper
// pass, inserts the run as running under this process's node, and runs the handler
// with heartbeats, progress, cancel delivery from any process, and finalisation.
// Cancelling ctx asks the run to stop cooperatively; it returns the final run.
func (s *Store) RunLocal(ctx context.Context, r StartRequest, o LocalOptions) (Run, error) {
	e, err := s.engine()
	if err != nil {
		return Run{}, err
	}
	if !e.HasHandler(r.JobType) {
		return Run{}, &engine.NoHandlerError{JobType: r.JobType}
	}
	if secretKeyTypes[r.JobType] {
		if v, _ := s.cfg.LookupEnv("OWLMETRY_SECRET_KEY"); v == "" {
			return Run{}, &SecretKeyMissingError{JobType: r.JobType}
		}
	}
	lo := engine.LocalOptions{CancelActor: s.cfg.Actor, Interrupt: o.Interrupt}
	if o.Started != nil {
		lo.Started = func(rec engine.RunRecord) { o.Started(fromRecord(rec)) }
	}
	rec, err := e.RunLocal(ctx, s.enqueueRequest(r), lo)
	if err != nil {
		return Run{}, wrapConflict(err)
	}
	return fromRecord(rec), nil
}

// CancelOutcome says what a cancel did: a pending run is cancelled at once, a running
// one is asked to stop at its next checkpoint.
type CancelOutcome string

// The cancel outcomes.
const (
	CancelDone      CancelOutcome = CancelOutcome(engine.CancelDone)
	CancelRequested CancelOutcome = CancelOutcome(engine.CancelRequested)
)

// Cancel requests cancellation through the engine, effective on whichever process runs
// the run — a server replica or a --local run elsewhere (engine.md §9.1).
func (s *Store) Cancel(ctx context.Context, id string) (Run, CancelOutcome, error) {
	e, err := s.engine()
	if err != nil {
		return Run{}, "", err
	}
	rec, out, err := e.Cancel(ctx, id, s.cfg.Actor)
	var nc *engine.NotCancellableError
	switch {
	case errors.Is(err, engine.ErrRunNotFound):
		return Run{}, "", &RunNotFoundError{ID: id}
	case errors.As(err, &nc):
		return Run{}, "", &AlreadyEndedError{ID: id, Status: nc.Status}
	case err != nil:
		return Run{}, "", fmt.Errorf("cancel run %s: %w", id, err)
	}
	return fromRecord(rec), CancelOutcome(out), nil
}

// Recover applies the engine's stale-run rule now (engine.md §11.6): running runs whose
// lease expired become failed with "Server restarted during execution", with their
// notifications. With dryRun it only lists them.
func (s *Store) Recover(ctx context.Context, dryRun bool) ([]Run, error) {
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	recs, err := e.Recover(ctx, dryRun)
	if err != nil {
		return nil, fmt.Errorf("recover stale runs: %w", err)
	}
	return fromRecords(recs), nil
}

// PruneOptions select the terminal runs Prune deletes (cli.md §10.8).
type PruneOptions = engine.PruneOptions

// Prune deletes terminal runs older than the cutoff through the engine's retention rule,
// in batches that are each their own transaction, and returns the count per job type.
// Active runs are never deleted.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (map[string]int64, error) {
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	counts, err := e.Prune(ctx, o)
	if err != nil {
		return counts, fmt.Errorf("prune job runs: %w", err)
	}
	return counts, nil
}

// SubscribeRun delivers a wake-up whenever the job_runs trigger reports a change to the
// run. Only a process that executes a local run listens for those notifications; for
// any other the channel stays silent and callers poll. The channel closes when stop is
// called.
func (s *Store) SubscribeRun(id string) (<-chan struct{}, func()) {
	e, err := s.engine()
	if err != nil {
		c := make(chan struct{})
		return c, func() {}
	}
	sub := e.Subscribe(id)
	out := make(chan struct{}, 1)
	go func() {
		for range sub.C {
			select {
			case out <- struct{}{}:
			default:
			}
		}
		close(out)
	}()
	return out, sub.Close
}
