//! Arbitrary query strings of `GET /api/v1/{catalog_id}/customers` through exactly what the
//! list handler runs (`http_api::dto::parse_list_query`: actix's `Query::<QueryParams>` then
//! `CustomerQuery::parse`).
//!
//! Besides "never panics", it checks that every refusal is a 4xx that renders and that an
//! accepted query is normalised as the mirror and the adapters expect.
#![no_main]

use http_api::dto;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A request's query string is text; actix hands the handler a `&str`.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match dto::parse_list_query(text) {
        Ok((query, cursor)) => {
            assert!((1..=100).contains(&query.limit));
            if let Some(digits) = &query.phone_digits {
                assert!((10..=15).contains(&digits.len()));
                assert!(digits.bytes().all(|b| b.is_ascii_digit()));
            }
            if let Some(email) = &query.email {
                assert_eq!(email, &email.to_lowercase());
            }
            if let Some(name) = &query.name {
                assert!(!name.is_empty() && name.trim() == name);
                assert_eq!(name, &name.to_lowercase());
            }
            for text in [&query.drivers_license, &cursor].into_iter().flatten() {
                assert!(!text.is_empty() && text.trim() == text);
            }
            let _ = (query.name_words(), query.drivers_license_key());
        }
        Err(error) => {
            let status = error.status();
            assert!(status.is_client_error(), "{status} for {error:?}");
            assert!(serde_json::to_value(error.body()).is_ok_and(|body| body.is_object()));
        }
    }
});
