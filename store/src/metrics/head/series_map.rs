//! The head's series, found by their labels (an append) or by their ref (WAL records,
//! rollbacks, postings).
//!
//! An append of a series already in the head is the hot path of ingest: it finds the
//! series by its labels in one probe of one table, whose entry leads to the series itself.
//! (With a labels → ref map and a ref → series map, profiles at 100k series showed the two
//! probes' cache misses as ~80 % of the head's append time.)
//!
//! The series live in a slab of fixed-size pages, and both tables hold only a 4-byte slot
//! number: a hash table is between 7/16 and 7/8 full, so whatever its entries hold is paid
//! for about twice. Measured at 1 M series (heaptrack, `docs/benchmarks.md`): with a table
//! of labels and a boxed series (24-byte entries) plus a ref → labels table (24 bytes), the
//! two tables took 105 MB and the boxes 184 MB; the slab and two slot tables take ~150 MB.
//! An append still touches the table, the series (its labels handle is in the slot) and
//! the labels' text, as before. Pages are never reallocated, so growing the slab never
//! holds the old and new copy of every series at once (which a doubling `Vec` would, at
//! the moment the head is largest).

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::series::MemSeries;
use crate::model::Labels;

/// Bytes of a slab page: 40 KiB is one of mimalloc's size classes (four per power of two
/// at this size), so a page fills its allocation; 256 slots of 144 bytes (36 KiB) were
/// rounded up to it, 11 % of the slab unused (16 MB at 1 M series, `docs/benchmarks.md`).
/// Small enough that a stripe's last, partly used page costs little (64 stripes × half a
/// page ≈ 1.3 MB), large enough that the page list stays short.
const PAGE_BYTES: usize = 40 * 1024;

/// Slots per slab page (284 of 144 bytes).
const PAGE_SLOTS: usize = PAGE_BYTES / std::mem::size_of::<Option<MemSeries>>();

/// The series of a head (or stripe) by labels and by ref.
///
/// Invariant: every occupied slot is in both tables once (in `by_labels` under the hash of
/// its labels, in `by_ref` under the hash of its ref), no free slot is in either, and
/// `free` lists exactly the free slots below `next_slot`.
#[derive(Debug, Default)]
pub(crate) struct SeriesMap {
    /// The series, in pages of [`PAGE_SLOTS`] slots; slot `n` is `pages[n / PAGE_SLOTS]
    /// [n % PAGE_SLOTS]`.
    pages: Vec<Vec<Option<MemSeries>>>,
    /// Slots freed by removals, taken again before new ones.
    free: Vec<u32>,
    /// Slots ever used (the next new slot's number).
    next_slot: u32,
    /// Slot numbers, hashed by their series' labels with `hasher` (seeded per process, so
    /// label values cannot be chosen to collide).
    by_labels: HashTable<u32>,
    /// Slot numbers, hashed by their series' ref.
    by_ref: HashTable<u32>,
    hasher: RandomState,
}

/// Bytes of one series' slot in the slab (its labels' text and samples are elsewhere).
pub(crate) const SLOT_BYTES: usize = size_of::<Option<MemSeries>>();
/// Bytes of one series' entry in one of the two tables, control byte included.
pub(crate) const TABLE_ENTRY_BYTES: usize = size_of::<u32>() + 1;

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

    fn slot(&self, slot: u32) -> Option<&MemSeries> {
        series_in(&self.pages, slot)
    }

    /// The series in slot `slot`, to change it.
    pub(crate) fn slot_mut(&mut self, slot: u32) -> Option<&mut MemSeries> {
        let n = slot as usize;
        self.pages
            .get_mut(n / PAGE_SLOTS)?
            .get_mut(n % PAGE_SLOTS)?
            .as_mut()
    }

    /// The slot of the series with labels `labels`, whose hash is `hash` (see
    /// [`SeriesMap::hash`]).
    pub(crate) fn slot_of_labels(&self, hash: u64, labels: &Labels) -> Option<u32> {
        let found = self
            .by_labels
            .find(hash, |&slot| self.slot(slot).is_some_and(|s| s.labels == *labels))?;
        Some(*found)
    }

    /// The slot of the series with labels `labels`, when that is `slot` (a hint given back
    /// by the caller, see [`crate::SeriesHint`]): the labels are compared as labels are,
    /// the same allocation (the labels the series was appended with) first, so a slot
    /// since taken by another series, or freed, is never mistaken for it.
    pub(crate) fn confirm_slot(&self, slot: u32, labels: &Labels) -> Option<u32> {
        let series = self.slot(slot)?;
        (series.labels == *labels).then_some(slot)
    }

    /// The slot of the series `series_ref`.
    fn slot_of_ref(&self, series_ref: u64) -> Option<u32> {
        let hash = self.hasher.hash_one(series_ref);
        let found = self.by_ref.find(hash, |&slot| {
            self.slot(slot).is_some_and(|s| s.series_ref == series_ref)
        })?;
        Some(*found)
    }

    /// The series with labels `labels`, whose hash is `hash`.
    pub(crate) fn by_labels(&self, hash: u64, labels: &Labels) -> Option<&MemSeries> {
        self.slot(self.slot_of_labels(hash, labels)?)
    }

    /// The series `series_ref`.
    pub(crate) fn by_ref(&self, series_ref: u64) -> Option<&MemSeries> {
        self.slot(self.slot_of_ref(series_ref)?)
    }

    /// [`SeriesMap::by_ref`], to change the series.
    pub(crate) fn by_ref_mut(&mut self, series_ref: u64) -> Option<&mut MemSeries> {
        let slot = self.slot_of_ref(series_ref)?;
        self.slot_mut(slot)
    }

    /// True when a series has ref `series_ref`.
    pub(crate) fn contains_ref(&self, series_ref: u64) -> bool {
        self.slot_of_ref(series_ref).is_some()
    }

    /// Adds `series`, whose labels and ref no series has (the caller looked them up).
    pub(crate) fn insert(&mut self, series: MemSeries) {
        let label_hash = self.hash(&series.labels);
        let ref_hash = self.hasher.hash_one(series.series_ref);
        debug_assert!(self.slot_of_labels(label_hash, &series.labels).is_none());
        debug_assert!(self.slot_of_ref(series.series_ref).is_none());
        let slot = self.take_slot(series);
        // The tables are changed while the pages are read: borrow the fields apart.
        let (pages, hasher) = (&self.pages, &self.hasher);
        let series_at = |slot: u32| series_in(pages, slot);
        // The rehash closures only run when a table grows; every slot in a table is
        // occupied (the invariant), so the fallback hash 0 is never used.
        self.by_labels.insert_unique(label_hash, slot, |&s| {
            series_at(s).map_or(0, |m| hasher.hash_one(&m.labels))
        });
        self.by_ref.insert_unique(ref_hash, slot, |&s| {
            series_at(s).map_or(0, |m| hasher.hash_one(m.series_ref))
        });
    }

    /// Puts `series` in a free slot, or a new one, and returns its number.
    fn take_slot(&mut self, series: MemSeries) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = self.next_slot;
                self.next_slot += 1;
                slot
            }
        };
        let n = slot as usize;
        if n / PAGE_SLOTS == self.pages.len() {
            let mut page = Vec::with_capacity(PAGE_SLOTS);
            page.resize_with(PAGE_SLOTS, || None);
            self.pages.push(page);
        }
        let cell = self
            .pages
            .get_mut(n / PAGE_SLOTS)
            .and_then(|page| page.get_mut(n % PAGE_SLOTS));
        debug_assert!(cell.as_ref().is_some_and(|c| c.is_none()), "slot {slot} taken");
        if let Some(cell) = cell {
            *cell = Some(series);
        }
        slot
    }

    /// Removes and returns the series `series_ref`.
    pub(crate) fn remove(&mut self, series_ref: u64) -> Option<MemSeries> {
        let slot = self.slot_of_ref(series_ref)?;
        let series = self.slot(slot)?;
        let label_hash = self.hasher.hash_one(&series.labels);
        let ref_hash = self.hasher.hash_one(series_ref);
        if let Ok(entry) = self.by_labels.find_entry(label_hash, |&s| s == slot) {
            entry.remove();
        }
        if let Ok(entry) = self.by_ref.find_entry(ref_hash, |&s| s == slot) {
            entry.remove();
        }
        let n = slot as usize;
        let taken = self
            .pages
            .get_mut(n / PAGE_SLOTS)?
            .get_mut(n % PAGE_SLOTS)?
            .take();
        self.free.push(slot);
        taken
    }

    /// All series, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &MemSeries> + '_ {
        self.pages.iter().flatten().flatten()
    }
}

/// The series in slot `slot` of `pages`.
fn series_in(pages: &[Vec<Option<MemSeries>>], slot: u32) -> Option<&MemSeries> {
    let n = slot as usize;
    pages.get(n / PAGE_SLOTS)?.get(n % PAGE_SLOTS)?.as_ref()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn series(series_ref: u64, i: usize) -> MemSeries {
        let labels = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
        MemSeries::new(series_ref, labels, None, false)
    }

    /// Series are found by labels and by ref across pages, after removals free slots in
    /// the middle and new series take them again.
    #[test]
    fn finds_series_by_labels_and_ref_through_removals_and_reuse() {
        let mut map = SeriesMap::default();
        let n = PAGE_SLOTS * 3 + 7;
        for i in 0..n {
            map.insert(series(1000 + i as u64 * 64, i));
        }
        assert_eq!(map.len(), n);
        for i in (0..n).step_by(3) {
            let removed = map.remove(1000 + i as u64 * 64).unwrap();
            assert_eq!(removed.labels, series(0, i).labels);
        }
        assert!(map.remove(1000).is_none(), "removed twice");
        for i in 0..n / 3 {
            map.insert(series(9_000_000 + i as u64, n + i));
        }
        assert_eq!(map.next_slot as usize, n, "freed slots are taken again first");
        for i in 0..n {
            let want = i % 3 != 0;
            let labels = series(0, i).labels;
            let by_labels = map.by_labels(map.hash(&labels), &labels).map(|s| s.series_ref);
            assert_eq!(by_labels.is_some(), want, "series {i} by labels");
            let series_ref = 1000 + i as u64 * 64;
            assert_eq!(map.contains_ref(series_ref), want, "series {i} by ref");
            if want {
                assert_eq!(by_labels, Some(series_ref));
                assert_eq!(map.by_ref(series_ref).unwrap().labels, labels);
            }
        }
        for i in 0..n / 3 {
            let s = map.by_ref_mut(9_000_000 + i as u64).unwrap();
            assert_eq!(s.labels, series(0, n + i).labels);
        }
        assert_eq!(map.iter().count(), map.len());
    }
}
