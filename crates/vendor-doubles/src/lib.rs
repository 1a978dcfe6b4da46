//! Test doubles for the POS vendors: small HTTP servers on loopback that speak each vendor's
//! paths, auth and JSON, keep state (a created customer can be found, an update sticks),
//! enforce the vendor's required fields with the vendor's own error bodies, and can be told to
//! fail (401, 422, 429 with `Retry-After`, 5xx, a slow answer, a body that is not JSON, a huge
//! body, a connection cut mid-body, or a fault *after* a write was done).
//!
//! Used by pos-adapters' contract and conformance tests, http-api's end-to-end tests and the
//! benchmarks; never by the gateway itself. Depends on no crate of the workspace, so what a
//! double says about a vendor is written once, from the vendor's facts, independently of the
//! adapter it checks.
//!
//! # The kit
//! A double is a type implementing [`Wire`] (the vendor's routes, auth, record shape and error
//! bodies) wrapped in the generic [`DoubleOf`], which runs the server, keeps the customers in a
//! [`Table`], applies faults and records calls. Every double is also a [`VendorDouble`], the
//! vendor-neutral surface the conformance suite uses (a store config, neutral seeding, the
//! customers held), and is listed once in [`DOUBLES`], so [`start`] opens any of them by the
//! vendor's name.
//!
//! Each double runs its own actix system on a thread of its own, so tests on any runtime (or
//! none) can use it; dropping it stops the server.

// Handlers return `Result<_, HttpResponse>` to answer early with the vendor's error; the size
// of an error is irrelevant in a test double.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Map, Value};

mod table;

pub mod blaze;
pub mod cova;
pub mod dutchie;
pub mod flowhub;
pub mod treez;

pub use table::Table;

/// Every double, by the vendor's name as pos-gateway spells it (`Vendor::as_str`). A new
/// double adds one line here.
pub const DOUBLES: &[(&str, StartDouble)] = &[
    ("treez", boxed::<treez::Treez>),
    ("dutchie", boxed::<dutchie::Dutchie>),
    ("cova", boxed::<cova::Cova>),
    ("blaze", boxed::<blaze::Blaze>),
    ("flowhub", boxed::<flowhub::Flowhub>),
];

/// Starts a double with its default credentials.
pub type StartDouble = fn() -> std::io::Result<Box<dyn VendorDouble>>;

/// Starts the double of `vendor` (`"treez"`...) with its default credentials; `None` when no
/// double speaks that vendor.
pub fn start(vendor: &str) -> Option<std::io::Result<Box<dyn VendorDouble>>> {
    DOUBLES
        .iter()
        .find(|(name, _)| *name == vendor)
        .map(|(_, start)| start())
}

fn boxed<W: Wire>() -> std::io::Result<Box<dyn VendorDouble>> {
    Ok(Box::new(DoubleOf::<W>::start()?))
}

/// The kind of request a fault applies to, and that [`Double::calls`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Token,
    List,
    Search,
    Get,
    Create,
    Update,
    /// A credentials check such as Dutchie's `GET /whoami`, or another read that is none of
    /// the above (a list of customer types).
    WhoAmI,
    /// For [`Double::fail`]: every request.
    Any,
}

/// What a double does instead of (or after) answering normally.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answers normally: queued before other faults, it picks which call they hit.
    Pass,
    /// 401 with the vendor's body, whatever credentials came.
    Unauthorized,
    /// The vendor's validation error (status and body as the vendor sends them).
    Invalid,
    /// This status with the vendor's error body.
    Status(u16),
    /// 429 with this `Retry-After` value (seconds or an HTTP date).
    RateLimited { retry_after: String },
    /// Answers normally, this much later: a timeout when longer than the client waits.
    Delay(Duration),
    /// 200 with an HTML page.
    Garbage,
    /// 200 with a JSON body of about this many bytes.
    Huge(usize),
    /// 200, part of a body, then the connection is cut.
    ResetMidBody,
    /// Does the write (the customer exists at the vendor), then answers with this fault, so
    /// the client cannot know it succeeded: the case where a blind retry creates a duplicate.
    AfterCommit(Box<Fault>),
}

/// One request a double received.
#[derive(Clone, Debug)]
pub struct Call {
    pub op: Op,
    pub method: String,
    /// The path and query, as sent.
    pub path: String,
    pub body: String,
    /// Every header, names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    /// When it arrived, for tests of a vendor's rate limit.
    pub at: std::time::Instant,
}

impl Call {
    /// The value of header `name` (lower case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A customer to seed, in no vendor's shape: each double writes it as its vendor would hold
/// it, so a test can seed any double without knowing its JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedCustomer {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    /// Ten digits.
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub drivers_license: Option<String>,
    /// `male`, `female` or `other`.
    pub gender: Option<String>,
    pub notes: Option<String>,
}

impl SeedCustomer {
    /// A customer with a first and last name and nothing else.
    pub fn named(first_name: &str, last_name: &str) -> Self {
        Self {
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            ..Self::default()
        }
    }

    /// The `n`th of a numbered series, with every field set and unique to `n` (e-mail,
    /// phone, licence), so paging and look-ups can tell them apart.
    pub fn numbered(n: u32) -> Self {
        Self {
            first_name: format!("First{n}"),
            last_name: format!("Last{n}"),
            email: Some(format!("customer{n}@example.com")),
            phone: Some(format!("555{:07}", n % 10_000_000)),
            birthday: Some(format!("19{:02}-0{}-1{}", 50 + n % 40, 1 + n % 9, n % 10)),
            drivers_license: Some(format!("D{n:07}")),
            gender: Some(
                match n % 3 {
                    0 => "male",
                    1 => "female",
                    _ => "other",
                }
                .to_owned(),
            ),
            notes: Some(format!("note {n}")),
        }
    }
}

/// What every double offers a test that does not know which vendor it talks to.
pub trait VendorDouble: Send + Sync {
    /// The vendor's name as pos-gateway spells it (`treez`).
    fn vendor(&self) -> &'static str;
    /// Faults, calls and latency, as every double has them.
    fn double(&self) -> &Double;
    /// A store config (`store add --config`) that reaches this double.
    fn store_config(&self) -> Value;
    /// The same, but with a credential this double refuses (a 401 from the vendor).
    fn wrong_credentials_config(&self) -> Value;
    /// The store config with the gateway's own limiter for this vendor turned off
    /// (`"rate_limit_per_minute": null`), for tests and benchmarks that load the gateway with
    /// many calls at once: they measure the gateway, not the vendor's published budget.
    fn unthrottled_store_config(&self) -> Value {
        let mut config = self.store_config();
        if let Some(object) = config.as_object_mut() {
            object.insert("rate_limit_per_minute".into(), Value::Null);
        }
        config
    }
    /// Every credential value of [`store_config`](VendorDouble::store_config) and
    /// [`wrong_credentials_config`](VendorDouble::wrong_credentials_config), for "never shown"
    /// checks.
    fn secrets(&self) -> Vec<String>;
    /// Adds a customer as if created at the store's register; its vendor id.
    fn seed_customer(&self, customer: &SeedCustomer) -> String;
    /// Adds a record the vendor could hold but that no adapter can turn into a customer (no
    /// name); its vendor id.
    fn seed_unusable(&self) -> String;
    /// Marks a customer last changed `at` (an edit at the register then, say long ago), for
    /// tests of changed-since listings; whether there was one with this id.
    fn set_last_changed(&self, id: &str, at: chrono::DateTime<chrono::Utc>) -> bool;
    /// Deletes a customer as if removed at the store's register (none of the vendors lets an
    /// API client delete one): from then on the vendor answers as if it never had it. Whether
    /// there was one with this id.
    fn delete_customer(&self, id: &str) -> bool;
    /// The customers the vendor holds, as stored: the shape it answers with, plus whatever it
    /// keeps but never gives back (a write-only licence), so tests can check what it holds.
    fn customers(&self) -> Vec<Value>;
}

/// A vendor, as its double speaks it. Implemented by a marker type per vendor module; the
/// generic [`DoubleOf`] does the rest.
pub trait Wire: Sized + Send + Sync + 'static {
    /// The vendor's name as pos-gateway spells it.
    const NAME: &'static str;
    /// The key of a record that holds its id (`customer_id`, `customerId`, `Id`).
    const ID_FIELD: &'static str;
    /// What the double accepts as credentials.
    type Credentials: Clone + Default + Send + Sync + 'static;
    /// Whatever else the vendor keeps besides its customers (issued tokens).
    type Extra: Default + Send + Sync + 'static;

    /// The vendor's routes; handlers take `web::Data<State<Self>>`.
    fn routes(cfg: &mut web::ServiceConfig);
    /// Whether this request carries acceptable credentials for `op`; the vendor's refusal if
    /// not.
    fn authorize(state: &State<Self>, op: Op, request: &HttpRequest) -> Result<(), HttpResponse>;

    /// The body of an error with this status and reason, in the vendor's shape; `null` for
    /// no body.
    fn error_body(status: u16, reason: &str) -> Value;
    /// The status and body of a validation failure not tied to the request's content.
    fn invalid() -> (u16, Value);

    /// A store config reaching a double at `url` with `credentials`.
    fn store_config(url: &str, credentials: &Self::Credentials) -> Value;
    /// The same with a credential the double refuses.
    fn wrong_credentials_config(url: &str, credentials: &Self::Credentials) -> Value;
    /// Every credential value of the two configs.
    fn secrets(credentials: &Self::Credentials) -> Vec<String>;

    /// The `seq`th id (1-based): digits, an integer, a GUID..., as the vendor makes them.
    fn id(seq: u64) -> Value;
    /// A record as the vendor stores a create of `fields` (vendor-shaped, without the id):
    /// defaults, timestamps, hashes.
    fn new_record(fields: &Map<String, Value>) -> Map<String, Value>;
    /// A neutral seed in the vendor's shape, for [`Wire::new_record`].
    fn seed_fields(customer: &SeedCustomer) -> Map<String, Value>;
    /// Fields of a record no adapter can use (no name).
    fn unusable_fields() -> Map<String, Value>;
    /// Writes into `record` that it was last changed `at`, in the field and form the vendor's
    /// changed-since listing reads.
    fn stamp_changed(record: &mut Map<String, Value>, at: chrono::DateTime<chrono::Utc>);
    /// The keys a record is indexed by, for searches that stay fast with many customers.
    fn index_keys(_record: &Map<String, Value>) -> Vec<String> {
        Vec::new()
    }
}

struct Rule {
    op: Op,
    fault: Fault,
    remaining: u32,
}

/// State every double keeps besides its customers: queued faults, calls, a fixed latency.
#[derive(Default)]
pub struct Shared {
    rules: Mutex<VecDeque<Rule>>,
    calls: Mutex<Vec<Call>>,
    latency: Mutex<Duration>,
}

/// What a handler does after the gate.
enum Gate {
    /// Serve the request; if a fault is given, answer with it after doing the work.
    Proceed(Option<Fault>),
    /// Answer with this, without doing anything.
    Respond(HttpResponse),
}

/// A lock that survives a panicking test thread: doubles keep serving other tests.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Records the call, waits the configured latency, and decides whether a fault applies.
    async fn gate<W: Wire>(&self, op: Op, request: &HttpRequest, body: &[u8]) -> Gate {
        lock(&self.calls).push(Call {
            op,
            method: request.method().to_string(),
            path: request.uri().to_string(),
            body: String::from_utf8_lossy(body).into_owned(),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            at: std::time::Instant::now(),
        });
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let fault = {
            let mut rules = lock(&self.rules);
            let found = rules.iter_mut().position(|r| r.op == op || r.op == Op::Any);
            found.and_then(|i| {
                let rule = rules.get_mut(i)?;
                rule.remaining = rule.remaining.saturating_sub(1);
                let fault = rule.fault.clone();
                if rule.remaining == 0 {
                    rules.remove(i);
                }
                Some(fault)
            })
        };
        match fault {
            None | Some(Fault::Pass) => Gate::Proceed(None),
            Some(Fault::Delay(wait)) => {
                tokio::time::sleep(wait).await;
                Gate::Proceed(None)
            }
            Some(Fault::AfterCommit(fault)) => Gate::Proceed(Some(*fault)),
            Some(fault) => Gate::Respond(respond_with::<W>(&fault).await),
        }
    }
}

/// The answer a fault gives, in `W`'s error shape (an error body of `null` is no body at all,
/// as some vendors answer a 401).
pub async fn respond_with<W: Wire>(fault: &Fault) -> HttpResponse {
    let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
    let error = |code: u16, reason: &str| {
        let mut response = HttpResponse::build(status(code));
        match W::error_body(code, reason) {
            Value::Null => response.finish(),
            body => response.json(body),
        }
    };
    match fault {
        Fault::Unauthorized => error(
            401,
            "Full authentication is required to access this resource",
        ),
        Fault::Invalid => {
            let (code, body) = W::invalid();
            HttpResponse::build(status(code)).json(body)
        }
        Fault::Status(code) => error(*code, "INJECTED_FAULT"),
        Fault::RateLimited { retry_after } => {
            let mut response = error(429, "Too many requests");
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(retry_after) {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, value);
            }
            response
        }
        Fault::Delay(wait) => {
            tokio::time::sleep(*wait).await;
            HttpResponse::GatewayTimeout().finish()
        }
        Fault::Garbage => HttpResponse::Ok()
            .content_type("text/html")
            .body("<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"),
        Fault::Huge(bytes) => {
            let filler = "x".repeat(*bytes);
            HttpResponse::Ok()
                .content_type("application/json")
                .body(format!("{{\"data\":\"{filler}\"}}"))
        }
        Fault::ResetMidBody => {
            let chunks: Vec<Result<Bytes, actix_web::Error>> = vec![
                Ok(Bytes::from_static(b"{\"data\":[{\"id\":")),
                Err(actix_web::error::ErrorInternalServerError(
                    "connection cut by the test double",
                )),
            ];
            HttpResponse::Ok()
                .content_type("application/json")
                .streaming(futures::stream::iter(chunks))
        }
        Fault::AfterCommit(inner) => Box::pin(respond_with::<W>(inner)).await,
        Fault::Pass => HttpResponse::Ok().json(Value::Null),
    }
}

/// A double's state, as its handlers see it (`web::Data<State<W>>`).
pub struct State<W: Wire> {
    pub credentials: W::Credentials,
    pub extra: W::Extra,
    pub customers: Mutex<Table>,
    shared: Arc<Shared>,
}

impl<W: Wire> State<W> {
    /// The gate every route passes first: records the call, applies a queued fault, then checks
    /// the credentials. `Ok(Some(fault))`: do the work, then answer with [`State::finish`].
    pub async fn enter(
        &self,
        op: Op,
        request: &HttpRequest,
        body: &[u8],
    ) -> Result<Option<Fault>, HttpResponse> {
        let after = match self.shared.gate::<W>(op, request, body).await {
            Gate::Respond(response) => return Err(response),
            Gate::Proceed(after) => after,
        };
        W::authorize(self, op, request)?;
        Ok(after)
    }

    /// The answer once the work is done: the normal one, or the fault queued "after commit".
    pub async fn finish(&self, after: Option<Fault>, normal: HttpResponse) -> HttpResponse {
        match after {
            Some(fault) => respond_with::<W>(&fault).await,
            None => normal,
        }
    }

    /// Stores a create of `fields` as the vendor would; the stored record, with its id.
    pub fn insert(&self, fields: &Map<String, Value>) -> Map<String, Value> {
        lock(&self.customers).insert::<W>(W::new_record(fields))
    }

    /// The customers table, locked.
    pub fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.customers)
    }
}

/// The running server and the controls every double shares. Dropping it stops the server.
pub struct Double {
    base_url: String,
    shared: Arc<Shared>,
    server: ServerHandle,
}

impl Double {
    /// Starts a server on a random loopback port with these routes.
    fn start<F>(shared: Arc<Shared>, routes: F) -> std::io::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("vendor-double-{}", address.port()))
            .spawn(move || {
                let system = actix_web::rt::System::new();
                let started = HttpServer::new(move || {
                    App::new()
                        .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                        .configure(routes.clone())
                })
                .workers(2)
                .backlog(4096)
                .max_connections(100_000)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)
                .map(HttpServer::run);
                match started {
                    Ok(server) => {
                        let _ = sender.send(Ok(server.handle()));
                        let _ = system.block_on(server);
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error));
                    }
                }
            })?;
        let server = receiver
            .recv()
            .map_err(|_| std::io::Error::other("the double's thread ended before starting"))??;
        Ok(Self {
            base_url: format!("http://{address}"),
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// The next `times` requests of kind `op` (or any, with [`Op::Any`]) get `fault`. Rules
    /// apply in the order they were added.
    pub fn fail(&self, op: Op, fault: Fault, times: u32) -> &Self {
        lock(&self.shared.rules).push_back(Rule {
            op,
            fault,
            remaining: times.max(1),
        });
        self
    }

    /// Drops every queued fault.
    pub fn heal(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Every request answers this much later (the benchmarks' slow vendor).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// The requests received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// How many requests of kind `op` were received.
    pub fn count(&self, op: Op) -> usize {
        lock(&self.shared.calls)
            .iter()
            .filter(|c| op == Op::Any || c.op == op)
            .count()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits for completion.
        drop(self.server.stop(false));
    }
}

impl std::fmt::Debug for Double {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Double")
            .field("url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// A running double of vendor `W`: the server and controls of [`Double`] (by `Deref`), its
/// state, and the [`VendorDouble`] surface.
pub struct DoubleOf<W: Wire> {
    double: Double,
    state: web::Data<State<W>>,
}

impl<W: Wire> DoubleOf<W> {
    /// A double accepting the vendor's default test credentials.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(W::Credentials::default())
    }

    /// A double accepting exactly these credentials.
    pub fn start_with(credentials: W::Credentials) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let state = web::Data::new(State::<W> {
            credentials,
            extra: W::Extra::default(),
            customers: Mutex::new(Table::default()),
            shared: shared.clone(),
        });
        let data = state.clone();
        let double = Double::start(shared, move |cfg| {
            cfg.app_data(data.clone());
            W::routes(cfg);
        })?;
        Ok(Self { double, state })
    }

    /// The credentials this double accepts.
    pub fn credentials(&self) -> &W::Credentials {
        &self.state.credentials
    }

    /// The double's state, for a vendor module's own controls.
    pub fn state(&self) -> &State<W> {
        &self.state
    }

    /// Adds a customer directly, as if created at the store's register, in the vendor's own
    /// shape; returns its id.
    pub fn seed(&self, record: Value) -> String {
        let fields = record.as_object().cloned().unwrap_or_default();
        id_text(&self.state.insert(&fields), W::ID_FIELD)
    }

    /// The store config reaching this double.
    pub fn store_config(&self) -> Value {
        W::store_config(self.url(), &self.state.credentials)
    }

    /// The customers the vendor holds, as stored (write-only fields included).
    pub fn customers(&self) -> Vec<Value> {
        self.state
            .table()
            .records()
            .cloned()
            .map(Value::Object)
            .collect()
    }
}

impl<W: Wire> std::ops::Deref for DoubleOf<W> {
    type Target = Double;
    fn deref(&self) -> &Double {
        &self.double
    }
}

impl<W: Wire> VendorDouble for DoubleOf<W> {
    fn vendor(&self) -> &'static str {
        W::NAME
    }

    fn double(&self) -> &Double {
        &self.double
    }

    fn store_config(&self) -> Value {
        DoubleOf::store_config(self)
    }

    fn wrong_credentials_config(&self) -> Value {
        W::wrong_credentials_config(self.url(), &self.state.credentials)
    }

    fn secrets(&self) -> Vec<String> {
        W::secrets(&self.state.credentials)
    }

    fn seed_customer(&self, customer: &SeedCustomer) -> String {
        id_text(&self.state.insert(&W::seed_fields(customer)), W::ID_FIELD)
    }

    fn seed_unusable(&self) -> String {
        id_text(&self.state.insert(&W::unusable_fields()), W::ID_FIELD)
    }

    fn set_last_changed(&self, id: &str, at: chrono::DateTime<chrono::Utc>) -> bool {
        self.state
            .table()
            .update::<W>(id, |record| W::stamp_changed(record, at))
            .is_some()
    }

    fn delete_customer(&self, id: &str) -> bool {
        self.state.table().remove::<W>(id)
    }

    fn customers(&self) -> Vec<Value> {
        DoubleOf::customers(self)
    }
}

/// A record's id as text, whether the vendor writes it as a string or a number.
fn id_text(record: &Map<String, Value>, field: &str) -> String {
    match record.get(field) {
        Some(Value::String(id)) => id.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Digits only, for phone matching.
pub fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// A JSON string field, trimmed, or `None` when absent, null or blank.
pub fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A request body as a JSON object, or `None`.
pub fn json_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// A request's header as text (empty when absent or not text).
pub fn header<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}
