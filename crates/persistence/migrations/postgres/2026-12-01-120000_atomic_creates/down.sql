ALTER TABLE idempotency_keys DROP COLUMN claimed_at;
ALTER TABLE idempotency_keys DROP COLUMN owner;
DROP TABLE create_locks;
DROP INDEX customers_local_license;
DROP INDEX customers_local_phone;
DROP INDEX customers_local_email;
ALTER TABLE customers DROP COLUMN local_store_id;
