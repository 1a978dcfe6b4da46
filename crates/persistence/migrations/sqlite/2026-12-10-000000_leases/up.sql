-- Leases for work that many replicas share (issue 14).
--
-- 1. Recovery of journaled vendor creates: a replica claims entries by setting `claimed_until`
--    (one UPDATE ... RETURNING); nobody else takes an entry until then, and the claim of a
--    replica that died runs out.
ALTER TABLE pending_creates ADD COLUMN claimed_until TIMESTAMP;

-- 2. A store's sync runs in one process at a time: the row is its lease, held by `owner` until
--    `until` (renewed while the sync runs; anybody's once it ran out).
CREATE TABLE sync_leases (
    store_id BIGINT PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    until TIMESTAMP NOT NULL
);

-- 3. The last sync of each store: when the latest run started, and what the latest finished run
--    did. The scheduled sync skips a store whose latest run started less than an interval ago.
CREATE TABLE sync_runs (
    store_id BIGINT PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    -- `ok` or `failed`, of the latest finished run.
    outcome TEXT,
    copied BIGINT NOT NULL DEFAULT 0,
    removed BIGINT NOT NULL DEFAULT 0,
    -- Why the latest finished run failed (no customer data: the sync's own message).
    error TEXT
);
