//! The vendor under test: its adapter's entry, its double, and what the cases ask of both.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::NaiveDate;
use domain::{
    Capabilities, CreateKey, Customer, CustomerDirectory, CustomerId, CustomerQuery, Email, Gender,
    NewCustomer, OptionalField, PersonName, Phone, PosError, SearchFilter,
};
use pos_adapters::{Settings, VendorSpec};
use serde_json::Value;
use vendor_doubles::{Double, SeedCustomer, VendorDouble};

/// A case's body.
pub type Run = fn(Under) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `case` against a fresh double of `spec`'s vendor, on a runtime of its own.
pub fn run(spec: &'static VendorSpec, case: Run) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(case(Under::start(spec)));
}

/// One vendor's adapter and double, fresh for one case.
pub struct Under {
    pub spec: &'static VendorSpec,
    pub double: Box<dyn VendorDouble>,
}

impl Under {
    fn start(spec: &'static VendorSpec) -> Self {
        let vendor = spec.vendor.as_str();
        let double = vendor_doubles::start(vendor)
            .unwrap_or_else(|| {
                panic!("no test double speaks {vendor}: add it to vendor_doubles::DOUBLES")
            })
            .unwrap();
        Self { spec, double }
    }

    pub fn caps(&self) -> Capabilities {
        self.spec.capabilities
    }

    /// Faults, calls and latency of the double.
    pub fn vendor(&self) -> &Double {
        self.double.double()
    }

    /// The adapter, configured to reach the double.
    pub fn connect(&self) -> Arc<dyn CustomerDirectory> {
        self.connect_with(&serde_json::json!({}))
    }

    /// The same with `extra` keys over the double's config (`{"timeout": "300ms"}`).
    pub fn connect_with(&self, extra: &Value) -> Arc<dyn CustomerDirectory> {
        let mut config = self.double.store_config();
        merge(&mut config, extra);
        self.spec.connect(&config, &Settings::default()).unwrap()
    }

    /// A customer of ours with every field set, unique to `n`, that any vendor can hold.
    pub fn customer(&self, n: u32) -> NewCustomer {
        NewCustomer {
            first_name: PersonName::parse(&format!("Ann{n}")).unwrap(),
            last_name: PersonName::parse("Lee").unwrap(),
            gender: Some(Gender::Female),
            birthday: NaiveDate::from_ymd_opt(1990, 2, 3),
            email: Some(Email::parse(&format!("ann{n}@example.com")).unwrap()),
            phone: Some(
                Phone::parse(&format!("555-{:03}-{:04}", 100 + n % 900, n % 10_000)).unwrap(),
            ),
            drivers_license: Some(format!("D{n:07}")),
            notes: Some(format!("likes edibles {n}")),
        }
    }

    /// Seeds `count` customers at the vendor, as its register would; their ids.
    pub fn seed(&self, count: u32) -> Vec<String> {
        (1..=count)
            .map(|n| self.double.seed_customer(&SeedCustomer::numbered(n)))
            .collect()
    }

    /// A query for one filter, the way the API makes it from `customer` (e-mail and name in
    /// lower case, the phone's digits).
    pub fn query_by(filter: SearchFilter, customer: &NewCustomer) -> CustomerQuery {
        let mut query = CustomerQuery {
            limit: 25,
            ..Default::default()
        };
        match filter {
            SearchFilter::Email => {
                query.email = customer.email.as_ref().map(|e| e.as_str().to_lowercase());
            }
            SearchFilter::Phone => {
                query.phone_digits = customer.phone.as_ref().map(|p| p.digits().to_owned());
            }
            SearchFilter::DriversLicense => {
                query.drivers_license = customer.drivers_license.clone();
            }
            SearchFilter::Name => {
                query.name = Some(
                    format!(
                        "{} {}",
                        customer.first_name.as_str(),
                        customer.last_name.as_str()
                    )
                    .to_lowercase(),
                );
            }
        }
        query
    }

    /// The customer as the vendor gives it back now: by id where it can, else by the first
    /// filter it searches by.
    pub async fn read_back(
        &self,
        pos: &dyn CustomerDirectory,
        id: &CustomerId,
        like: &NewCustomer,
    ) -> Customer {
        if self.caps().get_customer {
            return pos.get(id).await.unwrap().expect("the customer is there");
        }
        let filter = self.caps().search_by[0];
        pos.find(&Self::query_by(filter, like))
            .await
            .unwrap()
            .customers
            .into_iter()
            .find(|c| &c.customer_id == id)
            .expect("the customer is found")
    }

    /// Asserts `got` is `want` in every field the vendor gives back.
    pub fn assert_same(&self, got: &Customer, want: &Customer) {
        let caps = self.caps();
        let reads = |field| caps.reads_back(field);
        assert_eq!(got.first_name, want.first_name);
        assert_eq!(got.last_name, want.last_name);
        if reads(OptionalField::Gender) {
            assert_eq!(got.gender, want.gender, "gender");
        }
        if reads(OptionalField::Birthday) {
            assert_eq!(got.birthday, want.birthday, "birthday");
        }
        if reads(OptionalField::Email) {
            let lower = |c: &Customer| c.email.as_ref().map(|e| e.as_str().to_lowercase());
            assert_eq!(lower(got), lower(want), "email");
        }
        if reads(OptionalField::Phone) {
            let digits = |c: &Customer| c.phone.as_ref().map(|p| p.digits().to_owned());
            assert_eq!(digits(got), digits(want), "phone");
        }
        if reads(OptionalField::DriversLicense) {
            assert_eq!(got.drivers_license, want.drivers_license, "drivers_license");
        }
        if reads(OptionalField::Notes) {
            assert_eq!(got.notes, want.notes, "notes");
        }
    }

    /// What no answer, error or `Debug` may show.
    pub fn assert_no_secret(&self, shown: &str) {
        for secret in self.double.secrets() {
            assert!(!shown.contains(&secret), "a credential was shown: {shown}");
        }
    }
}

/// Overwrites `config`'s keys with `extra`'s.
pub fn merge(config: &mut Value, extra: &Value) {
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            config.insert(key.clone(), value.clone());
        }
    }
}

/// Whether an error says the vendor could not be reached (the mirror may answer).
pub fn unreachable(error: &PosError) -> bool {
    error.is_unreachable()
}

/// A create key no other create of the run shares (a new kiosk request).
pub fn new_key() -> CreateKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CreateKey::derive(&["conformance", &n.to_string()])
}
