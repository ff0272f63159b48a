//! The head's series, found by their labels (an append) or by their ref (WAL records,
//! rollbacks, postings).
//!
//! An append of a series already in the head is the hot path of ingest: it finds the
//! series by its labels in one probe of one table, whose entry is the series itself. (With
//! a labels → ref map and a ref → series map, profiles at 100k series showed the two
//! probes' cache misses as ~80 % of the head's append time.) Refs are found through a
//! second, small table of ref → labels, then the first.
//!
//! The table's entries are the labels and a box of the series, not the series inline: a
//! hash table is between 7/16 and 7/8 full, and at 1 M series in 64 stripes each stripe's
//! table was 48 % full — inline, the empty half cost ~170 bytes per series (~350 MB of
//! entries where 170 MB were used). The labels in the entry keep the lookup's comparison
//! out of the box, so an append touches the entry, the labels and the series, as before.

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
    by_labels: HashTable<Entry>,
    by_ref: HashMap<u64, Labels>,
    hasher: RandomState,
}

/// One series in the table by labels: its labels (a second handle on the series' own) and
/// the series.
#[derive(Debug)]
struct Entry {
    labels: Labels,
    series: Box<MemSeries>,
}

/// Bytes one series takes in the two tables' entries, without their slack.
pub(crate) const ENTRY_BYTES: usize = size_of::<Entry>() + size_of::<(u64, Labels)>();

/// Bytes of one series' box: the series rounded up to the allocator's 16-byte step.
pub(crate) const BOX_BYTES: usize = size_of::<MemSeries>().div_ceil(16) * 16;

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
        let entry = self.by_labels.find(hash, |e| e.labels == *labels)?;
        Some(&entry.series)
    }

    /// [`SeriesMap::by_labels`], to change the series.
    pub(crate) fn by_labels_mut(&mut self, hash: u64, labels: &Labels) -> Option<&mut MemSeries> {
        let entry = self.by_labels.find_mut(hash, |e| e.labels == *labels)?;
        Some(&mut entry.series)
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
        let entry = self.by_labels.find_mut(hash, |e| e.labels == *labels)?;
        Some(&mut entry.series)
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
        let entry = Entry {
            labels: series.labels.clone(),
            series: Box::new(series),
        };
        let hasher = &self.hasher;
        self.by_labels
            .insert_unique(hash, entry, |e| hasher.hash_one(&e.labels));
    }

    /// Removes and returns the series `series_ref`.
    pub(crate) fn remove(&mut self, series_ref: u64) -> Option<MemSeries> {
        let labels = self.by_ref.remove(&series_ref)?;
        let hash = self.hash(&labels);
        let entry = self.by_labels.find_entry(hash, |e| e.labels == labels).ok()?;
        Some(*entry.remove().0.series)
    }

    /// All series, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &MemSeries> + '_ {
        self.by_labels.iter().map(|e| &*e.series)
    }
}
