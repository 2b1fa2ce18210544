// Package localjobs is what the server owner's commands (`owlmetry system …`) do
// straight on Postgres, without the HTTP API: list, view, start, cancel, recover and
// prune runs — system runs included — inspect and change the cron schedules, and create
// the first teams, users, projects and API keys of a fresh install.
//
// A Store wraps the pool the command opened (cmdutil.DatabaseOptions applies the session
// settings of cli.md §10.1) and builds, on first need, a CLI engine: node
// `cli-<host>-<pid>`, an insert-only River client, the server's settings read from the
// same environment variables. Everything that changes a run goes through that engine —
// Enqueue, RunLocal, Cancel, Recover, Prune — so the program keeps a single enqueue path
// and a single set of lifecycle rules. The package only reads job_runs itself.
//
//	st, err := localjobs.New(pool, localjobs.Config{LookupEnv: os.LookupEnv})
//	defer st.Close()
//	page, err := st.ListRuns(ctx, localjobs.ListFilter{Scope: localjobs.ScopeSystem, Limit: 20})
//
// Runs are returned as system run objects (Run): the API's JobRun plus the engine's
// additive columns. Run.JobRun converts one into an apitype.JobRun whose raw bytes are
// the whole system run object, so waiting and JSON output keep every column.
package localjobs
