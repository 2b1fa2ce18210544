package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Handler executes runs of one job type (engine.md §6). Handlers are constructed with
// their dependencies (upstream clients, dispatcher, clock) and handed to the engine in
// Config.Handlers; the engine never imports them.
type Handler interface {
	Run(ctx context.Context, run *Run) (Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, run *Run) (Result, error)

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, run *Run) (Result, error) { return f(ctx, run) }

// Result is the JSON object stored in job_runs.result. Keys are snake_case counters plus
// the reserved keys of engine.md §8 (_silent, aborted, abort_reason, cancelled_at).
type Result map[string]any

// StopReason is why a handler's context was cancelled (engine.md §6.4).
type StopReason int32

// The stop reasons.
const (
	StopNone StopReason = iota
	StopCancelRequested
	StopShutdown
	StopDeadline
	StopLeaseLost
	StopInterrupted
)

func (s StopReason) String() string {
	switch s {
	case StopCancelRequested:
		return "cancel requested"
	case StopShutdown:
		return "shutdown"
	case StopDeadline:
		return "deadline"
	case StopLeaseLost:
		return "lease lost"
	case StopInterrupted:
		return "interrupted"
	}
	return "none"
}

// Run is what a handler receives about the run it executes.
type Run struct {
	// ID is the run id (lowercase UUID).
	ID string
	// JobType is the registry id.
	JobType string
	// TeamID is nil for a system run.
	TeamID *string
	// ProjectID is nil for an unkeyed run (a fan-out or a global job).
	ProjectID *string
	// TriggeredBy is the actor string (engine.md §2.5).
	TriggeredBy string
	// Params are the validated params (engine.md §2.3): UUIDs as lowercase strings,
	// integers as int64, strings as string.
	Params map[string]any
	// Progress reports progress; persistence and throttling are the engine's (§7).
	Progress Reporter
	// Log carries run_id, job_type, team_id and project_id.
	Log *slog.Logger
	// DB is the shared handler pool.
	DB *pgxpool.Pool
	// Now is the process clock, injectable in tests. Instants stored in SQL come from the
	// database instead (jobs.md §3.1 rule 4).
	Now func() time.Time

	stop atomic.Int32
}

// IsCancelled reports whether a cancel request reached this run.
func (r *Run) IsCancelled() bool { return r.StopReason() == StopCancelRequested }

// StopReason reports why the run's context was cancelled, or StopNone.
func (r *Run) StopReason() StopReason { return StopReason(r.stop.Load()) }

// setStop records the first stop reason; later ones are ignored.
func (r *Run) setStop(s StopReason) bool { return r.stop.CompareAndSwap(int32(StopNone), int32(s)) }

// ParamString returns a string or UUID param, or "".
func (r *Run) ParamString(name string) string {
	s, _ := r.Params[name].(string)
	return s
}

// ParamInt returns an integer param and whether it was set.
func (r *Run) ParamInt(name string) (int64, bool) {
	switch v := r.Params[name].(type) {
	case int64:
		return v, true
	case float64:
		return int64(v), true
	case int:
		return int64(v), true
	}
	return 0, false
}

// Reporter receives a handler's progress (engine.md §7). Report replaces the whole value;
// it is safe for concurrent use and never blocks on the database. total 0 means
// indeterminate.
type Reporter interface {
	Report(processed, total int64, message string)
	// Inner returns a reporter for one project of a fan-out: its reports appear as
	// progress.inner with that project_id (engine.md §7.4). Done removes it.
	Inner(projectID string) InnerReporter
}

// InnerReporter is one project's progress inside a fan-out.
type InnerReporter interface {
	Report(processed, total int64, message string)
	// Done removes this project's inner progress.
	Done()
}

// StoppedError is the stopped-early signal: the handler stopped before finishing its
// work because its context was cancelled, and returns its partial result.
type StoppedError struct {
	Partial Result
}

func (e *StoppedError) Error() string { return "handler stopped early" }

// Stopped returns the stopped-early signal with a partial result (which may be nil).
func Stopped(partial Result) error { return &StoppedError{Partial: partial} }

// IsStopped reports whether err is the stopped-early signal or wraps context.Canceled,
// which the engine treats like Stopped(nil) (engine.md §6.3).
func IsStopped(err error) (Result, bool) {
	var st *StoppedError
	if errors.As(err, &st) {
		return st.Partial, true
	}
	if errors.Is(err, context.Canceled) {
		return nil, true
	}
	return nil, false
}

// panicError is a recovered handler panic.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }
