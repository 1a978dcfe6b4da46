-- Incremental sync (issue 14): a store's scheduled sync asks its POS for the customers changed
-- since its last complete pass, and walks every customer (then looks for those gone) once a
-- day. Kept with the store's last run, so `sync --status` and `/metrics` read them in the same
-- query.
-- `full` or `incremental`: the kind of pass the latest run worked on.
ALTER TABLE sync_runs ADD COLUMN kind TEXT;
-- When the last complete pass (of either kind) started: everything changed at the POS before
-- then is in the mirror. The next incremental pass asks from a little before it.
ALTER TABLE sync_runs ADD COLUMN synced_through TIMESTAMP;
-- When the last complete full pass started.
ALTER TABLE sync_runs ADD COLUMN full_pass_at TIMESTAMP;
