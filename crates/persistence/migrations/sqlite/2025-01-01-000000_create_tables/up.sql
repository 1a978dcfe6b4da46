-- Times are UTC, written by the application (TIMESTAMP WITHOUT TIME ZONE, stored as text).

CREATE TABLE stores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    vendor TEXT NOT NULL,
    -- JSON, as text so both databases store it alike.
    config TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE catalogs (
    id TEXT PRIMARY KEY,
    store_id BIGINT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX catalogs_store_id ON catalogs (store_id);

-- The mirror: every customer pos-gateway has seen, per store; also the `local` POS's own table.
CREATE TABLE customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id BIGINT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    pos_customer_id TEXT NOT NULL,
    status TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    first_name_lower TEXT NOT NULL,
    last_name_lower TEXT NOT NULL,
    gender TEXT CHECK (gender IN ('Male', 'Female', 'Other')),
    birthday DATE,
    email TEXT,
    email_lower TEXT,
    phone TEXT,
    phone_digits TEXT,
    drivers_license TEXT,
    drivers_license_key TEXT,
    notes TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (store_id, pos_customer_id)
);
CREATE INDEX customers_email ON customers (store_id, email_lower);
CREATE INDEX customers_phone ON customers (store_id, phone_digits);
CREATE INDEX customers_drivers_license ON customers (store_id, drivers_license_key);
-- SQLite's LIKE ... ESCAPE cannot use this index for prefixes; it still narrows to the store.
CREATE INDEX customers_name ON customers (store_id, last_name_lower, first_name_lower);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    "key" TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    -- JSON; NULL while the request is in progress.
    outcome TEXT,
    created_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    PRIMARY KEY (scope, "key")
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

CREATE TABLE settings (
    "key" TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
