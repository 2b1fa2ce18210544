// Package jobs holds the job handlers: one file per job type (jobs.md §4–§16), plus the
// building blocks they share (jobs.md §3).
//
// A handler is an engine.Handler built once from Deps — configuration, a clock, a logger
// and test seams — and handed to the engine through All:
//
//	cfg, err := jobs.LoadConfig(os.LookupEnv)
//	…
//	eng, err := engine.New(pool, engine.Config{Handlers: jobs.All(jobs.Deps{Config: cfg})})
//
// The maintenance handlers work on the database through a few shared patterns:
//
//   - batched deletes (batch.go): at most n rows per transaction under a 5 s statement
//     timeout, chosen through an index, with n adapting to how long batches take and the
//     audit row of each batch written in its transaction (jobs.md §3.4.2);
//   - partition removal (partitions.go): detach concurrently, count and audit per
//     project, drop — finishing interrupted removals found on the way (jobs.md §3.4.3,
//     §3.4.4);
//   - DDL and transaction retries (retry.go): lock timeouts retried after 1, 2 and 4 s,
//     serialization failures and deadlocks after 100, 200 and 400 ms (jobs.md §3.4.3,
//     §3.4.5).
//
// The iTunes jobs (app_version_sync, app_store_ratings_sync) share the process's one
// iTunes client and pacer, which All builds from Config.ITunes unless Deps.ITunes brings
// one. Their lookups run through a worker pool of the pacer's concurrency cap; every
// request waits for its pacing slot, and rate-limited or transient answers are retried
// with exponential backoff on the injected Clock (itunes_lookup.go). The ratings job's
// notifications insert their e-mail jobs through Deps.Inserter — the engine's River
// client, bound after engine.New through a LateInserter — or, without one, through an
// insert-only River client on the run's pool.
//
// Every handler reads T0, the database clock, once when it starts and derives its cutoffs
// from it; the injected Clock serves only durations and waits. Handlers check their
// context at the points their job's .6 subsection lists and return engine.Stopped with
// their partial counters when it was cancelled.
package jobs
