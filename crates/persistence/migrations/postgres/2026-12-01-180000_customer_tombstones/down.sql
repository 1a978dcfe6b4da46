ALTER TABLE customers DROP COLUMN deleted_at;
ALTER TABLE customers DROP COLUMN seen_at;
