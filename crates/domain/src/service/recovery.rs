//! Recovery of journaled vendor creates that no request accounted for (a crash, or a lost
//! answer the request could not reconcile).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::fields::{has, with_unreadable};
use super::lookup::{Match, PosLookup};
use super::{CustomerService, Pos, RecoveryReport};
use crate::error::CustomerError;
use crate::ports::{CustomerDirectory, OptionalField, PendingCreate, Store, StoreId};

/// What recovery did with one journaled create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryOutcome {
    Mirrored,
    NotFound,
    Dropped,
    Deferred,
}

/// Journaled creates claimed by one statement: a claim is held for as long as all of its
/// entries can take, so a small one lets another instance take up a dead one's entries sooner.
const CLAIM_BATCH: u32 = 10;

/// The stores one recovery pass has opened (`None`: deleted), by id.
type OpenedStores = HashMap<StoreId, Option<(Store, Arc<dyn CustomerDirectory>)>>;

impl CustomerService {
    /// One recovery pass over up to `limit` journaled vendor creates old enough that no
    /// request can still be working on them (`ServiceSettings::orphan_age`): a crash, or a
    /// lost answer the request could not reconcile, left them unaccounted for. Each is looked
    /// for by its e-mail, phone and licence, in the mirror and then at its store's POS.
    /// Found: written to the mirror and settled. Not at the vendor: counted, and dropped after
    /// `recovery_attempts` looks (the vendor never created it). Vendor unreachable: kept for
    /// a later pass. Nothing to look by, unreadable, or its store gone: dropped. Never creates
    /// anything at a vendor.
    ///
    /// Entries are claimed ten at a time, each claim held for as long as its
    /// entries can take (`ServiceSettings::recovery_lease` apiece): instances sharing the
    /// database never look for the same entry at once, and what a dead instance had claimed
    /// is taken up by another once its claim runs out. Fails only when the first claim does.
    pub async fn recover_pending(&self, limit: u32) -> Result<RecoveryReport, CustomerError> {
        let mut report = RecoveryReport::default();
        let mut opened = OpenedStores::new();
        let mut unreachable: HashSet<StoreId> = HashSet::new();
        let mut claimed: u32 = 0;
        while claimed < limit {
            let batch = (limit - claimed).min(CLAIM_BATCH);
            let lease = self.settings.recovery_lease.saturating_mul(batch);
            let entries = match self
                .pending
                .claim_orphans(self.settings.orphan_age, lease, batch)
                .await
            {
                Ok(entries) => entries,
                Err(e) if claimed == 0 => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "recovery: could not claim more journaled creates; the next pass will");
                    break;
                }
            };
            let got = u32::try_from(entries.len()).unwrap_or(batch);
            claimed = claimed.saturating_add(got);
            for entry in entries {
                let outcome = self
                    .recover_one(&entry, &mut opened, &mut unreachable)
                    .await;
                match outcome {
                    EntryOutcome::Mirrored => report.recovered += 1,
                    EntryOutcome::NotFound => report.not_found += 1,
                    EntryOutcome::Dropped => report.dropped += 1,
                    EntryOutcome::Deferred => report.deferred += 1,
                }
            }
            if got < batch {
                break;
            }
        }
        Ok(report)
    }

    async fn recover_one(
        &self,
        entry: &PendingCreate,
        opened: &mut OpenedStores,
        unreachable: &mut HashSet<StoreId>,
    ) -> EntryOutcome {
        let (store_id, pending) = (entry.store, entry.id);
        let customer = match &entry.customer {
            Ok(customer) => customer,
            Err(e) => {
                tracing::warn!(store = %store_id, %pending, error = %e, "recovery: dropped an unreadable journaled create");
                return self.drop_entry(entry).await;
            }
        };
        let keys = customer.duplicate_keys();
        if keys.is_empty() {
            tracing::warn!(store = %store_id, %pending, "recovery: dropped a journaled create with no e-mail, phone or licence to look it up by; a sync of the store would copy it if the vendor has it");
            return self.drop_entry(entry).await;
        }
        let (store, directory) = match opened.get(&store_id) {
            Some(Some((store, directory))) => (store.clone(), directory.clone()),
            Some(None) => return self.drop_entry(entry).await,
            None => match self.stores.store_by_id(store_id).await {
                Ok(Some(store)) => match self.connections.directory_for(&store) {
                    Ok(directory) => {
                        opened.insert(store_id, Some((store.clone(), directory.clone())));
                        (store, directory)
                    }
                    Err(e) => {
                        tracing::warn!(store = %store_id, %pending, error = %e, "recovery: cannot open the store's POS; kept");
                        unreachable.insert(store_id);
                        return self.postpone(entry).await;
                    }
                },
                Ok(None) => {
                    tracing::info!(store = %store_id, %pending, "recovery: dropped a journaled create of a store that no longer exists");
                    opened.insert(store_id, None);
                    return self.drop_entry(entry).await;
                }
                Err(e) => {
                    tracing::warn!(store = %store_id, %pending, error = %e, "recovery: cannot read the store; kept");
                    return EntryOutcome::Deferred;
                }
            },
        };
        let directory = match Pos::of(directory) {
            // The store is on the `local` POS now, whose storage is the mirror.
            Pos::Local(_) => return self.drop_entry(entry).await,
            Pos::Vendor(directory) => directory,
        };
        // By the journaled customer's own identity: someone sharing its phone (a household)
        // is not it, and settling on them would lose it.
        match self
            .mirrored_same(&store, directory.capabilities(), customer)
            .await
        {
            Ok(Some(_)) => {
                tracing::info!(store = %store.id, %pending, "recovery: the customer is in the mirror; settled");
                return self.settle_recovered(entry).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(store = %store.id, %pending, error = %e, "recovery: cannot read the mirror; kept");
                return EntryOutcome::Deferred;
            }
        }
        if unreachable.contains(&store.id) {
            return self.postpone(entry).await;
        }
        match self
            .look_up_at_pos(directory.as_ref(), customer, &keys, Match::Identity)
            .await
        {
            Ok(PosLookup::Found(found) | PosLookup::Mirrored(found)) => {
                // The look-up's copy lacks what the POS never gives back: the journaled
                // customer has what the kiosk gave.
                let caps = directory.capabilities();
                let found = with_unreadable(*found, customer, caps);
                let unknown: Vec<OptionalField> = caps
                    .unreadable_fields
                    .iter()
                    .copied()
                    .filter(|field| !has(customer, *field))
                    .collect();
                match self
                    .mirror
                    .upsert(store.id, std::slice::from_ref(&found), &unknown)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(store = %store.id, %pending, "recovery: found at the vendor and written to the mirror");
                        self.settle_recovered(entry).await
                    }
                    Err(e) => {
                        tracing::warn!(store = %store.id, %pending, error = %e, "recovery: found at the vendor but cannot write the mirror; kept");
                        EntryOutcome::Deferred
                    }
                }
            }
            Ok(PosLookup::Absent) => {
                let attempts = entry.attempts.saturating_add(1);
                if attempts >= self.settings.recovery_attempts {
                    tracing::info!(store = %store.id, %pending, attempts, "recovery: the vendor never created it; dropped");
                    return self.drop_entry(entry).await;
                }
                tracing::info!(store = %store.id, %pending, attempts, "recovery: not at the vendor yet; will look again");
                match self.pending.note_attempt(entry).await {
                    Ok(()) => EntryOutcome::NotFound,
                    Err(e) => {
                        tracing::warn!(store = %store.id, %pending, error = %e, "recovery: could not count an attempt");
                        EntryOutcome::Deferred
                    }
                }
            }
            Ok(PosLookup::Unsearchable) => {
                tracing::warn!(store = %store.id, %pending, "recovery: dropped a journaled create the POS cannot search for by any of its keys");
                self.drop_entry(entry).await
            }
            Err(e) => {
                if e.is_unreachable() {
                    unreachable.insert(store.id);
                }
                tracing::warn!(store = %store.id, %pending, error = %e, "recovery: could not ask the vendor; kept");
                self.postpone(entry).await
            }
        }
    }

    async fn drop_entry(&self, entry: &PendingCreate) -> EntryOutcome {
        match self.pending.settle(entry.id).await {
            Ok(()) => EntryOutcome::Dropped,
            Err(e) => {
                tracing::warn!(store = %entry.store, pending = %entry.id, error = %e, "recovery: could not drop a journaled create");
                EntryOutcome::Deferred
            }
        }
    }

    async fn settle_recovered(&self, entry: &PendingCreate) -> EntryOutcome {
        if let Err(e) = self.pending.settle(entry.id).await {
            // The customer is in the mirror: the next pass finds it there and settles.
            tracing::warn!(store = %entry.store, pending = %entry.id, error = %e, "recovery: could not settle a journaled create");
        }
        EntryOutcome::Mirrored
    }

    async fn postpone(&self, entry: &PendingCreate) -> EntryOutcome {
        if let Err(e) = self.pending.postpone(entry.id).await {
            tracing::warn!(store = %entry.store, pending = %entry.id, error = %e, "recovery: could not postpone a journaled create");
        }
        EntryOutcome::Deferred
    }
}
