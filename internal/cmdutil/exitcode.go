// Package cmdutil is what every command package stands on: the Factory, exit codes and
// error types, output helpers and the flag sets several commands share.
package cmdutil

// ExitCode is the process exit status (cli.md §5.2).
type ExitCode int

// The exit codes. Their meaning is documented by `owlmetry help exit-codes`.
const (
	ExitOK          ExitCode = 0
	ExitFailure     ExitCode = 1
	ExitUsage       ExitCode = 2
	ExitAuth        ExitCode = 4
	ExitConflict    ExitCode = 5
	ExitPending     ExitCode = 8
	ExitInterrupted ExitCode = 130
)

// ExitCodeDoc is one row of the exit-code table.
type ExitCodeDoc struct {
	Code ExitCode
	Name string
	When string
}

// ExitCodes is the table `owlmetry help exit-codes` prints and the README repeats.
var ExitCodes = []ExitCodeDoc{
	{ExitOK, "ok", "success, including empty results, \"nothing to sync\", and waited runs that all succeeded"},
	{ExitFailure, "failure", "every failure not listed below: API 400, 404, 422, 429 after retries, 5xx; network errors; invalid or locked config file; database errors; a waited run that ended failed, cancelled, or completed with result.aborted: true; contact lost while waiting"},
	{ExitUsage, "usage", "unknown command or flag, bad arguments or flag values, failed client-side validation, a required id that cannot be resolved, a prompt needed where none is possible"},
	{ExitAuth, "auth", "no API key; HTTP 401 or 403; no database URL; Postgres authentication failure"},
	{ExitConflict, "conflict", "HTTP 409 or the database's active-run uniqueness rule; the existing run id is printed. Never with --attach"},
	{ExitPending, "pending", "the --timeout of a wait passed while at least one run was still pending or running"},
	{ExitInterrupted, "interrupted", "SIGINT, SIGTERM or SIGHUP ended the command"},
}
