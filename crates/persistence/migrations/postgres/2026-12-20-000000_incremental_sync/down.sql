ALTER TABLE sync_runs DROP COLUMN full_pass_at;
ALTER TABLE sync_runs DROP COLUMN synced_through;
ALTER TABLE sync_runs DROP COLUMN kind;
