//! Arbitrary request bodies through exactly what the create, PATCH, PUT and bulk handlers run
//! (`http_api::dto::parse_create_body`, `parse_update_body`, `parse_bulk_body`: JSON, the
//! `customer`/`customers` param, the raw form, the domain's parsers), with a fixed `today`.
//!
//! Besides "never panics", it checks what the handlers rely on: every refusal is a 4xx that
//! renders; PUT accepts exactly what create accepts; whatever is accepted is as valid as the
//! domain's value types promise.
#![no_main]

use chrono::{Datelike, NaiveDate};
use domain::{Email, NewCustomer, PersonName, Phone};
use http_api::dto::{self, UpdateKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(today) = NaiveDate::from_ymd_opt(2026, 11, 23) else {
        return;
    };
    let create = dto::parse_create_body(data, today);
    let patch = dto::parse_update_body(data, UpdateKind::Patch, today);
    let put = dto::parse_update_body(data, UpdateKind::Put, today);
    let bulk = dto::parse_bulk_body(data, today);

    let errors = [
        create.as_ref().err(),
        patch.as_ref().err(),
        put.as_ref().err(),
        bulk.as_ref().err(),
    ];
    for error in errors.into_iter().flatten() {
        let status = error.status();
        assert!(status.is_client_error(), "{status} for {error:?}");
        assert!(serde_json::to_value(error.body()).is_ok_and(|body| body.is_object()));
    }
    assert_eq!(create.is_ok(), put.is_ok(), "PUT and create disagree");
    if let Ok(new) = &create {
        valid(new, today);
        assert!(patch.is_ok(), "a valid create body is not a valid PATCH");
    }
    if let Ok(items) = &bulk {
        assert!((1..=dto::MAX_BULK_ITEMS).contains(&items.len()));
        for new in items.iter().flatten() {
            valid(new, today);
        }
    }
});

/// What `NewCustomer::parse` promises about what it accepts.
fn valid(new: &NewCustomer, today: NaiveDate) {
    for name in [&new.first_name, &new.last_name] {
        assert_eq!(PersonName::parse(name.as_str()).as_ref(), Ok(name));
    }
    if let Some(email) = &new.email {
        assert_eq!(Email::parse(email.as_str()).as_ref(), Ok(email));
    }
    if let Some(phone) = &new.phone {
        assert_eq!(Phone::parse(phone.as_str()).as_ref(), Ok(phone));
        assert!((10..=15).contains(&phone.digits().len()));
    }
    if let Some(birthday) = new.birthday {
        assert!(birthday <= today && (1000..=9999).contains(&birthday.year()));
    }
    if let Some(license) = &new.drivers_license {
        assert!(!license.is_empty() && license.chars().count() <= 64);
    }
    if let Some(notes) = &new.notes {
        assert!(!notes.is_empty() && notes.chars().count() <= 2000);
    }
}
