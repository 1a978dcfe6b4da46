//! Paging as every vendor module needs it: cursors for page numbers and offsets (opaque to a
//! kiosk, refused when forged), "a short page is the last" for vendors that give no total,
//! and "skip an unusable record with a warning" so one bad record never hides a page.

use domain::{Customer, CustomerPage, FieldError, PageToken, PosError, ValidationErrors, Vendor};

/// A cursor a kiosk sent that we did not make: 422 on `cursor`, and no vendor call.
pub fn bad_cursor() -> PosError {
    PosError::Rejected(ValidationErrors::single("cursor", FieldError::Invalid))
}

/// A 1-based page of a vendor that pages by number, with the page size it was asked with, so
/// the next page is asked with the same size whatever `limit` the next request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCursor {
    pub page: u32,
    pub size: u32,
}

impl PageCursor {
    /// Where a listing starts (`token` absent) or goes on; the size is `limit` clamped to
    /// `1..=max_size` on the first page. A token not of our making is [`bad_cursor`].
    pub fn read(token: Option<&PageToken>, limit: u32, max_size: u32) -> Result<Self, PosError> {
        let Some(token) = token else {
            return Ok(Self {
                page: 1,
                size: limit.clamp(1, max_size.max(1)),
            });
        };
        // A bare page number is a cursor saved before sizes were kept (a sync's, say).
        let (page, size) = match token.0.split_once(':') {
            Some((page, size)) => (page, size.to_owned()),
            None => (
                token.0.as_str(),
                limit.clamp(1, max_size.max(1)).to_string(),
            ),
        };
        let page = page.parse::<u32>().ok().filter(|p| *p >= 1);
        let size = size
            .parse::<u32>()
            .ok()
            .filter(|s| (1..=max_size).contains(s));
        match (page, size) {
            (Some(page), Some(size)) => Ok(Self { page, size }),
            _ => Err(bad_cursor()),
        }
    }

    /// The cursor of the next page, unless this one was short (`records` < size), which vendors
    /// without a total mean as "the last". `records` counts what the vendor sent, usable or
    /// not: a skipped record must not make a full page look short.
    pub fn next(self, records: usize) -> Option<PageToken> {
        let full = u32::try_from(records).map_or(true, |n| n >= self.size);
        let page = self.page.checked_add(1)?;
        full.then(|| PageToken(format!("{page}:{}", self.size)))
    }
}

/// An offset into a result a vendor gave whole (a search answering every match): the kiosk's
/// page of it and the cursor of the next, with checked arithmetic (a forged offset can't
/// overflow).
pub fn offset_page(
    found: Vec<Customer>,
    token: Option<&PageToken>,
    limit: u32,
) -> Result<CustomerPage, PosError> {
    let offset = match token {
        None => 0,
        Some(token) => token.0.parse::<usize>().map_err(|_| bad_cursor())?,
    };
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    let end = offset.checked_add(limit).ok_or_else(bad_cursor)?;
    let next = (found.len() > end).then(|| PageToken(end.to_string()));
    let customers = found.into_iter().skip(offset).take(limit).collect();
    Ok(CustomerPage { customers, next })
}

/// The customers among a vendor's records, each read by `read`; a record that can't be one
/// (no id, no name) is skipped with a warning naming why, never the whole page.
pub fn usable<'a, R: 'a>(
    vendor: Vendor,
    records: impl IntoIterator<Item = &'a R>,
    read: impl Fn(&R) -> Result<Customer, String>,
) -> Vec<Customer> {
    records
        .into_iter()
        .filter_map(|record| match read(record) {
            Ok(customer) => Some(customer),
            Err(why) => {
                tracing::warn!(%vendor, %why, "skipped a customer record");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CustomerId, CustomerStatus, PersonName};

    fn customer(id: u32) -> Customer {
        Customer {
            customer_id: CustomerId::parse(&id.to_string()).unwrap(),
            status: CustomerStatus::active(),
            first_name: PersonName::parse("A").unwrap(),
            last_name: PersonName::parse("B").unwrap(),
            gender: None,
            birthday: None,
            email: None,
            phone: None,
            drivers_license: None,
            notes: None,
        }
    }

    #[test]
    fn page_cursors_go_on_until_a_short_page_and_refuse_forgeries() {
        let first = PageCursor::read(None, 500, 100).unwrap();
        assert_eq!(first, PageCursor { page: 1, size: 100 });
        let next = first.next(100).unwrap();
        assert_eq!(next, PageToken("2:100".into()));
        let second = PageCursor::read(Some(&next), 7, 100).unwrap();
        assert_eq!(second, PageCursor { page: 2, size: 100 });
        assert_eq!(second.next(99), None);
        assert_eq!(
            PageCursor::read(Some(&PageToken("3".into())), 20, 100),
            Ok(PageCursor { page: 3, size: 20 }),
            "a bare page number, as older syncs saved them"
        );
        for forged in ["", "0", "0:10", "2:0", "2:101", "x:1", "4294967296:1", "2:"] {
            assert_eq!(
                PageCursor::read(Some(&PageToken(forged.into())), 10, 100),
                Err(bad_cursor()),
                "{forged}"
            );
        }
        let last = PageCursor {
            page: u32::MAX,
            size: 1,
        };
        assert_eq!(last.next(1), None, "no page after the last number");
    }

    #[test]
    fn offsets_page_through_a_whole_result_and_never_overflow() {
        let found: Vec<Customer> = (1..=5).map(customer).collect();
        let page = offset_page(found.clone(), None, 2).unwrap();
        assert_eq!(page.customers.len(), 2);
        assert_eq!(page.next, Some(PageToken("2".into())));
        let last = offset_page(found.clone(), Some(&PageToken("4".into())), 2).unwrap();
        assert_eq!(last.customers, vec![customer(5)]);
        assert_eq!(last.next, None);
        let huge = PageToken(usize::MAX.to_string());
        assert_eq!(offset_page(found, Some(&huge), 2), Err(bad_cursor()));
    }

    #[test]
    fn unusable_records_are_skipped() {
        let records = [Ok(1), Err("no name"), Ok(3)];
        let read = |r: &Result<u32, &str>| r.map(customer).map_err(str::to_owned);
        let customers = usable(Vendor::Treez, &records, read);
        assert_eq!(customers, vec![customer(1), customer(3)]);
    }
}
