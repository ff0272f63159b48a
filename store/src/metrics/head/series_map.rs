//! The head's series, found by their labels (an append) or by their ref (WAL records,
//! rollbacks, postings).
//!
//! An append of a series already in the head is the hot path of ingest: it finds the
//! series by its labels in one probe of one table, whose entry is the series itself. (With
//! a labels → ref map and a ref → series map, profiles at 100k series showed the two
//! probes' cache misses as ~80 % of the head's append time.) Refs are found through a
//! second, small table of ref → labels, then the first.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use foldhash::HashMap;
use hashbrown::HashTable;

use super::series::MemSeries;
use crate::model::Labels;

/// The series of a head (or stripe) by labels and by ref.
///
/// Invariant: `by_labels` and `by_ref` hold the same series; `by_ref[r]` is the labels of
/// the series in `by_labels` whose `series_ref` is `r`.
#[derive(Debug, Default)]
pub(crate) struct SeriesMap {
    /// The series, hashed by their labels with `hasher` (seeded per process, so label
    /// values cannot be chosen to collide).
    by_labels: HashTable<MemSeries>,
    by_ref: HashMap<u64, Labels>,
    hasher: RandomState,
}

/// Bytes one series takes in the two tables' entries, without their slack.
pub(crate) const ENTRY_BYTES: usize = size_of::<MemSeries>() + size_of::<(u64, Labels)>();

impl SeriesMap {
    /// Number of series.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_labels.len()
    }

    /// The hash `labels` are found by (to look a series up more than once with one hash).
    pub(crate) fn hash(&self, labels: &Labels) -> u64 {
        self.hasher.hash_one(labels)
    }

    /// The series with labels `labels`, whose hash is `hash`.
    pub(crate) fn by_labels(&self, hash: u64, labels: &Labels) -> Option<&MemSeries> {
        self.by_labels.find(hash, |s| s.labels == *labels)
    }

    /// [`SeriesMap::by_labels`], to change the series.
    pub(crate) fn by_labels_mut(&mut self, hash: u64, labels: &Labels) -> Option<&mut MemSeries> {
        self.by_labels.find_mut(hash, |s| s.labels == *labels)
    }

    /// The series `series_ref`.
    pub(crate) fn by_ref(&self, series_ref: u64) -> Option<&MemSeries> {
        let labels = self.by_ref.get(&series_ref)?;
        self.by_labels(self.hash(labels), labels)
    }

    /// [`SeriesMap::by_ref`], to change the series.
    pub(crate) fn by_ref_mut(&mut self, series_ref: u64) -> Option<&mut MemSeries> {
        let labels = self.by_ref.get(&series_ref)?;
        let hash = self.hasher.hash_one(labels);
        self.by_labels.find_mut(hash, |s| s.labels == *labels)
    }

    /// True when a series has ref `series_ref`.
    pub(crate) fn contains_ref(&self, series_ref: u64) -> bool {
        self.by_ref.contains_key(&series_ref)
    }

    /// Adds `series`, whose labels and ref no series has (the caller looked them up).
    pub(crate) fn insert(&mut self, series: MemSeries) {
        debug_assert!(!self.by_ref.contains_key(&series.series_ref));
        let hash = self.hash(&series.labels);
        debug_assert!(self.by_labels(hash, &series.labels).is_none());
        self.by_ref.insert(series.series_ref, series.labels.clone());
        let hasher = &self.hasher;
        self.by_labels
            .insert_unique(hash, series, |s| hasher.hash_one(&s.labels));
    }

    /// Removes and returns the series `series_ref`.
    pub(crate) fn remove(&mut self, series_ref: u64) -> Option<MemSeries> {
        let labels = self.by_ref.remove(&series_ref)?;
        let hash = self.hash(&labels);
        let entry = self.by_labels.find_entry(hash, |s| s.labels == labels).ok()?;
        Some(entry.remove().0)
    }

    /// All series, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &MemSeries> + '_ {
        self.by_labels.iter()
    }
}
