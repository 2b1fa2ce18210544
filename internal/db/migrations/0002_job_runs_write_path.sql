-- job_runs takes several writes per run (insert, claim, progress, finish). Two storage
-- settings keep that path cheap without changing any name or column of the compatibility
-- schema:
-- * job_runs_status_idx has five keys and constant churn. Deduplication would rewrite a
--   posting list on nearly every write to it; plain entries are cheaper for this index.
-- * Free space on each page lets a row's next version stay on its page.
-- Both are metadata changes: existing pages are rewritten only as rows change.
ALTER INDEX job_runs_status_idx SET (deduplicate_items = off);
ALTER TABLE job_runs SET (fillfactor = 80);
