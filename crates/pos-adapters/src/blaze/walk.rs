//! Where a walk of BLAZE's member list is, as a cursor that survives a restart.
//!
//! BLAZE lists members only by `modified` time, in windows of at most seven days
//! (`members?startDate=&endDate=&skip=&limit=`, epoch ms; a wider window is refused with 400
//! "Date range cannot exceed 7 days"), paged by `skip` up to the window's `total`. A walk
//! covers `[floor, anchor)`, the half-open span of `modified` from its floor (the store's
//! `list_from`, or an incremental sync's "since") to its anchor (when the walk began, plus
//! [`CLOCK_ALLOWANCE_MS`]), in windows of [`WINDOW_MS`], NEWEST FIRST: the first page of a kiosk's
//! unfiltered list is the members changed lately, after one call, rather than years of empty
//! windows; a sync walks the same windows to the floor.
//!
//! The cursor is `{floor}.{end}.{skip}`: the current window is `[max(end - WINDOW_MS, floor),
//! end)`, and `skip` members of it have been read. A window's answer may also hold members
//! modified exactly at its `end` (if BLAZE counts `endDate` in): they belong to the newer
//! window, which listed them, and are dropped here, so every member comes once.

use domain::{PageToken, PosError};

use crate::paging::bad_cursor;

/// BLAZE's widest window: seven days (vendors.md, spec example; exactly seven is allowed).
pub const WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// How far past our own clock the first window reaches, so a member BLAZE stamped a little
/// ahead of us (clock skew) is still in a walk that begins now. Unverified (chosen): BLAZE
/// accepting an `endDate` a few minutes in the future.
pub const CLOCK_ALLOWANCE_MS: i64 = 5 * 60 * 1000;

/// A cursor's `end` further ahead of our clock than this was not made by us.
const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;

/// A cursor's `skip` beyond this was not made by us (no window holds a billion members).
const MAX_SKIP: u64 = 1_000_000_000;

/// One point of a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The oldest `modified` the walk covers (inclusive), epoch ms.
    pub floor: i64,
    /// The current window's end (exclusive), epoch ms.
    pub end: i64,
    /// Members of the current window already read.
    pub skip: u64,
}

impl Walk {
    /// A walk of everything modified from `floor` (at most `now`) until `now` and the clock
    /// allowance.
    pub fn since(floor: i64, now: i64) -> Self {
        let now = now.max(0);
        Self {
            floor: floor.clamp(0, now),
            end: now.saturating_add(CLOCK_ALLOWANCE_MS),
            skip: 0,
        }
    }

    /// Where a listing starts (`token` absent: a new walk down to `floor`) or goes on. A token
    /// not of our making is [`bad_cursor`], before any call.
    pub fn read(token: Option<&PageToken>, floor: i64, now: i64) -> Result<Self, PosError> {
        let Some(token) = token else {
            return Ok(Self::since(floor, now));
        };
        let mut parts = token.0.split('.');
        let (Some(floor), Some(end), Some(skip), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad_cursor());
        };
        let number = |text: &str| {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<i64>().ok())
                .flatten()
        };
        let (Some(floor), Some(end), Some(skip)) = (number(floor), number(end), number(skip))
        else {
            return Err(bad_cursor());
        };
        let skip = u64::try_from(skip).map_err(|_| bad_cursor())?;
        let plausible = end > floor
            && end <= now.saturating_add(CLOCK_ALLOWANCE_MS + MAX_FUTURE_MS)
            && skip <= MAX_SKIP;
        if !plausible {
            return Err(bad_cursor());
        }
        Ok(Self { floor, end, skip })
    }

    /// The cursor of this point.
    pub fn token(&self) -> PageToken {
        PageToken(format!("{}.{}.{}", self.floor, self.end, self.skip))
    }

    /// The current window's `startDate` (inclusive) and end (exclusive).
    pub fn window(&self) -> (i64, i64) {
        (self.end.saturating_sub(WINDOW_MS).max(self.floor), self.end)
    }

    /// Whether a member modified at `modified` belongs to the current window; a member
    /// without a readable `modified` is taken as BLAZE put it.
    pub fn holds(&self, modified: Option<i64>) -> bool {
        let (start, end) = self.window();
        modified.is_none_or(|m| start <= m && m < end)
    }

    /// The next (older) window, or `None` when this one reached the floor.
    pub fn older(&self) -> Option<Self> {
        let (start, _) = self.window();
        (start > self.floor).then_some(Self {
            floor: self.floor,
            end: start,
            skip: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_796_169_600_000; // 2026-12-01

    #[test]
    fn a_walk_goes_from_now_back_to_the_floor_in_windows_of_seven_days() {
        let floor = NOW - 3 * WINDOW_MS - 1000;
        let walk = Walk::read(None, floor, NOW).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(walk.end, NOW + CLOCK_ALLOWANCE_MS);
        let mut windows = vec![walk.window()];
        let mut at = walk;
        while let Some(older) = at.older() {
            windows.push(older.window());
            at = older;
        }
        assert_eq!(windows.len(), 4);
        for pair in windows.windows(2) {
            assert_eq!(
                pair[1].1, pair[0].0,
                "windows meet without a gap or overlap"
            );
        }
        for (start, end) in &windows {
            assert!(end - start <= WINDOW_MS && end > start);
        }
        assert_eq!(windows.last().map(|w| w.0), Some(floor));
    }

    #[test]
    fn a_cursor_survives_as_text_and_forgeries_are_refused() {
        let walk = Walk {
            floor: 1_388_534_400_000,
            end: NOW,
            skip: 200,
        };
        let token = walk.token();
        assert_eq!(Walk::read(Some(&token), 0, NOW), Ok(walk));
        for forged in [
            "",
            "-1",
            "forged!!",
            "99999999999999999999999",
            "1.2",
            "1.2.3.4",
            "5.5.0",
            "6.5.0",
            "+1.5.0",
            "1.99999999999999999.0",
            "0.5.99999999999",
            "0. 5.0",
        ] {
            assert_eq!(
                Walk::read(Some(&PageToken(forged.into())), 0, NOW),
                Err(bad_cursor()),
                "{forged:?}"
            );
        }
    }

    #[test]
    fn members_on_a_boundary_belong_to_the_newer_window() {
        let walk = Walk::since(0, NOW);
        let (start, end) = walk.window();
        assert!(walk.holds(Some(start)));
        assert!(!walk.holds(Some(end)));
        assert!(!walk.holds(Some(start - 1)));
        assert!(walk.holds(None));
        let older = walk.older().unwrap_or(walk);
        assert!(older.holds(Some(start - 1)));
        assert!(!older.holds(Some(start)));
    }

    proptest! {
        /// Every instant of `[floor, anchor)` is in exactly one window of the walk.
        #[test]
        fn every_instant_is_in_exactly_one_window(
            floor in 0i64..NOW,
            back in 0i64..(10 * WINDOW_MS),
        ) {
            let walk = Walk::since(floor, NOW);
            let instant = (walk.end - 1 - back).max(floor);
            let mut at = Some(walk);
            let mut holding = 0;
            let mut windows = 0;
            while let Some(w) = at {
                windows += 1;
                if w.holds(Some(instant)) {
                    holding += 1;
                }
                at = w.older();
                prop_assert!(windows < 10_000);
            }
            prop_assert_eq!(holding, 1);
        }

        #[test]
        fn any_text_reads_as_a_plausible_walk_or_a_bad_cursor(text in ".{0,40}|[0-9.]{0,40}") {
            if let Ok(walk) = Walk::read(Some(&PageToken(text)), 0, NOW) {
                prop_assert!(walk.end > walk.floor);
                let (start, end) = walk.window();
                prop_assert!(start < end && end - start <= WINDOW_MS);
                prop_assert_eq!(Walk::read(Some(&walk.token()), 0, NOW), Ok(walk));
            }
        }
    }
}
