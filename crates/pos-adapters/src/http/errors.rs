//! Vendor failures as the domain's [`PosError`], decided in one place.

use std::time::{Duration, SystemTime};

use domain::{PosError, Vendor, VendorResponse};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

/// The domain error for a vendor answer that is not a success. `echoed` is the body as it may
/// be shown (already scrubbed and cut, see `Redactor::echo`), `max_retry_after` the clamp for
/// the vendor's `Retry-After`.
///
/// 401/403: our credentials were refused. 404: no such thing (vendor modules that mean
/// something else by a 404 accept the status and decide themselves). 429 and 5xx: the vendor
/// can't serve us now, so the mirror may answer, with the vendor's `Retry-After` when it gave
/// one. Anything else: the vendor rejected the request; vendor modules may turn its field
/// errors into `PosError::Rejected`.
pub fn error_for_status(
    vendor: Vendor,
    status: StatusCode,
    headers: &HeaderMap,
    echoed: Value,
    max_retry_after: Duration,
) -> PosError {
    let response = VendorResponse {
        vendor,
        status: status.as_u16(),
        body: echoed,
    };
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => PosError::Unauthorized(response),
        StatusCode::NOT_FOUND => PosError::NotFound,
        StatusCode::TOO_MANY_REQUESTS => PosError::Unavailable {
            vendor,
            message: "the POS rate limit was reached".to_owned(),
            retry_after: retry_after(headers, SystemTime::now()).map(|d| d.min(max_retry_after)),
            response: Some(response),
        },
        s if s.is_server_error() => PosError::Unavailable {
            vendor,
            message: format!("the POS answered {}", s.as_u16()),
            retry_after: retry_after(headers, SystemTime::now()).map(|d| d.min(max_retry_after)),
            response: Some(response),
        },
        _ => PosError::Upstream(response),
    }
}

/// A successful answer we could not use: too big, not JSON, or not the shape we expect.
pub(crate) fn bad_answer(
    vendor: Vendor,
    message: impl Into<String>,
    status: StatusCode,
    echoed: Value,
) -> PosError {
    PosError::BadAnswer {
        vendor,
        message: message.into(),
        response: Some(VendorResponse {
            vendor,
            status: status.as_u16(),
            body: echoed,
        }),
    }
}

/// The wait a `Retry-After` header asks for, in either of its forms: delay seconds or an
/// HTTP-date (a date in the past means "now"). Unclamped; `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        h
    }

    #[test]
    fn statuses_map_to_the_domain() {
        let map = |status: u16, h: &HeaderMap| {
            error_for_status(
                Vendor::Cova,
                StatusCode::from_u16(status).unwrap(),
                h,
                json!({"Message": "x"}),
                Duration::from_secs(30),
            )
        };
        let none = HeaderMap::new();
        assert!(matches!(map(401, &none), PosError::Unauthorized(r) if r.status == 401));
        assert!(matches!(map(403, &none), PosError::Unauthorized(_)));
        assert_eq!(map(404, &none), PosError::NotFound);
        assert!(
            matches!(map(400, &none), PosError::Upstream(r) if r.body == json!({"Message": "x"}))
        );
        assert!(matches!(map(302, &none), PosError::Upstream(_)));
        assert!(matches!(
            map(429, &headers("3600")),
            PosError::Unavailable { retry_after: Some(d), response: Some(_), .. } if d == Duration::from_secs(30)
        ));
        assert!(matches!(
            map(503, &headers("2")),
            PosError::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            map(500, &none),
            PosError::Unavailable {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(" 7 "), now),
            Some(Duration::from_secs(7))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(
            retry_after(&headers(&later), now),
            Some(Duration::from_secs(42))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(retry_after(&headers(&earlier), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
