-- Customers gone at the POS (issue 13). `seen_at`: when a POS last gave the customer (every
-- write of the row from a POS answer sets it; rows already there count as seen when last
-- written). `deleted_at`: set by a full `pos-gateway sync` pass on the customers it did not
-- see; such a row is no longer served (find, get, duplicates), and any later write of the
-- customer from a POS answer clears it.
ALTER TABLE customers ADD COLUMN seen_at TIMESTAMP;
UPDATE customers SET seen_at = updated_at;
ALTER TABLE customers ALTER COLUMN seen_at SET NOT NULL;
ALTER TABLE customers ADD COLUMN deleted_at TIMESTAMP;
