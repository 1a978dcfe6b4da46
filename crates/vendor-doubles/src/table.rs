//! The customers a double holds, in the order they were created, found by id or by an index.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::Wire;

/// A vendor's customers: records in creation order, by id, and by the vendor's index keys
/// ([`Wire::index_keys`]), so searches stay fast when a benchmark has created tens of
/// thousands of them.
#[derive(Default)]
pub struct Table {
    next: u64,
    records: BTreeMap<u64, Map<String, Value>>,
    by_id: HashMap<String, u64>,
    index: HashMap<String, BTreeSet<u64>>,
}

impl Table {
    /// Stores `record` under the next id (`W::id`), set in its `W::ID_FIELD`; the stored
    /// record.
    pub fn insert<W: Wire>(&mut self, mut record: Map<String, Value>) -> Map<String, Value> {
        self.next += 1;
        let seq = self.next;
        let id = W::id(seq);
        self.by_id.insert(key_of(&id), seq);
        record.insert(W::ID_FIELD.to_owned(), id);
        for key in W::index_keys(&record) {
            self.index.entry(key).or_default().insert(seq);
        }
        self.records.insert(seq, record.clone());
        record
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Option<&Map<String, Value>> {
        self.records.get(self.by_id.get(id.trim())?)
    }

    /// Changes the record with this id with `change`, keeping the index right; the record
    /// after the change.
    pub fn update<W: Wire>(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Option<Map<String, Value>> {
        let seq = *self.by_id.get(id.trim())?;
        let record = self.records.get_mut(&seq)?;
        for key in W::index_keys(record) {
            if let Some(seqs) = self.index.get_mut(&key) {
                seqs.remove(&seq);
            }
        }
        change(record);
        for key in W::index_keys(record) {
            self.index.entry(key).or_default().insert(seq);
        }
        Some(record.clone())
    }

    /// Forgets the record with this id; whether there was one.
    pub fn remove<W: Wire>(&mut self, id: &str) -> bool {
        let Some(seq) = self.by_id.remove(id.trim()) else {
            return false;
        };
        if let Some(record) = self.records.remove(&seq) {
            for key in W::index_keys(&record) {
                if let Some(seqs) = self.index.get_mut(&key) {
                    seqs.remove(&seq);
                }
            }
        }
        true
    }

    /// The records indexed under `key`, oldest first.
    pub fn indexed(&self, key: &str) -> Vec<&Map<String, Value>> {
        self.index
            .get(key)
            .map(|seqs| seqs.iter().filter_map(|s| self.records.get(s)).collect())
            .unwrap_or_default()
    }

    /// Every record, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.records.values()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// An id as the key it is found by: a string as is, a number as its digits.
fn key_of(id: &Value) -> String {
    match id {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
