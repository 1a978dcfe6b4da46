DROP TABLE sync_runs;
DROP TABLE sync_leases;
ALTER TABLE pending_creates DROP COLUMN claimed_until;
