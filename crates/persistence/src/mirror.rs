//! The customer mirror (pos-gateway's copy of every customer it has seen, per store) and the
//! built-in `local` POS, whose customers are the mirror rows of its store.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::upsert::excluded;
use diesel::{
    AsChangeset, BoolExpressionMethods as _, EscapeExpressionMethods as _, ExpressionMethods as _,
    Insertable, OptionalExtension as _, QueryDsl as _, Queryable, Selectable,
    SelectableHelper as _, TextExpressionMethods as _,
};
use diesel_async::scoped_futures::ScopedFutureExt as _;
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use domain::customer::license_match_key;
use domain::query::MAX_LIMIT;
use domain::{
    Capabilities, CreateKey, Customer, CustomerDirectory, CustomerId, CustomerMirror, CustomerPage,
    CustomerPatch, CustomerQuery, CustomerStatus, DuplicateKeys, Email, Gender, NewCustomer,
    OptionalField, PageToken, PersonName, Phone, PosError, RepositoryError, StoreId, TextKind,
    Unseen, Vendor, plain_text,
};

use crate::database::{Database, Pool, checkout, db_error, now};
use crate::schema::customers;

/// Rows per INSERT of an upsert: 19 bound values each keeps a statement far below SQLite's
/// 32766 and PostgreSQL's 65535 parameters.
const UPSERT_CHUNK: usize = 500;

#[derive(Clone, Debug)]
pub struct Mirror {
    db: Database,
}

/// What a stored customer reads back as.
#[derive(Queryable, Selectable)]
#[diesel(table_name = customers, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct CustomerRow {
    id: i64,
    pos_customer_id: String,
    status: String,
    first_name: String,
    last_name: String,
    gender: Option<String>,
    birthday: Option<NaiveDate>,
    email: Option<String>,
    phone: Option<String>,
    drivers_license: Option<String>,
    notes: Option<String>,
}

impl CustomerRow {
    /// Parses the row back with the domain's parsers; a value they refuse is corruption.
    fn into_customer(self) -> Result<Customer, RepositoryError> {
        let id = self.id;
        let corrupt =
            |field: &str| RepositoryError::Corrupt(format!("customer row {id}: bad {field}"));
        Ok(Customer {
            status: CustomerStatus::new(&self.status),
            customer_id: CustomerId::parse(&self.pos_customer_id)
                .ok_or_else(|| corrupt("pos_customer_id"))?,
            first_name: PersonName::parse(&self.first_name).map_err(|_| corrupt("first_name"))?,
            last_name: PersonName::parse(&self.last_name).map_err(|_| corrupt("last_name"))?,
            gender: parse_column(self.gender.as_deref(), Gender::parse, || corrupt("gender"))?,
            birthday: self.birthday,
            email: parse_column(self.email.as_deref(), Email::parse, || corrupt("email"))?,
            phone: parse_column(self.phone.as_deref(), Phone::parse, || corrupt("phone"))?,
            drivers_license: self.drivers_license,
            notes: self.notes,
        })
    }
}

/// An optional column through its domain parser; `bad` names the corruption when it refuses.
fn parse_column<T, E>(
    value: Option<&str>,
    parse: fn(&str) -> Result<T, E>,
    bad: impl FnOnce() -> RepositoryError,
) -> Result<Option<T>, RepositoryError> {
    value.map(parse).transpose().map_err(|_| bad())
}

/// The columns a customer's values decide, with their match keys; `None` writes NULL. Owned, so
/// that a batch can move to SQLite's blocking thread.
#[derive(Insertable, AsChangeset)]
#[diesel(
    table_name = customers,
    treat_none_as_null = true,
    treat_none_as_default_value = false
)]
struct CustomerFields {
    status: String,
    first_name: String,
    last_name: String,
    first_name_lower: String,
    last_name_lower: String,
    gender: Option<&'static str>,
    birthday: Option<NaiveDate>,
    email: Option<String>,
    email_lower: Option<String>,
    phone: Option<String>,
    phone_digits: Option<String>,
    drivers_license: Option<String>,
    drivers_license_key: Option<String>,
    notes: Option<String>,
    updated_at: NaiveDateTime,
    /// Every write of a customer is what a POS (or a kiosk through it) just said: seen now,
    /// and alive again if a sync had tombstoned it.
    seen_at: NaiveDateTime,
    deleted_at: Option<NaiveDateTime>,
}

/// The licence or notes as the mirror stores them: whatever built the customer (a vendor's
/// read goes through `pos_adapters::convert`, a kiosk's input through the domain's parsers,
/// both already clean), no control character but line breaks and tabs reaches a row, so no
/// write fails on one (PostgreSQL's text cannot hold NUL) and a sync never sticks on a page.
fn storable(text: &Option<String>) -> Option<String> {
    text.as_deref()
        .map(|t| plain_text(t, TextKind::MultiLine).trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// `customer` as [`CustomerFields::of`] stores it.
fn as_stored(customer: &Customer) -> Customer {
    Customer {
        drivers_license: storable(&customer.drivers_license),
        notes: storable(&customer.notes),
        ..customer.clone()
    }
}

impl CustomerFields {
    fn of(customer: &Customer, now: NaiveDateTime) -> Self {
        let drivers_license = storable(&customer.drivers_license);
        Self {
            status: customer.status.as_str().to_owned(),
            first_name: customer.first_name.as_str().to_owned(),
            last_name: customer.last_name.as_str().to_owned(),
            first_name_lower: customer.first_name.as_str().to_lowercase(),
            last_name_lower: customer.last_name.as_str().to_lowercase(),
            gender: customer.gender.map(Gender::as_str),
            birthday: customer.birthday,
            email: customer.email.as_ref().map(|e| e.as_str().to_owned()),
            email_lower: customer.email.as_ref().map(Email::match_key),
            phone: customer.phone.as_ref().map(|p| p.as_str().to_owned()),
            phone_digits: customer.phone.as_ref().map(|p| p.digits().to_owned()),
            drivers_license_key: drivers_license.as_deref().map(license_match_key),
            drivers_license,
            notes: storable(&customer.notes),
            updated_at: now,
            seen_at: now,
            deleted_at: None,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = customers, treat_none_as_default_value = false)]
struct NewCustomerRow {
    store_id: i64,
    pos_customer_id: String,
    created_at: NaiveDateTime,
    /// The store's id on rows of a `local` store, whose keys are unique per store; NULL (never
    /// colliding) on a vendor's mirror rows.
    local_store_id: Option<i64>,
    #[diesel(embed)]
    fields: CustomerFields,
}

impl NewCustomerRow {
    fn of(store: StoreId, customer: &Customer, now: NaiveDateTime) -> Self {
        Self {
            store_id: store.0,
            pos_customer_id: customer.customer_id.as_str().to_owned(),
            created_at: now,
            local_store_id: None,
            fields: CustomerFields::of(customer, now),
        }
    }
}

/// The upsert of a batch of [`NewCustomerRow`]s: insert, or overwrite every field but the
/// creation time of the customer the POS id names.
/// What one upsert keeps of a row already there: the fields the POS never gives back, whose
/// empty value in the new row means "not said" (see `CustomerMirror::upsert`).
#[derive(Clone, Copy, Debug, Default)]
struct Keep {
    gender: bool,
    birthday: bool,
    email: bool,
    phone: bool,
    drivers_license: bool,
    notes: bool,
}

impl Keep {
    fn of(unknown: &[OptionalField]) -> Self {
        let has = |field| unknown.contains(&field);
        Self {
            gender: has(OptionalField::Gender),
            birthday: has(OptionalField::Birthday),
            email: has(OptionalField::Email),
            phone: has(OptionalField::Phone),
            drivers_license: has(OptionalField::DriversLicense),
            notes: has(OptionalField::Notes),
        }
    }
}

/// `column = excluded.column`, or, when `keep`, the row's own value where the new one is NULL.
/// The same SQL in PostgreSQL and SQLite (both name the existing row by its table in an
/// upsert); `keep` is bound, so one statement serves every vendor.
macro_rules! kept {
    ($column:ident, $sql_type:ty, $keep:expr) => {
        c::$column.eq(diesel::dsl::sql::<$sql_type>("CASE WHEN ")
            .bind::<diesel::sql_types::Bool, _>($keep)
            .sql(concat!(
                " THEN COALESCE(excluded.",
                stringify!($column),
                ", customers.",
                stringify!($column),
                ") ELSE excluded.",
                stringify!($column),
                " END"
            )))
    };
}

/// The upsert of the mirror's rows: insert, or update every POS field of the row with the same
/// store and POS id (keeping what `$keep` says the POS did not say).
macro_rules! upsert_statement {
    ($rows:expr, $keep:expr) => {{
        use customers::dsl as c;
        use diesel::sql_types::{Date, Nullable, Text};
        let keep: Keep = $keep;
        diesel::insert_into(c::customers)
            .values($rows)
            .on_conflict((c::store_id, c::pos_customer_id))
            .do_update()
            .set((
                c::status.eq(excluded(c::status)),
                c::first_name.eq(excluded(c::first_name)),
                c::last_name.eq(excluded(c::last_name)),
                c::first_name_lower.eq(excluded(c::first_name_lower)),
                c::last_name_lower.eq(excluded(c::last_name_lower)),
                kept!(gender, Nullable<Text>, keep.gender),
                kept!(birthday, Nullable<Date>, keep.birthday),
                kept!(email, Nullable<Text>, keep.email),
                kept!(email_lower, Nullable<Text>, keep.email),
                kept!(phone, Nullable<Text>, keep.phone),
                kept!(phone_digits, Nullable<Text>, keep.phone),
                kept!(drivers_license, Nullable<Text>, keep.drivers_license),
                kept!(drivers_license_key, Nullable<Text>, keep.drivers_license),
                kept!(notes, Nullable<Text>, keep.notes),
                c::updated_at.eq(excluded(c::updated_at)),
                c::seen_at.eq(excluded(c::seen_at)),
                c::deleted_at.eq(excluded(c::deleted_at)),
            ))
    }};
}

/// `word` as a LIKE pattern matching what starts with it; `\` escapes the wildcards.
fn prefix_pattern(word: &str) -> String {
    let mut pattern = String::with_capacity(word.len() + 2);
    for c in word.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Mirror {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }

    /// Writes POS answers as of the time each came (the read answers queued by
    /// [`CustomerMirror::upsert_behind`]): a row that something wrote or marked deleted after
    /// that time is left as it is (the statement's `WHERE`), so a copy that waited never makes
    /// the mirror older. Nothing is kept of a row (the answers carry every field).
    pub async fn upsert_seen(
        &self,
        store: StoreId,
        rows: &[(Customer, NaiveDateTime)],
    ) -> Result<(), RepositoryError> {
        use customers::dsl as c;
        let mut rows: Vec<NewCustomerRow> = rows
            .iter()
            .map(|(customer, seen)| NewCustomerRow::of(store, customer, *seen))
            .collect();
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(UPSERT_CHUNK));
            let chunk = std::mem::replace(&mut rows, rest);
            // `ON CONFLICT ... DO UPDATE ... WHERE`: only rows older than the answer change.
            let newer = c::seen_at
                .le(excluded(c::seen_at))
                .and(c::updated_at.le(excluded(c::seen_at)))
                .and(c::deleted_at.is_null().or(c::deleted_at.le(
                    diesel::NullableExpressionMethods::nullable(excluded(c::seen_at)),
                )));
            match &self.db.relaxed() {
                Pool::Postgres(pool) => {
                    let mut conn = checkout(pool).await?;
                    let statement = diesel::query_dsl::methods::FilterDsl::filter(
                        upsert_statement!(&chunk, Keep::default()),
                        newer,
                    );
                    diesel_async::RunQueryDsl::execute(statement, &mut *conn)
                        .await
                        .map_err(db_error)?;
                }
                // Diesel has no multi-row upsert with a `WHERE` for SQLite: a row at a time, in
                // one transaction (a local file: no round trips to save).
                Pool::Sqlite(pool) => {
                    let mut conn = checkout(pool).await?;
                    conn.spawn_blocking(move |conn| {
                        diesel::Connection::transaction(conn, |conn| {
                            for row in &chunk {
                                let statement = diesel::query_dsl::methods::FilterDsl::filter(
                                    upsert_statement!(row, Keep::default()),
                                    newer,
                                );
                                diesel::RunQueryDsl::execute(statement, conn)?;
                            }
                            Ok::<_, diesel::result::Error>(())
                        })
                    })
                    .await
                    .map_err(db_error)?;
                }
            }
        }
        Ok(())
    }

    /// Inserts a `local` store's new customer unless the store has one with the same e-mail,
    /// phone or licence: one statement, its unique keys the duplicate check. `false`: it has.
    async fn insert_local(
        &self,
        store: StoreId,
        customer: &Customer,
    ) -> Result<bool, RepositoryError> {
        let row = NewCustomerRow {
            local_store_id: Some(store.0),
            ..NewCustomerRow::of(store, customer, now())
        };
        let inserted = with_connection!(self.db, |conn| {
            diesel::insert_into(customers::table)
                .values(&row)
                .on_conflict_do_nothing()
                .execute(conn)
                .await
                .map_err(db_error)
        })?;
        Ok(inserted == 1)
    }

    /// The oldest live customer of the store matching any one of the keys, other than
    /// `except` (the customer being updated) when given.
    async fn oldest_sharing_a_key(
        &self,
        store: StoreId,
        keys: &DuplicateKeys,
        except: Option<&CustomerId>,
    ) -> Result<Option<Customer>, RepositoryError> {
        if keys.is_empty() {
            return Ok(None);
        }
        // An absent key binds NULL, and `column = NULL` is never true.
        let row = with_connection!(self.db, |conn| {
            let mut select = customers::table
                .filter(customers::store_id.eq(store.0))
                .filter(customers::deleted_at.is_null())
                .filter(
                    customers::email_lower
                        .eq(keys.email.as_deref())
                        .or(customers::phone_digits.eq(keys.phone_digits.as_deref()))
                        .or(customers::drivers_license_key.eq(keys.drivers_license.as_deref())),
                )
                .order(customers::id.asc())
                .select(CustomerRow::as_select())
                .into_boxed();
            if let Some(except) = except {
                select = select.filter(customers::pos_customer_id.ne(except.as_str()));
            }
            select.first(conn).await.optional().map_err(db_error)
        })?;
        row.map(CustomerRow::into_customer).transpose()
    }

    /// Applies `patch` to the stored customer in one transaction; `Ok(None)` when absent.
    async fn update(
        &self,
        store: StoreId,
        id: &CustomerId,
        patch: &CustomerPatch,
    ) -> Result<Option<Customer>, RepositoryError> {
        let now = now();
        let the_customer = customers::table
            .filter(customers::store_id.eq(store.0))
            .filter(customers::pos_customer_id.eq(id.as_str()))
            .filter(customers::deleted_at.is_null());
        with_connection!(self.db, |conn| {
            let updated = conn
                .transaction::<_, UpdateError, _>(|conn| {
                    async move {
                        // A write first: it takes SQLite's write lock at once (a read first
                        // could not upgrade to it if another writer came between) and locks
                        // the row on PostgreSQL, so concurrent patches apply one after the
                        // other.
                        let touched = diesel::update(the_customer)
                            .set(customers::updated_at.eq(now))
                            .execute(conn)
                            .await?;
                        if touched == 0 {
                            return Err(UpdateError::NotFound);
                        }
                        let row = the_customer
                            .select(CustomerRow::as_select())
                            .first(conn)
                            .await?;
                        let mut customer = row.into_customer()?;
                        customer.apply(patch);
                        diesel::update(the_customer)
                            .set(&CustomerFields::of(&customer, now))
                            .execute(conn)
                            .await?;
                        Ok(customer)
                    }
                    .scope_boxed()
                })
                .await;
            match updated {
                Ok(customer) => Ok(Some(customer)),
                Err(UpdateError::NotFound) => Ok(None),
                Err(UpdateError::Database(e)) => Err(db_error(e)),
                Err(UpdateError::Repository(e)) => Err(e),
            }
        })
    }
}

/// Why an update transaction rolled back.
enum UpdateError {
    NotFound,
    Database(diesel::result::Error),
    Repository(RepositoryError),
}

impl From<diesel::result::Error> for UpdateError {
    fn from(error: diesel::result::Error) -> Self {
        UpdateError::Database(error)
    }
}

impl From<RepositoryError> for UpdateError {
    fn from(error: RepositoryError) -> Self {
        UpdateError::Repository(error)
    }
}

#[async_trait]
impl CustomerMirror for Mirror {
    fn upsert_behind(&self, store: StoreId, customers: Vec<Customer>) {
        self.db.write_behind(store, customers, now());
    }

    /// Inserts new customers and overwrites known ones (matched on the POS's id), in batches.
    async fn upsert(
        &self,
        store: StoreId,
        customers: &[Customer],
        unknown: &[OptionalField],
    ) -> Result<Vec<Customer>, RepositoryError> {
        let keep = Keep::of(unknown);
        let keeps_any = !unknown.is_empty();
        // One statement may not touch a row twice (PostgreSQL refuses): the last copy wins.
        let mut latest: Vec<&Customer> = Vec::with_capacity(customers.len());
        let mut seen = std::collections::HashSet::new();
        for customer in customers.iter().rev() {
            if seen.insert(&customer.customer_id) {
                latest.push(customer);
            }
        }
        latest.reverse();
        let now = now();
        let mut rows: Vec<NewCustomerRow> = latest
            .iter()
            .map(|customer| NewCustomerRow::of(store, customer, now))
            .collect();
        // Where the row kept a value the POS did not give, the caller answers with the row:
        // the statement returns what it stored, in the same round trip.
        let mut stored: Vec<CustomerRow> = Vec::new();
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(UPSERT_CHUNK));
            let chunk = std::mem::replace(&mut rows, rest);
            match &self.db.relaxed() {
                Pool::Postgres(pool) => {
                    let mut conn = checkout(pool).await?;
                    if keeps_any {
                        let returned: Vec<CustomerRow> = diesel_async::RunQueryDsl::get_results(
                            upsert_statement!(&chunk, keep).returning(CustomerRow::as_returning()),
                            &mut *conn,
                        )
                        .await
                        .map_err(db_error)?;
                        stored.extend(returned);
                    } else {
                        diesel_async::RunQueryDsl::execute(
                            upsert_statement!(&chunk, keep),
                            &mut *conn,
                        )
                        .await
                        .map_err(db_error)?;
                    }
                }
                // diesel-async cannot batch-insert into SQLite; synchronous Diesel can, so the
                // statement runs on the connection's blocking thread.
                Pool::Sqlite(pool) => {
                    let mut conn = checkout(pool).await?;
                    let returned = conn
                        .spawn_blocking(move |conn| {
                            if keeps_any {
                                diesel::RunQueryDsl::get_results(
                                    upsert_statement!(&chunk, keep)
                                        .returning(CustomerRow::as_returning()),
                                    conn,
                                )
                            } else {
                                diesel::RunQueryDsl::execute(upsert_statement!(&chunk, keep), conn)
                                    .map(|_| Vec::new())
                            }
                        })
                        .await
                        .map_err(db_error)?;
                    stored.extend(returned);
                }
            }
        }
        if !keeps_any {
            return Ok(customers.iter().map(as_stored).collect());
        }
        let by_id: std::collections::HashMap<String, Customer> = stored
            .into_iter()
            .map(|row| {
                let id = row.pos_customer_id.clone();
                row.into_customer().map(|c| (id, c))
            })
            .collect::<Result<_, _>>()?;
        Ok(customers
            .iter()
            .map(|c| {
                by_id
                    .get(c.customer_id.as_str())
                    .cloned()
                    .unwrap_or_else(|| as_stored(c))
            })
            .collect())
    }

    /// Filters AND-combined; pages in row order. The page token is the last row's id; one
    /// that does not parse (we never make such) gives an empty last page.
    async fn find(
        &self,
        store: StoreId,
        query: &CustomerQuery,
    ) -> Result<CustomerPage, RepositoryError> {
        let after = match &query.page {
            None => None,
            Some(PageToken(token)) => match token.parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) => return Ok(CustomerPage::default()),
            },
        };
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let license_key = query.drivers_license_key();
        let name_patterns: Vec<String> =
            query.name_words().into_iter().map(prefix_pattern).collect();
        let mut rows: Vec<CustomerRow> = with_connection!(self.db, |conn| {
            let mut select = customers::table
                .filter(customers::store_id.eq(store.0))
                .filter(customers::deleted_at.is_null())
                .select(CustomerRow::as_select())
                .order(customers::id.asc())
                .limit(i64::from(limit) + 1)
                .into_boxed();
            if let Some(after) = after {
                select = select.filter(customers::id.gt(after));
            }
            if let Some(digits) = &query.phone_digits {
                select = select.filter(customers::phone_digits.eq(digits));
            }
            if let Some(email) = &query.email {
                select = select.filter(customers::email_lower.eq(email.to_lowercase()));
            }
            if let Some(key) = &license_key {
                select = select.filter(customers::drivers_license_key.eq(key));
            }
            for pattern in &name_patterns {
                select = select.filter(
                    customers::first_name_lower
                        .like(pattern)
                        .escape('\\')
                        .or(customers::last_name_lower.like(pattern).escape('\\')),
                );
            }
            select.load(conn).await.map_err(db_error)
        })?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|row| PageToken(row.id.to_string()))
        } else {
            None
        };
        let customers = rows
            .into_iter()
            .map(CustomerRow::into_customer)
            .collect::<Result<_, _>>()?;
        Ok(CustomerPage { customers, next })
    }

    async fn get(
        &self,
        store: StoreId,
        id: &CustomerId,
    ) -> Result<Option<Customer>, RepositoryError> {
        let row = with_connection!(self.db, |conn| {
            customers::table
                .filter(customers::store_id.eq(store.0))
                .filter(customers::pos_customer_id.eq(id.as_str()))
                .filter(customers::deleted_at.is_null())
                .select(CustomerRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(db_error)
        })?;
        row.map(CustomerRow::into_customer).transpose()
    }

    /// The oldest customer of the store matching any one of the keys.
    async fn find_duplicate(
        &self,
        store: StoreId,
        keys: &DuplicateKeys,
    ) -> Result<Option<Customer>, RepositoryError> {
        self.oldest_sharing_a_key(store, keys, None).await
    }

    /// In row order, like `find`; the page token is the last row's id.
    async fn unseen(
        &self,
        store: StoreId,
        since: DateTime<Utc>,
        after: Option<PageToken>,
        limit: u32,
    ) -> Result<Unseen, RepositoryError> {
        let after = match after {
            None => None,
            Some(PageToken(token)) => match token.parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) => return Ok(Unseen::default()),
            },
        };
        let since = since.naive_utc();
        let limit = limit.clamp(1, MAX_LIMIT);
        let mut rows: Vec<(i64, String)> = with_connection!(self.db, |conn| {
            let mut select = customers::table
                .filter(customers::store_id.eq(store.0))
                .filter(customers::deleted_at.is_null())
                .filter(customers::seen_at.lt(since))
                .select((customers::id, customers::pos_customer_id))
                .order(customers::id.asc())
                .limit(i64::from(limit) + 1)
                .into_boxed();
            if let Some(after) = after {
                select = select.filter(customers::id.gt(after));
            }
            select.load(conn).await.map_err(db_error)
        })?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|(id, _)| PageToken(id.to_string()))
        } else {
            None
        };
        Ok(Unseen {
            // An id no POS could have given is no customer to ask about.
            ids: rows
                .iter()
                .filter_map(|(_, id)| CustomerId::parse(id))
                .collect(),
            next,
        })
    }

    async fn tombstone(
        &self,
        store: StoreId,
        ids: &[CustomerId],
        unseen_since: DateTime<Utc>,
    ) -> Result<usize, RepositoryError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
        let since = unseen_since.naive_utc();
        let now = now();
        with_connection!(self.db, |conn| {
            diesel::update(
                customers::table
                    .filter(customers::store_id.eq(store.0))
                    .filter(customers::pos_customer_id.eq_any(&ids))
                    .filter(customers::deleted_at.is_null())
                    // Seen since (a kiosk's read, or the pass itself): alive, whatever the
                    // caller concluded before.
                    .filter(customers::seen_at.lt(since)),
            )
            .set(customers::deleted_at.eq(Some(now)))
            .execute(conn)
            .await
            .map_err(db_error)
        })
    }

    async fn is_tombstoned(
        &self,
        store: StoreId,
        id: &CustomerId,
    ) -> Result<bool, RepositoryError> {
        let found: Option<i64> = with_connection!(self.db, |conn| {
            customers::table
                .filter(customers::store_id.eq(store.0))
                .filter(customers::pos_customer_id.eq(id.as_str()))
                .filter(customers::deleted_at.is_not_null())
                .select(customers::id)
                .first(conn)
                .await
                .optional()
                .map_err(db_error)
        })?;
        Ok(found.is_some())
    }
}

/// The built-in `local` POS of one store: its customers are that store's mirror rows. New
/// customers get a UUID v7 as their id (time-ordered, unique without asking the database).
#[derive(Clone, Debug)]
pub struct LocalPos {
    mirror: Mirror,
    store: StoreId,
}

impl LocalPos {
    pub(crate) fn new(mirror: Mirror, store: StoreId) -> Self {
        Self { mirror, store }
    }
}

#[async_trait]
impl CustomerDirectory for LocalPos {
    fn vendor(&self) -> Vendor {
        Vendor::Local
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn is_mirror(&self) -> bool {
        true
    }

    async fn find(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        self.mirror
            .find(self.store, query)
            .await
            .map_err(PosError::Storage)
    }

    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, PosError> {
        self.mirror
            .get(self.store, id)
            .await
            .map_err(PosError::Storage)
    }

    /// The key is not needed: the create is one statement in our own database, never re-sent.
    /// A customer of the store with the same e-mail, phone or licence is `PosError::Duplicate`,
    /// decided by that statement (so two at once make one customer).
    async fn create(&self, customer: &NewCustomer, _key: &CreateKey) -> Result<Customer, PosError> {
        let id = CustomerId::parse(&uuid::Uuid::now_v7().to_string()).ok_or_else(|| {
            PosError::Storage(RepositoryError::Other("generated an invalid id".to_owned()))
        })?;
        let created = customer.clone().into_customer(id, CustomerStatus::active());
        if self
            .mirror
            .insert_local(self.store, &created)
            .await
            .map_err(PosError::Storage)?
        {
            return Ok(created);
        }
        self.duplicate_of(&created).await
    }

    /// Another customer's e-mail, phone or licence is that customer's 409, as at a vendor.
    async fn update(&self, id: &CustomerId, patch: &CustomerPatch) -> Result<Customer, PosError> {
        match self.mirror.update(self.store, id, patch).await {
            Ok(Some(updated)) => Ok(updated),
            Ok(None) => Err(PosError::NotFound),
            Err(RepositoryError::Conflict(_)) => {
                let mut patched = self
                    .mirror
                    .get(self.store, id)
                    .await
                    .map_err(PosError::Storage)?
                    .ok_or(PosError::NotFound)?;
                patched.apply(patch);
                self.duplicate_of(&patched).await
            }
            Err(e) => Err(PosError::Storage(e)),
        }
    }
}

impl LocalPos {
    /// The customer whose keys `customer`'s collided with.
    async fn duplicate_of(&self, customer: &Customer) -> Result<Customer, PosError> {
        match self
            .mirror
            .oldest_sharing_a_key(
                self.store,
                &customer.duplicate_keys(),
                Some(&customer.customer_id),
            )
            .await
            .map_err(PosError::Storage)?
        {
            Some(existing) => Err(PosError::Duplicate(Box::new(existing))),
            // Gone again between the two statements: the kiosk may simply retry.
            None => Err(PosError::Storage(RepositoryError::Unavailable(
                "a customer with the same keys was being written; retry".to_owned(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(prefix_pattern("Jo"), "jo%");
        assert_eq!(prefix_pattern("a%b_c\\"), "a\\%b\\_c\\\\%");
    }
}
