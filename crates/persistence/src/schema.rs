//! The tables, declared once for both backends: only SQL types PostgreSQL and SQLite share.

diesel::table! {
    stores (id) {
        id -> BigInt,
        name -> Text,
        vendor -> Text,
        config -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    catalogs (id) {
        id -> Text,
        store_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    customers (id) {
        id -> BigInt,
        store_id -> BigInt,
        pos_customer_id -> Text,
        status -> Text,
        first_name -> Text,
        last_name -> Text,
        first_name_lower -> Text,
        last_name_lower -> Text,
        gender -> Nullable<Text>,
        birthday -> Nullable<Date>,
        email -> Nullable<Text>,
        email_lower -> Nullable<Text>,
        phone -> Nullable<Text>,
        phone_digits -> Nullable<Text>,
        drivers_license -> Nullable<Text>,
        drivers_license_key -> Nullable<Text>,
        notes -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        local_store_id -> Nullable<BigInt>,
        seen_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        fingerprint -> Text,
        outcome -> Nullable<Text>,
        created_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
        owner -> Nullable<Text>,
        claimed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    create_locks (store_id, lock_key) {
        store_id -> BigInt,
        lock_key -> Text,
        owner -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    pending_creates (id) {
        id -> BigInt,
        store_id -> BigInt,
        customer -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        attempted_at -> Nullable<Timestamp>,
        claimed_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sync_leases (store_id) {
        store_id -> BigInt,
        owner -> Text,
        until -> Timestamp,
    }
}

diesel::table! {
    sync_runs (store_id) {
        store_id -> BigInt,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
        copied -> BigInt,
        removed -> BigInt,
        error -> Nullable<Text>,
        kind -> Nullable<Text>,
        synced_through -> Nullable<Timestamp>,
        full_pass_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(catalogs -> stores (store_id));
diesel::joinable!(customers -> stores (store_id));
diesel::joinable!(pending_creates -> stores (store_id));
diesel::allow_tables_to_appear_in_same_query!(stores, catalogs, customers, pending_creates);
