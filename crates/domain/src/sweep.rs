//! Customers gone at the POS. A full `pos-gateway sync` pass (from the first page to the last,
//! possibly stopped and resumed) sees every customer the POS still has; every write of a
//! customer into the mirror stamps it seen. Once the pass has read its last page, the
//! customers of the store's mirror that no write has touched since the pass started are
//! looked at a batch at a time ([`crate::CustomerService::sweep_unseen`]): the POS is asked
//! for each by id where it can be (a listing can skip a customer whose page moved during the
//! pass), and those it no longer has are tombstoned: no mirror answer serves them again, until
//! a POS answer writes them again (which revives them). A pass that never reached its last
//! page sweeps nothing.

use crate::query::PageToken;

/// What one step of the sweep after a full sync pass did, and where the next starts (`None`:
/// done).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepStep {
    /// Unseen customers looked at.
    pub examined: usize,
    /// Of those, tombstoned: the POS no longer has them.
    pub removed: usize,
    pub next: Option<PageToken>,
}
