-- The outbox of vendor creates: a row is written before a customer is sent to a vendor and
-- deleted once the mirror holds the vendor's answer (or the vendor said no). A row left behind
-- (a crash, or an answer lost and not found) is looked for by the recovery pass.
CREATE TABLE pending_creates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id BIGINT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    -- The customer that was sent, as JSON (the domain's NewCustomer).
    customer TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- How many times recovery found it definitively not at the vendor, and when it last looked.
    attempts INTEGER NOT NULL DEFAULT 0,
    attempted_at TIMESTAMP
);
CREATE INDEX pending_creates_created_at ON pending_creates (created_at);
CREATE INDEX pending_creates_store_id ON pending_creates (store_id);
