//! A postings index: label name → label value → sorted series ids.
//!
//! Both the head (ids are series refs) and each block (ids are the block's series ids) use it
//! to turn a selector's matchers into the list of series to read without scanning every
//! series' labels.
//!
//! A list keeps its ids as varint differences ([`IdList`]): series are added in id order,
//! so consecutive ids in a list are close (a head stripe's refs step by 64, a block's ids
//! by 1) and most take one byte instead of eight. Measured at 1 M series (heaptrack,
//! `docs/benchmarks.md`): the head's lists of `u64` took 86 MB, a third of it growth slack.

use std::collections::BTreeMap;

use foldhash::HashMap;

use crate::metrics::varint::{put_uvarint, Reader};
use crate::model::{LabelMatcher, Labels, MatchOp};

/// Label name → value → ids, plus the list of all ids. Ids must be added in increasing
/// order so every list stays sorted without re-sorting.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    by_name: HashMap<String, BTreeMap<String, IdList>>,
    all: IdList,
}

/// A sorted list of distinct ids as varint differences, each from the id before it (the
/// first from 0).
#[derive(Debug, Default, Clone)]
pub(crate) struct IdList {
    deltas: Vec<u8>,
    /// The largest id in the list (0 when empty).
    last: u64,
}

impl IdList {
    /// A list of `id` alone.
    fn of(id: u64) -> IdList {
        let mut list = IdList::default();
        list.add(id);
        list
    }

    /// Adds `id`. Ids come in increasing order (the contract of [`Postings::add`]), which
    /// appends one difference; an id at or below the last one is inserted in place by
    /// decoding the list, so a broken order costs time, never a wrong list.
    fn add(&mut self, id: u64) {
        if self.deltas.is_empty() || id > self.last {
            // `last` is 0 while the list is empty.
            put_uvarint(&mut self.deltas, id - self.last);
            self.last = id;
            return;
        }
        let mut ids = self.to_vec();
        if let Err(i) = ids.binary_search(&id) {
            ids.insert(i, id);
            *self = IdList::from_sorted(&ids);
        }
    }

    /// Removes `id` when present.
    fn remove(&mut self, id: u64) {
        let mut ids = self.to_vec();
        if let Ok(i) = ids.binary_search(&id) {
            ids.remove(i);
            *self = IdList::from_sorted(&ids);
        }
    }

    fn from_sorted(ids: &[u64]) -> IdList {
        let mut list = IdList::default();
        for &id in ids {
            list.add(id);
        }
        list
    }

    fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }

    /// Appends the ids to `out`, in order.
    fn decode_into(&self, out: &mut Vec<u64>) {
        let mut r = Reader {
            buf: &self.deltas,
            pos: 0,
        };
        let mut id = 0u64;
        while !r.at_end() {
            // Only `add` writes the bytes, so every varint is whole.
            let Ok(delta) = r.uvarint() else { return };
            id = id.wrapping_add(delta);
            out.push(id);
        }
    }

    fn to_vec(&self) -> Vec<u64> {
        let mut out = Vec::new();
        self.decode_into(&mut out);
        out
    }

    /// Bytes allocated for the differences.
    fn capacity(&self) -> usize {
        self.deltas.capacity()
    }

    fn shrink_to_fit(&mut self) {
        self.deltas.shrink_to_fit();
    }
}

impl Postings {
    /// Indexes series `id` (greater than every id added before) with `labels`; returns
    /// the heap bytes this took (see [`Postings::entry_bytes`]), which
    /// [`Postings::remove`] gives back for the same series.
    pub(crate) fn add(&mut self, id: u64, labels: &Labels) -> u64 {
        self.all.add(id);
        let mut bytes = ID_BYTES;
        for l in labels.iter() {
            // Look up before inserting: the common case (a name and value other series
            // have) allocates nothing.
            if !self.by_name.contains_key(l.name) {
                self.by_name.insert(l.name.to_string(), BTreeMap::new());
            }
            let Some(values) = self.by_name.get_mut(l.name) else {
                continue;
            };
            let new_value = match values.get_mut(l.value) {
                Some(ids) => {
                    ids.add(id);
                    false
                }
                None => {
                    values.insert(l.value.to_string(), IdList::of(id));
                    true
                }
            };
            bytes += Postings::entry_bytes(l.value, new_value);
        }
        bytes
    }

    /// Estimated heap bytes of one series' entry under `name` = `value`: its id in the
    /// list (with the list's growth slack), and for the first series with that value the
    /// value's copy, its tree node and the list. A new name is rare and not counted apart.
    fn entry_bytes(value: &str, new_value: bool) -> u64 {
        if new_value {
            ID_BYTES + BTREE_ENTRY_BYTES + heap_alloc(value.len()) + heap_alloc(FIRST_LIST_BYTES)
        } else {
            ID_BYTES
        }
    }

    /// Removes series `id` again (an undone append: a new series without samples, or one
    /// whose WAL record failed) and returns the bytes [`Postings::add`] counted for it.
    /// Lists are sorted and recent series are near their end, so the removal shifts
    /// little.
    pub(crate) fn remove(&mut self, id: u64, labels: &Labels) -> u64 {
        self.all.remove(id);
        let mut bytes = ID_BYTES;
        for l in labels.iter() {
            let mut drop_name = false;
            if let Some(values) = self.by_name.get_mut(l.name) {
                let mut drop_value = false;
                if let Some(ids) = values.get_mut(l.value) {
                    ids.remove(id);
                    drop_value = ids.is_empty();
                }
                if drop_value {
                    values.remove(l.value);
                }
                bytes += Postings::entry_bytes(l.value, drop_value);
                drop_name = values.is_empty();
            }
            if drop_name {
                self.by_name.remove(l.name);
            }
        }
        bytes
    }

    /// Gives back the spare capacity of every list (a list grows by doubling while a
    /// block's index is built; the index is read-only afterwards).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.all.shrink_to_fit();
        for values in self.by_name.values_mut() {
            for ids in values.values_mut() {
                ids.shrink_to_fit();
            }
        }
    }

    /// Estimated heap bytes of the index: the name map's table, every name and value
    /// string, the value trees' nodes and the id lists by capacity (the figure a block
    /// index is charged in the block index cache; checked against a counting allocator in
    /// `metrics::block::index`).
    pub(crate) fn heap_bytes(&self) -> u64 {
        let mut total = heap_alloc(self.all.capacity());
        let entry = std::mem::size_of::<(String, BTreeMap<String, IdList>)>() + 1;
        let buckets = (self.by_name.capacity() * 8 / 7).next_power_of_two().max(4);
        total += heap_alloc(buckets * entry);
        for (name, values) in &self.by_name {
            total += heap_alloc(name.capacity());
            for (value, ids) in values {
                total += BTREE_ENTRY_BYTES;
                total += heap_alloc(value.capacity());
                total += heap_alloc(ids.capacity());
            }
        }
        total
    }

    /// Number of series with label `name` = `value`.
    #[cfg(test)]
    pub(crate) fn count(&self, name: &str, value: &str) -> usize {
        match self.by_name.get(name).and_then(|values| values.get(value)) {
            Some(ids) => ids.to_vec().len(),
            None => 0,
        }
    }

    /// Sorted ids of the series that satisfy every matcher.
    ///
    /// Matchers that do not match the empty string narrow the candidates by intersection
    /// (Equal ones first, as they are cheapest); matchers that do match the empty string
    /// (`a=""`, `a!="x"`, `a=~".*"`) are satisfied by series lacking the label, so they
    /// subtract the series whose value they reject instead.
    pub(crate) fn select(&self, matchers: &[LabelMatcher]) -> Vec<u64> {
        let mut ordered: Vec<&LabelMatcher> = Vec::with_capacity(matchers.len());
        for m in matchers {
            if m.op == MatchOp::Equal && !m.matches_empty() {
                ordered.push(m);
            }
        }
        for m in matchers {
            if m.op != MatchOp::Equal || m.matches_empty() {
                ordered.push(m);
            }
        }

        let mut candidates: Option<Vec<u64>> = None;
        let mut exclusions: Vec<&LabelMatcher> = Vec::new();
        for m in ordered {
            if m.matches_empty() {
                exclusions.push(m);
                continue;
            }
            let matching = self.ids_where(&m.name, |v| m.matches(v));
            candidates = Some(match candidates {
                None => matching,
                Some(c) => intersect(&c, &matching),
            });
            if candidates.as_ref().is_some_and(|c| c.is_empty()) {
                return Vec::new();
            }
        }
        let mut result = match candidates {
            Some(c) => c,
            None => self.all.to_vec(),
        };
        for m in exclusions {
            let rejected = self.ids_where(&m.name, |v| !m.matches(v));
            if !rejected.is_empty() {
                result = subtract(&result, &rejected);
            }
        }
        result
    }

    /// Union of the id lists of label `name` over the values accepted by `keep`.
    fn ids_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Vec<u64> {
        let Some(values) = self.by_name.get(name) else {
            return Vec::new();
        };
        let mut lists: Vec<&IdList> = Vec::new();
        for (value, ids) in values {
            if keep(value) {
                lists.push(ids);
            }
        }
        let mut out: Vec<u64> = Vec::new();
        for ids in &lists {
            ids.decode_into(&mut out);
        }
        if lists.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

/// Bytes of a value tree per entry: a leaf node holds 11 (key, list) pairs of 56 bytes in
/// a ~630-byte node and is about 6/11 full when values arrive in order (a split leaves six
/// behind), plus the inner nodes' share.
const BTREE_ENTRY_BYTES: u64 = 110;
/// Bytes of one id in a list: its difference from the id before (one byte for ids a step
/// of 64 apart, as a head stripe's are, two up to 16,383 apart), with the slack of a list
/// that grows by doubling.
const ID_BYTES: u64 = 2;
/// Bytes a list of one id allocates (a `Vec<u8>`'s first allocation).
const FIRST_LIST_BYTES: usize = 8;

/// What an allocation of `n` bytes takes from the allocator: rounded up to 16 bytes (the
/// size classes of small allocations), nothing for an empty one.
pub(crate) fn heap_alloc(n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    n.next_multiple_of(16) as u64
}

/// Ids present in both sorted lists.
fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] {
            i += 1;
        } else if a[i] > b[j] {
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
            j += 1;
        }
    }
    out
}

/// Ids of sorted list `a` that are not in sorted list `b`.
fn subtract(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut j = 0;
    for &id in a {
        while j < b.len() && b[j] < id {
            j += 1;
        }
        if j < b.len() && b[j] == id {
            continue;
        }
        out.push(id);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn index() -> Postings {
        let mut p = Postings::default();
        p.add(
            1,
            &Labels::from_pairs([("__name__", "up"), ("job", "api"), ("env", "prod")]),
        );
        p.add(2, &Labels::from_pairs([("__name__", "up"), ("job", "web")]));
        p.add(3, &Labels::from_pairs([("__name__", "cpu"), ("job", "api")]));
        p
    }

    #[test]
    fn equal_matchers_intersect() {
        let p = index();
        let got = p.select(&[
            LabelMatcher::equal("__name__", "up"),
            LabelMatcher::equal("job", "api"),
        ]);
        assert_eq!(got, vec![1]);
        assert!(p.select(&[LabelMatcher::equal("job", "nope")]).is_empty());
    }

    #[test]
    fn matchers_that_match_empty_accept_missing_labels() {
        let p = index();
        assert_eq!(p.select(&[LabelMatcher::equal("env", "")]), vec![2, 3]);
        let ne = LabelMatcher::new(MatchOp::NotEqual, "env", "prod").unwrap();
        assert_eq!(p.select(&[ne]), vec![2, 3]);
        let re = LabelMatcher::new(MatchOp::RegexMatch, "job", "a.*|w.*").unwrap();
        assert_eq!(p.select(&[re]), vec![1, 2, 3]);
        let nre = LabelMatcher::new(MatchOp::RegexNoMatch, "job", "api").unwrap();
        assert_eq!(p.select(&[LabelMatcher::equal("__name__", "up"), nre]), vec![2]);
        let any = LabelMatcher::new(MatchOp::RegexMatch, "env", ".+").unwrap();
        assert_eq!(p.select(&[any]), vec![1]);
    }

    #[test]
    fn remove_undoes_add() {
        let mut p = index();
        let l = Labels::from_pairs([("__name__", "up"), ("job", "db")]);
        p.add(4, &l);
        assert_eq!(p.count("__name__", "up"), 3);
        p.remove(4, &l);
        assert_eq!(p.count("__name__", "up"), 2);
        assert!(p.select(&[LabelMatcher::equal("job", "db")]).is_empty());
    }

    /// An id list against a sorted set: ids in order (the common case), out of order,
    /// repeated, removed, and at both ends of the range.
    #[test]
    fn id_lists_keep_sorted_distinct_ids() {
        let mut rng = didban_testkit::rng::SeededRng::new(15);
        let mut list = IdList::default();
        let mut model = std::collections::BTreeSet::new();
        for id in [0, 64, 128, 1 << 40, u64::MAX - 1, u64::MAX] {
            list.add(id);
            model.insert(id);
        }
        for _ in 0..2000 {
            let id = match rng.below(4) {
                0 => rng.next_u64(),
                1 => rng.below(5000),
                _ => model.last().copied().unwrap_or(0).saturating_add(rng.below(200)),
            };
            if rng.below(5) == 0 {
                list.remove(id);
                model.remove(&id);
            } else {
                list.add(id);
                model.insert(id);
            }
            assert_eq!(list.to_vec(), model.iter().copied().collect::<Vec<_>>());
        }
        let mut steady = IdList::default();
        for i in 1..=1000 {
            steady.add(i * 64);
        }
        assert_eq!(steady.deltas.len(), 1000, "a step of 64 takes one byte");
    }
}
