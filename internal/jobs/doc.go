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
// Every handler reads T0, the database clock, once when it starts and derives its cutoffs
// from it; the injected Clock serves only durations and waits. Handlers check their
// context at the points their job's .6 subsection lists and return engine.Stopped with
// their partial counters when it was cancelled.
package jobs
