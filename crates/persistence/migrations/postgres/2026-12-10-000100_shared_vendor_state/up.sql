-- Vendor state shared by every replica on this database (issue 14). PostgreSQL only: a SQLite
-- deployment is one process and keeps both in memory.
--
-- `vendor_budgets`: a store's request budget as the GCRA keeps it, the theoretical arrival time
-- of the next request (`tat_us`, microseconds since the epoch by the database's clock, so the
-- replicas' clocks do not matter) and whether the last take was admitted. One statement takes
-- from it (see src/vendor_state.rs). Key: `{store id}/requests` or `{store id}/writes`.
CREATE TABLE vendor_budgets (
    budget_key TEXT PRIMARY KEY,
    tat_us BIGINT NOT NULL,
    admitted BOOLEAN NOT NULL
);

-- `vendor_tokens`: a store's vendor token, sealed with the credentials key (with the key as
-- associated data), until it should be refreshed and until it expires. Key: `{store id}/treez-token`.
CREATE TABLE vendor_tokens (
    token_key TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    refresh_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
