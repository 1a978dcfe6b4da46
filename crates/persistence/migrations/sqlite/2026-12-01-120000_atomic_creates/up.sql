-- Creates are atomic (issue 13).
--
-- 1. The `local` POS: a customer's e-mail, phone digits and licence are unique per store, so the
--    duplicate check and the insert are one statement. `local_store_id` is set only on rows of
--    local stores (a vendor's mirror may hold two customers sharing a phone: the vendor's
--    business), and NULLs never collide. Rows that already share a key with an older row keep
--    NULL: they stay as they are, unconstrained, rather than fail the migration.
ALTER TABLE customers ADD COLUMN local_store_id BIGINT;
UPDATE customers SET local_store_id = store_id
WHERE store_id IN (SELECT id FROM stores WHERE vendor = 'local')
  AND NOT EXISTS (
    SELECT 1 FROM customers older
    WHERE older.store_id = customers.store_id
      AND older.id < customers.id
      AND (older.email_lower = customers.email_lower
           OR older.phone_digits = customers.phone_digits
           OR older.drivers_license_key = customers.drivers_license_key));
CREATE UNIQUE INDEX customers_local_email ON customers (local_store_id, email_lower);
CREATE UNIQUE INDEX customers_local_phone ON customers (local_store_id, phone_digits);
CREATE UNIQUE INDEX customers_local_license ON customers (local_store_id, drivers_license_key);

-- 2. Vendor creates: a lease per store and duplicate key (a hash, not the value), taken before
--    the duplicate check and given up after the vendor's create, shared by every replica.
CREATE TABLE create_locks (
    store_id BIGINT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    lock_key TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (store_id, lock_key)
);

-- 3. Idempotency claims have a holder, who renews `claimed_at` while working; only the holder
--    completes or releases. An unrenewed claim may be taken over.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;
ALTER TABLE idempotency_keys ADD COLUMN claimed_at TIMESTAMP;
UPDATE idempotency_keys SET claimed_at = created_at;
