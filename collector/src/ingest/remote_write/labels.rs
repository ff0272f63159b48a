//! Series labels of remote write 1.0 built by earlier requests, keyed by the raw bytes of
//! the series' label fields; and the reading of those fields (`label_fields`, `label_pairs`),
//! which the walk shares.
//!
//! A sender sends the same series in every request, with the same bytes; checking and
//! building its labels once instead of once per request is what [`WireLabelCache`] is
//! for. It keeps no copy of the bytes (a copy would cost ~270 bytes per series on
//! node-exporter-like data, more than the head's own memory per series): a hit is confirmed
//! by comparing the bytes, label by label, with the cached labels themselves, which is exact
//! because only labels equal to their wire labels (same names and values, same order,
//! none dropped) are cached. What is cached depends only on those bytes and the server's
//! label limits, so it never goes stale; the cache only bounds its size.

use std::hash::BuildHasher;

use didban_store::Labels;
use foldhash::fast::RandomState;
use parking_lot::{RwLock, RwLockReadGuard};
use std::collections::HashMap;

use crate::ingest::protowire::{expect, utf8, Malformed, Reader, Walk, LEN};

/// The fewest entries a [`WireLabelCache`] is allowed before it starts again from empty.
/// An entry costs ~40 bytes besides its labels, which the head shares while the series is
/// in it.
pub const MIN_ENTRIES: usize = 1 << 18;

/// Labels by a hash of their wire bytes (see the module documentation). The hash's seed is
/// random per process, so a sender cannot pick label sets that collide; a collision is
/// only a miss anyway (the later series takes the entry).
pub struct WireLabelCache {
    entries: RwLock<HashMap<u64, Labels>>,
    seed: RandomState,
    /// Entries held at most; past that the cache starts again from empty.
    max_entries: usize,
}

impl Default for WireLabelCache {
    fn default() -> Self {
        WireLabelCache::new(MIN_ENTRIES)
    }
}

impl WireLabelCache {
    /// A cache of at most `max_entries` entries ([`MIN_ENTRIES`] at least). Sized for one
    /// entry per series the head may hold (`limits.max_series`): a smaller bound than the
    /// series sent makes it start from empty again and again (measured at 1 M series with
    /// a bound of 262,144: every request missed), a larger one only keeps labels of series
    /// the head no longer has.
    pub fn new(max_entries: usize) -> WireLabelCache {
        WireLabelCache {
            entries: RwLock::default(),
            seed: RandomState::default(),
            max_entries: max_entries.max(MIN_ENTRIES),
        }
    }

    /// The labels cached for the label fields `raw`.
    pub fn get(&self, raw: &[u8]) -> Option<Labels> {
        self.reader().get(raw)
    }

    /// A reader holding the cache's read lock, for the lookups of one request: one lock
    /// acquisition per request instead of one per series (the lock's cache line moved
    /// between the cores at every series of a 2,000-series request otherwise). Inserting
    /// while a reader of the same thread is alive deadlocks: drop it first.
    pub fn reader(&self) -> WireLabelReader<'_> {
        WireLabelReader {
            entries: self.entries.read(),
            seed: &self.seed,
        }
    }

    /// Caches `labels` for `raw` when they are exactly its wire labels; otherwise (labels
    /// reordered, an empty value dropped) nothing is cached and the series is built again
    /// on each request.
    pub fn insert(&self, raw: &[u8], labels: &Labels) {
        if !wire_equals(raw, labels) {
            return;
        }
        let key = self.seed.hash_one(raw);
        let mut entries = self.entries.write();
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(key, labels.clone());
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Lookups in a [`WireLabelCache`] under one read lock (see [`WireLabelCache::reader`]).
pub struct WireLabelReader<'a> {
    entries: RwLockReadGuard<'a, HashMap<u64, Labels>>,
    seed: &'a RandomState,
}

impl WireLabelReader<'_> {
    /// The labels cached for the label fields `raw`.
    pub fn get(&self, raw: &[u8]) -> Option<Labels> {
        let key = self.seed.hash_one(raw);
        let labels = self.entries.get(&key)?;
        wire_equals(raw, labels).then(|| labels.clone())
    }
}

/// True when the label fields `raw` are `labels`, one field per label, in order.
fn wire_equals(raw: &[u8], labels: &Labels) -> bool {
    let mut r = Reader::new(raw);
    let mut expected = labels.iter();
    while !r.is_empty() {
        let Ok((1, LEN)) = r.key() else {
            return false;
        };
        let Ok(msg) = r.bytes() else {
            return false;
        };
        let Ok((name, value)) = label_fields(msg) else {
            return false;
        };
        let Some(label) = expected.next() else {
            return false;
        };
        if label.name.as_bytes() != name || label.value.as_bytes() != value {
            return false;
        }
    }
    expected.next().is_none()
}

/// The name and value bytes of one `prometheus.Label` message (a field given twice: the
/// last one, as prost does; a missing one: empty). Their UTF-8 is not checked here: bytes
/// equal to cached labels are valid, and [`label_pairs`] checks them on a miss.
pub(super) fn label_fields(msg: &[u8]) -> Walk<(&[u8], &[u8])> {
    let mut r = Reader::new(msg);
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                name = r.bytes()?;
            }
            2 => {
                expect(wire, LEN)?;
                value = r.bytes()?;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((name, value))
}

/// Each label (name, value) of a run of label fields, in order; `Err` when one is not
/// UTF-8 (prost refuses the request then).
pub(super) fn label_pairs(run: &[u8]) -> Walk<Vec<(&str, &str)>> {
    let mut r = Reader::new(run);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        if field != 1 {
            return Err(Malformed);
        }
        expect(wire, LEN)?;
        let (name, value) = label_fields(r.bytes()?)?;
        out.push((utf8(name)?, utf8(value)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use didban_store::Label;
    use prost::Message;

    use super::*;
    use crate::ingest::protowire::field;
    use crate::ingest::remote_write::WireLabel;

    fn raw(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in pairs {
            let label = WireLabel {
                name: name.to_string(),
                value: value.to_string(),
            };
            out.extend(field(1, LEN, &label.encode_to_vec()));
        }
        out
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()).unwrap()
    }

    #[test]
    fn labels_are_found_by_their_exact_wire_bytes_and_shared() {
        let cache = WireLabelCache::default();
        let up = [("__name__", "up"), ("job", "node")];
        let built = labels(&up);
        assert!(cache.get(&raw(&up)).is_none());
        cache.insert(&raw(&up), &built);
        let found = cache.get(&raw(&up)).expect("cached");
        assert_eq!(found, built);
        assert!(found.shares_allocation(&built), "the same allocation");
        // Another value, another label, one label fewer: misses.
        for other in [
            &[("__name__", "up"), ("job", "nodf")][..],
            &[("__name__", "up"), ("job", "node"), ("x", "1")][..],
            &[("__name__", "up")][..],
        ] {
            assert!(cache.get(&raw(other)).is_none(), "{other:?}");
        }
    }

    #[test]
    fn labels_unlike_their_wire_form_are_not_cached() {
        let cache = WireLabelCache::default();
        // Sent unsorted: the built labels are sorted, so the bytes do not spell them.
        let unsorted = [("job", "node"), ("__name__", "up")];
        cache.insert(&raw(&unsorted), &labels(&unsorted));
        // An empty value is dropped from the built labels.
        let empty = [("__name__", "up"), ("job", "")];
        cache.insert(&raw(&empty), &labels(&empty));
        assert!(cache.is_empty());
        assert!(cache.get(&raw(&unsorted)).is_none());
        assert!(cache.get(&raw(&empty)).is_none());
    }
}
