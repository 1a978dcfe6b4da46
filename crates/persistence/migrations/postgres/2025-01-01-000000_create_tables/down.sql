DROP TABLE settings;
DROP TABLE idempotency_keys;
DROP TABLE customers;
DROP TABLE catalogs;
DROP TABLE stores;
