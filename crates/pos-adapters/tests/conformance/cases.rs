//! Every case of the suite: what an adapter must do whatever its vendor, each with the
//! capabilities it needs.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use domain::{
    Capabilities, CustomerId, CustomerPatch, CustomerQuery, Operation, PageToken, PersonName,
    PosError, SearchFilter, Store, StoreId, Vendor,
};
use pos_adapters::AdapterError;
use serde_json::{Value, json};
use vendor_doubles::{Fault, Op};

use crate::under::{Run, Under, new_key, unreachable};

/// One case: its name, what it needs of the vendor, and its body.
pub struct Case {
    pub name: &'static str,
    pub needs: Needs,
    pub run: Run,
}

/// What a case needs of a vendor's capabilities to apply.
pub enum Needs {
    Nothing,
    /// Every one of these operations.
    All(&'static [Operation]),
    /// A vendor that cannot do this.
    Not(Operation),
    /// A vendor that cannot search by some filter.
    SomeUnsearchableFilter,
}

impl Case {
    /// `Ok` when the case applies to a vendor with these capabilities, else why not.
    pub fn applies(&self, caps: &Capabilities) -> Result<(), String> {
        match self.needs {
            Needs::Nothing => Ok(()),
            Needs::All(operations) => match operations.iter().find(|op| !caps.supports(**op)) {
                None => Ok(()),
                Some(op) => Err(format!("the vendor cannot {op}")),
            },
            Needs::Not(op) if caps.supports(op) => Err(format!("the vendor can {op}")),
            Needs::Not(_) => Ok(()),
            Needs::SomeUnsearchableFilter => {
                if SearchFilter::ALL.iter().all(|f| caps.searches_by(*f)) {
                    Err("the vendor searches by every filter".to_owned())
                } else {
                    Ok(())
                }
            }
        }
    }
}

macro_rules! cases {
    ($($name:ident: $applies:expr;)*) => {
        pub const CASES: &[Case] = &[
            $(Case {
                name: stringify!($name),
                needs: $applies,
                run: |under| Box::pin($name(under)),
            },)*
        ];
    };
}

cases! {
    capabilities_are_the_specs_and_connecting_calls_nothing: Nothing;
    the_registry_opens_the_store_under_every_name: Nothing;
    config_errors_name_the_key_and_never_a_value: Nothing;
    debug_shows_no_credential: Nothing;
    wrong_credentials_are_unauthorized_and_never_echoed: All(&[ListCustomers]);
    a_401_that_persists_is_unauthorized_after_at_most_one_resend: All(&[ListCustomers]);
    concurrent_calls_share_one_token: All(&[ListCustomers]);
    a_created_customer_comes_back_as_it_was_sent: All(&[CreateCustomer]);
    a_created_customer_is_found_by_every_filter_the_vendor_searches_by: All(&[CreateCustomer, SearchCustomers]);
    filters_combine_with_and: All(&[CreateCustomer, SearchCustomers]);
    a_search_nobody_matches_is_an_empty_page: All(&[SearchCustomers]);
    a_search_by_filters_the_vendor_cannot_use_is_left_to_the_mirror: SomeUnsearchableFilter;
    a_search_is_retried_after_a_5xx: All(&[CreateCustomer, SearchCustomers]);
    get_of_an_unknown_customer_is_none: All(&[GetCustomer]);
    get_is_left_to_the_mirror_when_the_vendor_cannot: Not(GetCustomer);
    an_update_sets_and_clears_fields_and_keeps_the_rest: All(&[CreateCustomer, UpdateCustomer]);
    an_update_of_an_unknown_customer_is_not_found: All(&[UpdateCustomer]);
    the_list_pages_through_every_customer_once: All(&[ListCustomers]);
    a_changed_since_listing_has_what_changed_and_not_what_did_not: All(&[ListCustomers]);
    one_unusable_record_does_not_hide_the_others: All(&[ListCustomers]);
    a_vendors_control_characters_are_taken_out_of_every_read: All(&[ListCustomers]);
    a_customer_deleted_at_the_register_is_no_longer_read: All(&[ListCustomers]);
    a_page_size_the_contract_allows_is_accepted: All(&[ListCustomers]);
    a_forged_cursor_is_refused_without_a_call: All(&[ListCustomers]);
    reads_are_retried_then_unavailable_with_retry_after: All(&[ListCustomers]);
    a_read_that_fails_once_is_retried: All(&[ListCustomers]);
    a_slow_vendor_is_a_timeout_within_the_bound: All(&[ListCustomers]);
    an_operation_of_several_calls_ends_within_the_store_timeout: All(&[ListCustomers, CreateCustomer, UpdateCustomer]);
    unreadable_answers_are_bad_answers_and_a_cut_is_unavailable: All(&[ListCustomers]);
    a_success_of_the_wrong_shape_is_a_bad_answer: All(&[ListCustomers, CreateCustomer]);
    a_create_is_never_sent_twice_whatever_happens_after_it_left: All(&[CreateCustomer]);
    a_refused_or_limited_create_is_not_sent_again: All(&[CreateCustomer]);
    a_slow_create_is_a_timeout_and_sent_once: All(&[CreateCustomer]);
    a_vendor_validation_error_is_a_refusal_not_an_outage: All(&[CreateCustomer]);
}

use Needs::{All, Not, Nothing, SomeUnsearchableFilter};
use Operation::{CreateCustomer, GetCustomer, ListCustomers, SearchCustomers, UpdateCustomer};

fn list(limit: u32) -> CustomerQuery {
    CustomerQuery {
        limit,
        ..Default::default()
    }
}

fn id(text: &str) -> CustomerId {
    CustomerId::parse(text).unwrap()
}

/// Every customer id a full walk of the list finds, with `limit` per page.
async fn walk(pos: &dyn domain::CustomerDirectory, limit: u32) -> Vec<String> {
    walk_of(pos, list(limit)).await
}

/// Every customer id a walk of `query`'s pages finds.
async fn walk_of(pos: &dyn domain::CustomerDirectory, query: CustomerQuery) -> Vec<String> {
    let mut ids = Vec::new();
    let mut page = None;
    for _ in 0..1000 {
        let answer = pos
            .find(&CustomerQuery {
                page,
                ..query.clone()
            })
            .await
            .unwrap();
        ids.extend(
            answer
                .customers
                .iter()
                .map(|c| c.customer_id.as_str().to_owned()),
        );
        match answer.next {
            Some(next) => page = Some(next),
            None => return ids,
        }
    }
    panic!("the list never ended");
}

// --- opening a store ----------------------------------------------------------------------

async fn capabilities_are_the_specs_and_connecting_calls_nothing(v: Under) {
    let pos = v.connect();
    assert_eq!(pos.vendor(), v.spec.vendor);
    assert_eq!(pos.capabilities(), v.spec.capabilities);
    assert!(!pos.is_mirror());
    let caps = pos.capabilities();
    assert_eq!(
        caps.search_customers,
        !caps.search_by.is_empty(),
        "a vendor that searches says by what"
    );
    assert_eq!(
        v.vendor().count(Op::Any),
        0,
        "opening a store sends nothing"
    );
}

async fn the_registry_opens_the_store_under_every_name(v: Under) {
    let (name, aliases) = v.spec.names();
    let config = v.double.store_config();
    for name in std::iter::once(name).chain(aliases.iter().copied()) {
        let vendor: Vendor = name.parse().unwrap();
        assert_eq!(vendor, v.spec.vendor, "{name}");
        assert_eq!(pos_adapters::validate_config(vendor, &config), Ok(()));
        let store = Store {
            id: StoreId(1),
            name: "Main St".into(),
            vendor,
            config: config.clone().into(),
        };
        let pos = pos_adapters::connect(&store).unwrap();
        assert_eq!(pos.vendor(), v.spec.vendor);
    }
}

/// Each key of the double's config, removed, of the wrong type, blank or with control
/// characters: refused naming the key (when the vendor needs it), never showing a value.
async fn config_errors_name_the_key_and_never_a_value(v: Under) {
    let config = v.double.store_config();
    let object = config.as_object().unwrap();
    let values: Vec<String> = object
        .values()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .filter(|text| text.len() >= 4)
        .chain(v.double.secrets())
        .collect();
    let check = |config: &Value, key: &str, must_fail: bool| match pos_adapters::validate_config(
        v.spec.vendor,
        config,
    ) {
        Ok(()) => assert!(!must_fail, "a {key} of the wrong type was accepted"),
        Err(AdapterError::Config { vendor, message }) => {
            assert_eq!(vendor, v.spec.vendor);
            assert!(message.contains(key), "{key}: {message}");
            for value in &values {
                assert!(!message.contains(value.as_str()), "{key}: {message}");
            }
        }
        Err(other) => panic!("{key}: {other:?}"),
    };
    let mut required = 0;
    for key in object.keys() {
        let mut without = config.clone();
        without.as_object_mut().unwrap().remove(key);
        if pos_adapters::validate_config(v.spec.vendor, &without).is_err() {
            required += 1;
            check(&without, key, true);
        }
        // `timeout` and `rate_limit_per_minute` take numbers; nothing takes a list.
        let mut wrong = config.clone();
        wrong[key] = json!(["not", "this"]);
        check(&wrong, key, true);
        if object[key].is_string() {
            for odd in [json!("   "), json!("bad\u{7}value")] {
                let mut odd_config = config.clone();
                odd_config[key] = odd;
                check(&odd_config, key, false);
            }
        }
    }
    assert!(required > 0, "the config has no required key?");
    assert!(matches!(
        pos_adapters::validate_config(v.spec.vendor, &json!("a string")),
        Err(AdapterError::Config { .. })
    ));
    // Credentials go over https, or plain http to a loopback host only; never with a user or
    // password in the URL.
    for url in [
        "ftp://example.com",
        "http://api.example.com",
        "https://user:password@api.example.com",
    ] {
        let mut bad_url = config.clone();
        bad_url["base_url"] = json!(url);
        check(&bad_url, "base_url", true);
    }
}

async fn debug_shows_no_credential(v: Under) {
    let pos = v.connect();
    let wrong = v.connect_with(&v.double.wrong_credentials_config());
    v.assert_no_secret(&format!("{pos:?} {wrong:?}"));
}

// --- credentials --------------------------------------------------------------------------

async fn wrong_credentials_are_unauthorized_and_never_echoed(v: Under) {
    let pos = v.connect_with(&v.double.wrong_credentials_config());
    let error = pos.find(&list(10)).await.unwrap_err();
    let PosError::Unauthorized(response) = &error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert!(matches!(response.status, 401 | 403), "{}", response.status);
    v.assert_no_secret(&format!("{error:?} {error} {}", response.body));
}

async fn a_401_that_persists_is_unauthorized_after_at_most_one_resend(v: Under) {
    let pos = v.connect();
    v.vendor().fail(Op::List, Fault::Unauthorized, 10);
    let error = pos.find(&list(10)).await.unwrap_err();
    assert!(matches!(error, PosError::Unauthorized(_)), "{error:?}");
    let lists = v.vendor().count(Op::List);
    assert!((1..=2).contains(&lists), "{lists} calls for one read");
    assert!(v.vendor().count(Op::Token) <= 2);
}

async fn concurrent_calls_share_one_token(v: Under) {
    let pos = v.connect();
    let calls = (0..10).map(|_| {
        let pos = pos.clone();
        async move { pos.find(&list(5)).await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    assert!(v.vendor().count(Op::Token) <= 1, "one token for ten calls");
}

// --- create, read, search -----------------------------------------------------------------

async fn a_created_customer_comes_back_as_it_was_sent(v: Under) {
    let pos = v.connect();
    let sent = v.customer(1);
    let created = pos.create(&sent, &new_key()).await.unwrap();
    assert_eq!(created.status.as_str(), "ACTIVE");
    let want = sent
        .clone()
        .into_customer(created.customer_id.clone(), created.status.clone());
    v.assert_same(&created, &want);
    assert_eq!(v.double.customers().len(), 1);
    assert_eq!(v.vendor().count(Op::Create), 1);
    let back = v.read_back(pos.as_ref(), &created.customer_id, &sent).await;
    v.assert_same(&back, &want);
}

async fn a_created_customer_is_found_by_every_filter_the_vendor_searches_by(v: Under) {
    let pos = v.connect();
    let sent = v.customer(2);
    let created = pos.create(&sent, &new_key()).await.unwrap();
    for filter in v.caps().search_by {
        let page = pos.find(&Under::query_by(*filter, &sent)).await.unwrap();
        let ids: Vec<&CustomerId> = page.customers.iter().map(|c| &c.customer_id).collect();
        assert_eq!(ids, vec![&created.customer_id], "by {}", filter.as_str());
        v.assert_same(&page.customers[0], &created);
    }
}

/// Never someone who matches one filter but not another: an empty page, or (where the
/// vendor's look-up can't judge one of them) the mirror's answer.
async fn filters_combine_with_and(v: Under) {
    let pos = v.connect();
    let sent = v.customer(3);
    pos.create(&sent, &new_key()).await.unwrap();
    let filter = v.caps().search_by[0];
    let mut query = Under::query_by(filter, &sent);
    // A second filter the customer does not match, whether or not the vendor searches by it.
    if filter == SearchFilter::Name {
        query.email = Some("someone.else@example.com".into());
    } else {
        query.name = Some("zebedee".into());
    }
    match pos.find(&query).await {
        Ok(page) => assert!(page.customers.is_empty(), "{query:?}"),
        Err(PosError::Unsupported(Operation::SearchCustomers)) => {}
        Err(other) => panic!("{query:?}: {other:?}"),
    }
}

/// Nobody is an empty page, or (where the vendor's look-up is narrower than ours, as Treez's
/// whole-name search is against our name prefixes) left to the mirror; never someone else.
async fn a_search_nobody_matches_is_an_empty_page(v: Under) {
    let pos = v.connect();
    v.seed(2);
    let nobody = v.customer(999);
    for filter in v.caps().search_by {
        match pos.find(&Under::query_by(*filter, &nobody)).await {
            Ok(page) => {
                assert!(page.customers.is_empty(), "by {}", filter.as_str());
                assert_eq!(page.next, None);
            }
            Err(PosError::Unsupported(Operation::SearchCustomers)) => {}
            Err(other) => panic!("by {}: {other:?}", filter.as_str()),
        }
    }
}

async fn a_search_by_filters_the_vendor_cannot_use_is_left_to_the_mirror(v: Under) {
    let pos = v.connect();
    let someone = v.customer(4);
    for filter in SearchFilter::ALL {
        if v.caps().searches_by(filter) {
            continue;
        }
        let error = pos
            .find(&Under::query_by(filter, &someone))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            PosError::Unsupported(Operation::SearchCustomers),
            "by {}",
            filter.as_str()
        );
    }
    assert_eq!(
        v.vendor().count(Op::Any),
        0,
        "no call for a search it can't do"
    );
}

async fn a_search_is_retried_after_a_5xx(v: Under) {
    let pos = v.connect();
    let sent = v.customer(5);
    pos.create(&sent, &new_key()).await.unwrap();
    let query = Under::query_by(v.caps().search_by[0], &sent);
    let before = v.vendor().count(Op::Search);
    v.vendor().fail(Op::Search, Fault::Status(500), 1);
    let page = pos.find(&query).await.unwrap();
    assert_eq!(page.customers.len(), 1);
    assert!(
        v.vendor().count(Op::Search) > before + 1,
        "the failed search was sent again"
    );
}

async fn get_of_an_unknown_customer_is_none(v: Under) {
    let pos = v.connect();
    v.seed(1);
    for unknown in [
        "424242424242",
        "00000000-0000-4000-8000-000000000000",
        "5f0c0ffee0ddba11c0ffee00",
    ] {
        assert_eq!(pos.get(&id(unknown)).await.unwrap(), None, "{unknown}");
    }
}

async fn get_is_left_to_the_mirror_when_the_vendor_cannot(v: Under) {
    let pos = v.connect();
    let ids = v.seed(1);
    assert_eq!(
        pos.get(&id(&ids[0])).await.unwrap_err(),
        PosError::Unsupported(Operation::GetCustomer)
    );
    assert_eq!(v.vendor().count(Op::Any), 0);
}

// --- update -------------------------------------------------------------------------------

async fn an_update_sets_and_clears_fields_and_keeps_the_rest(v: Under) {
    let pos = v.connect();
    let sent = v.customer(6);
    let created = pos.create(&sent, &new_key()).await.unwrap();
    let caps = v.caps();
    // Clear the first optional field the vendor gives back and does not require.
    let clearable = domain::OptionalField::ALL
        .into_iter()
        .find(|f| caps.reads_back(*f) && !caps.required_fields.contains(f));
    let mut patch = CustomerPatch {
        first_name: Some(PersonName::parse("Annabel").unwrap()),
        notes: Some(Some("now prefers tinctures".into())),
        ..Default::default()
    };
    match clearable {
        Some(domain::OptionalField::Gender) => patch.gender = Some(None),
        Some(domain::OptionalField::Birthday) => patch.birthday = Some(None),
        Some(domain::OptionalField::Email) => patch.email = Some(None),
        Some(domain::OptionalField::Phone) => patch.phone = Some(None),
        Some(domain::OptionalField::DriversLicense) => patch.drivers_license = Some(None),
        Some(domain::OptionalField::Notes) | None => {}
    }
    let updated = pos.update(&created.customer_id, &patch).await.unwrap();
    let mut want = created.clone();
    want.apply(&patch);
    v.assert_same(&updated, &want);
    assert_eq!(updated.customer_id, created.customer_id);
    let mut like = sent.clone();
    like.first_name = PersonName::parse("Annabel").unwrap();
    if clearable == Some(domain::OptionalField::Email) {
        like.email = None;
    }
    if clearable == Some(domain::OptionalField::Phone) {
        like.phone = None;
    }
    let back = v.read_back(pos.as_ref(), &created.customer_id, &like).await;
    v.assert_same(&back, &want);
    assert_eq!(v.double.customers().len(), 1, "an update creates nobody");
}

async fn an_update_of_an_unknown_customer_is_not_found(v: Under) {
    let pos = v.connect();
    v.seed(1);
    let patch = CustomerPatch {
        notes: Some(Some("x".into())),
        ..Default::default()
    };
    for unknown in [
        "424242424242",
        "00000000-0000-4000-8000-000000000000",
        "5f0c0ffee0ddba11c0ffee00",
    ] {
        assert_eq!(
            pos.update(&id(unknown), &patch).await.unwrap_err(),
            PosError::NotFound,
            "{unknown}"
        );
    }
    assert_eq!(v.double.customers().len(), 1);
    assert_eq!(v.vendor().count(Op::Create), 0);
}

// --- listing ------------------------------------------------------------------------------

async fn the_list_pages_through_every_customer_once(v: Under) {
    let pos = v.connect();
    let seeded: BTreeSet<String> = v.seed(7).into_iter().collect();
    let ids = walk(pos.as_ref(), 3).await;
    let found: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(found.len(), ids.len(), "a customer came twice: {ids:?}");
    assert_eq!(found, seeded);
}

/// An incremental sync's listing: every customer changed since the time asked (a new one, and
/// an old one edited at the register lately), none of those last changed weeks before (a
/// vendor's filter may be coarser than the time, a day at Flowhub, but not weeks), each once,
/// over several pages.
async fn a_changed_since_listing_has_what_changed_and_not_what_did_not(v: Under) {
    let pos = v.connect();
    let old = v.seed(4);
    let weeks_ago = chrono::Utc::now() - chrono::TimeDelta::days(60);
    for id in &old {
        assert!(v.double.set_last_changed(id, weeks_ago));
    }
    let mut changed: BTreeSet<String> = (5..=7)
        .map(|n| {
            v.double
                .seed_customer(&vendor_doubles::SeedCustomer::numbered(n))
        })
        .collect();
    assert!(
        v.double
            .set_last_changed(&old[0], chrono::Utc::now() - chrono::TimeDelta::minutes(1))
    );
    changed.insert(old[0].clone());
    let query = CustomerQuery {
        changed_since: Some(chrono::Utc::now() - chrono::TimeDelta::hours(1)),
        ..list(2)
    };
    let ids = walk_of(pos.as_ref(), query).await;
    let found: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(found.len(), ids.len(), "a customer came twice: {ids:?}");
    assert_eq!(found, changed);
    // Without a time, the same adapter lists everyone.
    assert_eq!(walk(pos.as_ref(), 25).await.len(), 7);
}

async fn one_unusable_record_does_not_hide_the_others(v: Under) {
    let pos = v.connect();
    let mut usable = BTreeSet::new();
    usable.extend(v.seed(1));
    v.double.seed_unusable();
    usable.extend((2..=4).map(|n| {
        v.double
            .seed_customer(&vendor_doubles::SeedCustomer::numbered(n))
    }));
    let first = pos.find(&list(25)).await.unwrap();
    assert_eq!(first.customers.len(), 4);
    let walked: BTreeSet<String> = walk(pos.as_ref(), 2).await.into_iter().collect();
    assert_eq!(walked, usable);
}

/// A NUL or another control character in a vendor's text never reaches a customer (PostgreSQL
/// cannot store NUL, and a whole sync page would fail on it): taken out, in a listing and in
/// a read by id alike, line breaks of notes kept.
async fn a_vendors_control_characters_are_taken_out_of_every_read(v: Under) {
    let pos = v.connect();
    let seeded = v.double.seed_customer(&vendor_doubles::SeedCustomer {
        first_name: "An\u{0}n\u{7}a".into(),
        last_name: "Lee\u{1b}".into(),
        email: Some("anna.lee@example.com".into()),
        drivers_license: Some("D\u{0}7\u{7f}7".into()),
        notes: Some("likes\u{0} edibles\u{7}\nand tea".into()),
        ..vendor_doubles::SeedCustomer::default()
    });
    let listed = pos.find(&list(25)).await.unwrap().customers;
    let mut read = vec![
        listed
            .into_iter()
            .find(|c| c.customer_id.as_str() == seeded)
            .expect("the customer is listed"),
    ];
    if v.caps().get_customer {
        read.push(pos.get(&id(&seeded)).await.unwrap().expect("it is there"));
    }
    for customer in read {
        assert_eq!(customer.first_name.as_str(), "Anna");
        assert_eq!(customer.last_name.as_str(), "Lee");
        if v.caps().reads_back(domain::OptionalField::DriversLicense) {
            assert_eq!(customer.drivers_license.as_deref(), Some("D77"));
        }
        if v.caps().reads_back(domain::OptionalField::Notes) {
            assert_eq!(customer.notes.as_deref(), Some("likes edibles\nand tea"));
        }
    }
}

/// The double's register deletes a customer: the vendor no longer lists it nor finds it by
/// id (what `pos-gateway sync` relies on to tombstone it in the mirror).
async fn a_customer_deleted_at_the_register_is_no_longer_read(v: Under) {
    let pos = v.connect();
    let ids = v.seed(3);
    assert!(v.double.delete_customer(&ids[1]));
    assert!(!v.double.delete_customer(&ids[1]), "deleted once");
    let walked: BTreeSet<String> = walk(pos.as_ref(), 25).await.into_iter().collect();
    let kept: BTreeSet<String> = [ids[0].clone(), ids[2].clone()].into();
    assert_eq!(walked, kept);
    if v.caps().get_customer {
        assert_eq!(pos.get(&id(&ids[1])).await.unwrap(), None);
        assert!(pos.get(&id(&ids[0])).await.unwrap().is_some());
    }
}

async fn a_page_size_the_contract_allows_is_accepted(v: Under) {
    let pos = v.connect();
    v.seed(3);
    for limit in [1, 100] {
        let page = pos.find(&list(limit)).await.unwrap();
        assert!(!page.customers.is_empty() && page.customers.len() <= limit as usize);
    }
}

async fn a_forged_cursor_is_refused_without_a_call(v: Under) {
    let pos = v.connect();
    for forged in ["forged!!", "-1", "", "99999999999999999999999"] {
        let error = pos
            .find(&CustomerQuery {
                page: Some(PageToken(forged.into())),
                ..list(10)
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&error, PosError::Rejected(e) if e.get("cursor").is_some()),
            "{forged:?}: {error:?}"
        );
    }
    assert_eq!(v.vendor().count(Op::List), 0);
}

// --- faults on reads ----------------------------------------------------------------------

async fn reads_are_retried_then_unavailable_with_retry_after(v: Under) {
    let pos = v.connect_with(&json!({"timeout": "1s"}));
    v.vendor().fail(
        Op::List,
        Fault::RateLimited {
            retry_after: "2".into(),
        },
        10,
    );
    let error = pos.find(&list(10)).await.unwrap_err();
    assert!(
        matches!(error, PosError::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(2)),
        "{error:?}"
    );
    v.vendor().heal();
    let before = v.vendor().count(Op::List);
    v.vendor().fail(Op::List, Fault::Status(503), 10);
    let error = pos.find(&list(10)).await.unwrap_err();
    assert!(unreachable(&error), "{error:?}");
    assert_eq!(
        v.vendor().count(Op::List) - before,
        3,
        "a read is sent once and retried twice"
    );
}

async fn a_read_that_fails_once_is_retried(v: Under) {
    let pos = v.connect();
    v.seed(2);
    v.vendor().fail(Op::List, Fault::Status(500), 1);
    let page = pos.find(&list(10)).await.unwrap();
    assert_eq!(page.customers.len(), 2);
}

async fn a_slow_vendor_is_a_timeout_within_the_bound(v: Under) {
    let pos = v.connect_with(&json!({"timeout": "300ms"}));
    // A token (where the vendor has them) comes first and quickly.
    pos.find(&list(10)).await.unwrap();
    v.vendor()
        .fail(Op::List, Fault::Delay(Duration::from_secs(3)), 10);
    let started = Instant::now();
    let error = pos.find(&list(10)).await.unwrap_err();
    assert_eq!(
        error,
        PosError::Timeout {
            vendor: v.spec.vendor,
            after: Duration::from_millis(300)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// However many calls an operation makes (a token, a read and a write; a walk over windows),
/// the kiosk waits at most the store's timeout for it, not the timeout once per call.
async fn an_operation_of_several_calls_ends_within_the_store_timeout(v: Under) {
    let sent = v.customer(60);
    let id = v
        .connect()
        .create(&sent, &new_key())
        .await
        .unwrap()
        .customer_id;
    v.seed(3);
    let timeout = Duration::from_millis(600);
    let pos = v.connect_with(&json!({"timeout": "600ms"}));
    v.vendor().set_latency(Duration::from_millis(400));
    let patch = CustomerPatch {
        notes: Some(Some("slow".into())),
        ..Default::default()
    };
    let started = Instant::now();
    let updated = pos.update(&id, &patch).await;
    let took = started.elapsed();
    assert!(
        matches!(updated, Ok(_) | Err(PosError::Timeout { .. })),
        "{updated:?}"
    );
    assert!(
        took < timeout + Duration::from_millis(150),
        "an update took {took:?}"
    );
    let started = Instant::now();
    let listed = pos.find(&list(100)).await;
    let took = started.elapsed();
    assert!(
        matches!(listed, Ok(_) | Err(PosError::Timeout { .. })),
        "{listed:?}"
    );
    assert!(
        took < timeout + Duration::from_millis(150),
        "a list took {took:?}"
    );
    v.vendor().set_latency(Duration::ZERO);
}

async fn unreadable_answers_are_bad_answers_and_a_cut_is_unavailable(v: Under) {
    let pos = v.connect();
    pos.find(&list(10)).await.unwrap();
    for (fault, bad_answer) in [
        (Fault::Garbage, true),
        (Fault::Huge(2 * 1024 * 1024), true),
        (Fault::ResetMidBody, false),
    ] {
        v.vendor().heal();
        let before = v.vendor().count(Op::List);
        v.vendor().fail(Op::List, fault.clone(), 10);
        let error = pos.find(&list(10)).await.unwrap_err();
        if bad_answer {
            assert!(
                matches!(error, PosError::BadAnswer { .. }),
                "{fault:?}: {error:?}"
            );
            assert_eq!(
                v.vendor().count(Op::List) - before,
                1,
                "{fault:?}: no retry helps"
            );
        } else {
            assert!(unreachable(&error), "{fault:?}: {error:?}");
        }
    }
}

/// JSON, but not what the vendor sends (`{"data": "xxxxxxxxxx"}`).
async fn a_success_of_the_wrong_shape_is_a_bad_answer(v: Under) {
    let pos = v.connect();
    v.seed(1);
    pos.find(&list(10)).await.unwrap();
    v.vendor().fail(Op::List, Fault::Huge(10), 1);
    let error = pos.find(&list(10)).await.unwrap_err();
    assert!(matches!(error, PosError::BadAnswer { .. }), "{error:?}");
    v.vendor()
        .fail(Op::Create, Fault::AfterCommit(Box::new(Fault::Huge(10))), 1);
    let error = pos.create(&v.customer(50), &new_key()).await.unwrap_err();
    assert!(matches!(error, PosError::BadAnswer { .. }), "{error:?}");
    assert_eq!(v.vendor().count(Op::Create), 1);
}

// --- faults on writes ---------------------------------------------------------------------

async fn a_create_is_never_sent_twice_whatever_happens_after_it_left(v: Under) {
    let pos = v.connect_with(&json!({"timeout": "500ms"}));
    let faults = [
        Fault::Status(500),
        Fault::Status(503),
        Fault::RateLimited {
            retry_after: "1".into(),
        },
        Fault::Delay(Duration::from_secs(2)),
        Fault::ResetMidBody,
        Fault::Garbage,
    ];
    for (i, fault) in faults.iter().enumerate() {
        v.vendor()
            .fail(Op::Create, Fault::AfterCommit(Box::new(fault.clone())), 1);
        let error = pos
            .create(&v.customer(10 + i as u32), &new_key())
            .await
            .unwrap_err();
        assert!(
            unreachable(&error) || matches!(error, PosError::BadAnswer { .. }),
            "{fault:?}: {error:?}"
        );
        assert_eq!(
            v.vendor().count(Op::Create),
            i + 1,
            "{fault:?} was sent again"
        );
        assert_eq!(v.double.customers().len(), i + 1);
    }
}

async fn a_refused_or_limited_create_is_not_sent_again(v: Under) {
    let pos = v.connect_with(&json!({"timeout": "3s"}));
    v.vendor().fail(
        Op::Create,
        Fault::RateLimited {
            retry_after: "7".into(),
        },
        1,
    );
    let error = pos.create(&v.customer(20), &new_key()).await.unwrap_err();
    assert!(
        matches!(error, PosError::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{error:?}"
    );
    assert_eq!(v.vendor().count(Op::Create), 1);
    for (i, status) in [429, 500, 503].into_iter().enumerate() {
        v.vendor().fail(Op::Create, Fault::Status(status), 1);
        let error = pos
            .create(&v.customer(21 + i as u32), &new_key())
            .await
            .unwrap_err();
        assert!(unreachable(&error), "{status}: {error:?}");
        assert_eq!(
            v.vendor().count(Op::Create),
            2 + i,
            "{status} was sent again"
        );
    }
    assert!(v.double.customers().is_empty());
}

async fn a_slow_create_is_a_timeout_and_sent_once(v: Under) {
    let pos = v.connect_with(&json!({"timeout": "300ms"}));
    pos.find(&list(1)).await.ok();
    v.vendor().fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Delay(Duration::from_secs(2)))),
        1,
    );
    let started = Instant::now();
    let error = pos.create(&v.customer(30), &new_key()).await.unwrap_err();
    assert!(matches!(error, PosError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(v.vendor().count(Op::Create), 1);
}

async fn a_vendor_validation_error_is_a_refusal_not_an_outage(v: Under) {
    let pos = v.connect();
    v.vendor().fail(Op::Create, Fault::Invalid, 1);
    let error = pos.create(&v.customer(40), &new_key()).await.unwrap_err();
    match &error {
        PosError::Rejected(errors) => assert!(!errors.is_empty()),
        PosError::Upstream(response) => assert!((400..500).contains(&response.status)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(v.vendor().count(Op::Create), 1);
    assert!(v.double.customers().is_empty());
    v.assert_no_secret(&format!("{error:?}"));
}
