//! Series labels of remote write 1.0 built by earlier requests, keyed by the raw bytes of
//! the series' label fields; and the reading of those fields (`label_pairs`) for the series
//! the cache does not hold.
//!
//! A sender sends the same series in every request, with the same bytes; checking and
//! building its labels once instead of once per request is what [`WireLabelCache`] is
//! for. It keeps no copy of the bytes (a copy would cost ~270 bytes per series on
//! node-exporter-like data, more than the head's own memory per series): a hit is confirmed
//! by comparing the bytes, label by label, with the cached labels themselves, which is exact
//! because only labels equal to their wire labels (same names and values, same order,
//! none dropped) are cached. What is cached depends only on those bytes and the server's
//! label limits, so it never goes stale; the cache only bounds its size.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use didban_store::{Labels, SeriesHint};
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use parking_lot::{RwLock, RwLockReadGuard};
use prost::encoding::{encode_varint, encoded_len_varint};

use crate::ingest::protowire::{expect, utf8, Malformed, Reader, Walk, LEN};

/// The fewest entries a [`WireLabelCache`] is allowed before it starts again from empty.
/// An entry costs ~25 bytes besides its labels (a 17-byte bucket at a table's load), which
/// the head shares while the series is in it.
pub const MIN_ENTRIES: usize = 1 << 18;

/// Labels by a hash of their wire bytes (see the module documentation). The hash's seed is
/// random per process, so a sender cannot pick label sets that collide; a collision is
/// only a miss anyway.
///
/// The table holds the labels alone, not the hash: a hit is confirmed against the wire
/// bytes, and when the table grows an entry's hash is computed again from the labels' wire
/// form ([`wire_bytes`]) — which is why only labels whose wire bytes are exactly that form
/// (what protobuf encoders write) are cached. At 1 M series that is 36 MB of buckets
/// instead of 52 MB for a map of hash → labels (heaptrack, `docs/benchmarks.md`).
///
/// Each entry also keeps where the head held the series at its last append (a
/// [`SeriesHint`], set after the append by [`WireLabelCache::set_hint`]): handed to the
/// head with the series, it skips the head's own lookup by labels, whose two probes missed
/// the CPU cache like this table's: +8 bytes a bucket, measured at 1 M series as +20 MiB
/// peak RSS (598–602 vs 572–581 MiB) for 15 % less ingest CPU (0.38–0.43 vs 0.47–0.50
/// CPU-s per 1 M samples; `docs/benchmarks.md`). (Splitting the table into 64, so that a
/// growing table never holds two copies of every entry, was tried: peak RSS 597 and 762
/// MiB in two runs, no gain.)
/// (Replacing a full table by an empty one instead of moving its entries was tried: the
/// labels built again after it were new allocations beside the head's, +130 MiB at 1 M.)
pub struct WireLabelCache {
    entries: RwLock<HashTable<Cached>>,
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

    /// The labels cached for the label fields `raw`, with the series' hint.
    pub fn get_series(&self, raw: &[u8]) -> Option<CachedSeries> {
        self.reader().get_series(raw)
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

    /// Caches `labels` for `raw` when `raw` is exactly their wire form ([`wire_bytes`]),
    /// with no hint yet, and returns the entry's key (for [`WireLabelCache::set_hint`]);
    /// otherwise (labels reordered, an empty value dropped, fields written differently)
    /// nothing is cached and the series is built again on each request.
    pub fn insert(&self, raw: &[u8], labels: &Labels) -> Option<u64> {
        let mut form = Vec::with_capacity(raw.len());
        wire_bytes(labels, &mut form);
        if form != raw {
            return None;
        }
        let key = self.seed.hash_one(raw);
        let mut entries = self.entries.write();
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        if let Ok(entry) = entries.find_entry(key, |cached| wire_equals(raw, &cached.labels)) {
            entry.remove();
        }
        let seed = &self.seed;
        let scratch = RefCell::new(form);
        let entry = Cached {
            labels: labels.clone(),
            hint: AtomicU32::new(SeriesHint::NONE.to_bits()),
        };
        entries.insert_unique(key, entry, |cached| {
            let mut form = scratch.borrow_mut();
            wire_bytes(&cached.labels, &mut form);
            seed.hash_one(form.as_slice())
        });
        Some(key)
    }

    /// Records `now` as the hint of the entry found for `key` (a [`CachedSeries::key`])
    /// whose hint was `was`, if it is still there. Another entry of the same key and hint
    /// (which would take equal 64-bit hashes and hints) would get it instead: harmless, as
    /// the head checks every hint.
    pub fn set_hint(&self, key: u64, was: SeriesHint, now: SeriesHint) {
        let entries = self.entries.read();
        let found = entries.find(key, |cached| cached.hint.load(Ordering::Relaxed) == was.to_bits());
        if let Some(cached) = found {
            cached.hint.store(now.to_bits(), Ordering::Relaxed);
        }
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
    entries: RwLockReadGuard<'a, HashTable<Cached>>,
    seed: &'a RandomState,
}

impl WireLabelReader<'_> {
    /// The labels cached for the label fields `raw`.
    pub fn get(&self, raw: &[u8]) -> Option<Labels> {
        Some(self.get_series(raw)?.labels)
    }

    /// The labels cached for the label fields `raw`, with the series' hint.
    pub fn get_series(&self, raw: &[u8]) -> Option<CachedSeries> {
        let key = self.seed.hash_one(raw);
        let cached = self
            .entries
            .find(key, |cached| wire_equals(raw, &cached.labels))?;
        Some(CachedSeries {
            labels: cached.labels.clone(),
            hint: SeriesHint::from_bits(cached.hint.load(Ordering::Relaxed)),
            key,
        })
    }
}

/// One entry: the labels and where the head last held their series.
struct Cached {
    labels: Labels,
    hint: AtomicU32,
}

/// What a lookup found: the labels, the series' hint, and the key to set a new hint with.
#[derive(Debug, Clone)]
pub struct CachedSeries {
    pub labels: Labels,
    pub hint: SeriesHint,
    pub key: u64,
}

/// Writes the label fields of `labels` as a protobuf encoder does (`prometheus.Label`
/// messages of a name and a value field, empty fields left out): the bytes a cached
/// entry's hash is computed from.
fn wire_bytes(labels: &Labels, out: &mut Vec<u8>) {
    out.clear();
    for label in labels.iter() {
        let (name, value) = (label.name.as_bytes(), label.value.as_bytes());
        let len = field_len(name) + field_len(value);
        out.push(0x0a);
        encode_varint(len as u64, out);
        put_field(out, 0x0a, name);
        put_field(out, 0x12, value);
    }
}

/// Bytes of a length-delimited field holding `bytes` (none when empty).
fn field_len(bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        return 0;
    }
    1 + encoded_len_varint(bytes.len() as u64) + bytes.len()
}

fn put_field(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    out.push(key);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// True when the label fields `raw` are exactly the wire form of `labels` ([`wire_bytes`]),
/// compared piece by piece as that form would be written, without writing it. Only labels
/// whose bytes are that form are cached, so this is exact: bytes that spell the same labels
/// another way (a field order or a varint an encoder would not write) do not match, and
/// are built again like any miss. (Parsing `raw` field by field instead, and the walk
/// checking every label message before the lookup, were ~8 % of remote-write ingest at 1 M
/// series; a hit needs neither, a miss is checked by [`label_pairs`].)
fn wire_equals(raw: &[u8], labels: &Labels) -> bool {
    let mut rest = raw;
    for label in labels.iter() {
        let (name, value) = (label.name.as_bytes(), label.value.as_bytes());
        let len = field_len(name) + field_len(value);
        if !(eat(&mut rest, &[0x0a])
            && eat_varint(&mut rest, len as u64)
            && eat_field(&mut rest, 0x0a, name)
            && eat_field(&mut rest, 0x12, value))
        {
            return false;
        }
    }
    rest.is_empty()
}

/// Takes `expected` off the front of `rest`; false (and `rest` unchanged) when it is not there.
fn eat(rest: &mut &[u8], expected: &[u8]) -> bool {
    match rest.strip_prefix(expected) {
        Some(after) => {
            *rest = after;
            true
        }
        None => false,
    }
}

/// Takes the varint encoding of `value` off the front of `rest` (see [`eat`]).
fn eat_varint(rest: &mut &[u8], value: u64) -> bool {
    // A u64 takes at most ten bytes.
    let mut encoded = [0u8; 10];
    let mut free: &mut [u8] = &mut encoded;
    encode_varint(value, &mut free);
    let n = 10 - free.len();
    eat(rest, encoded.get(..n).unwrap_or_default())
}

/// Takes the length-delimited field `key` holding `bytes` off the front of `rest`, as
/// [`put_field`] writes it (nothing when `bytes` is empty).
fn eat_field(rest: &mut &[u8], key: u8, bytes: &[u8]) -> bool {
    bytes.is_empty() || (eat(rest, &[key]) && eat_varint(rest, bytes.len() as u64) && eat(rest, bytes))
}

/// The name and value bytes of one `prometheus.Label` message (a field given twice: the
/// last one, as prost does; a missing one: empty). Their UTF-8 is not checked here: bytes
/// equal to cached labels are valid, and [`label_pairs`] checks them on a miss.
fn label_fields(msg: &[u8]) -> Walk<(&[u8], &[u8])> {
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
        let long = "x".repeat(300);
        let two_byte_lengths = [("__name__", "up"), ("path", long.as_str())];
        cache.insert(&raw(&two_byte_lengths), &labels(&two_byte_lengths));
        assert!(
            cache.get(&raw(&two_byte_lengths)).is_some(),
            "a 300-byte value is cached"
        );
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

    /// A hit needs the exact bytes an encoder writes: the same labels spelled another way
    /// (fields of a label swapped, a length in a longer varint, a label's empty value
    /// written out, a trailing byte) miss, and are built again.
    #[test]
    fn only_the_wire_form_itself_is_found() {
        let cache = WireLabelCache::default();
        let pairs = [("__name__", "up"), ("job", "node")];
        let canonical = raw(&pairs);
        cache.insert(&canonical, &labels(&pairs));
        assert!(cache.get(&canonical).is_some());
        let label = |inner: Vec<u8>| field(1, LEN, &inner);
        let name_up = {
            let mut l = field(1, LEN, b"__name__");
            l.extend(field(2, LEN, b"up"));
            label(l)
        };
        let mut swapped = name_up.clone();
        let mut job = field(2, LEN, b"node");
        job.extend(field(1, LEN, b"job"));
        swapped.extend(label(job));
        let mut long_varint = name_up.clone();
        let mut job = vec![0x0a, 0x83, 0x00];
        job.extend(b"job");
        job.extend(field(2, LEN, b"node"));
        long_varint.extend(label(job));
        let mut empty_written = canonical.clone();
        let mut empty = field(1, LEN, b"x");
        empty.extend([0x12, 0x00]);
        empty_written.extend(label(empty));
        let mut trailing = canonical.clone();
        trailing.push(0x0a);
        for (what, bytes) in [
            ("swapped fields", swapped),
            ("a long varint", long_varint),
            ("an empty value written out", empty_written),
            ("a trailing byte", trailing),
        ] {
            assert_ne!(bytes, canonical, "{what}");
            assert!(!wire_equals(&bytes, &labels(&pairs)), "{what}");
        }
        // Lengths of two and three varint bytes are compared as written.
        for n in [127usize, 128, 16_383, 16_384] {
            let long = "v".repeat(n);
            let pairs = [("__name__", "m"), ("big", long.as_str())];
            assert!(wire_equals(&raw(&pairs), &labels(&pairs)), "{n}");
            let shorter = "v".repeat(n - 1);
            let other = [("__name__", "m"), ("big", shorter.as_str())];
            assert!(!wire_equals(&raw(&other), &labels(&pairs)), "{n}");
        }
    }

    /// An entry starts with no hint; `set_hint` moves it from the hint it had to a new
    /// one, and leaves it alone when it no longer has the hint the caller saw.
    #[test]
    fn hints_are_kept_with_their_entry() {
        let cache = WireLabelCache::default();
        let pairs = [("__name__", "up"), ("job", "node")];
        let key = cache.insert(&raw(&pairs), &labels(&pairs)).expect("cached");
        let found = cache.get_series(&raw(&pairs)).unwrap();
        assert_eq!((found.key, found.hint), (key, SeriesHint::NONE));
        cache.set_hint(key, SeriesHint::NONE, SeriesHint::from_bits(42));
        assert_eq!(cache.get_series(&raw(&pairs)).unwrap().hint.to_bits(), 42);
        // Seen as NONE by a request that raced another: not this entry's hint any more.
        cache.set_hint(key, SeriesHint::NONE, SeriesHint::from_bits(7));
        assert_eq!(cache.get_series(&raw(&pairs)).unwrap().hint.to_bits(), 42);
        cache.set_hint(key, SeriesHint::from_bits(42), SeriesHint::from_bits(7));
        assert_eq!(cache.get_series(&raw(&pairs)).unwrap().hint.to_bits(), 7);
        // Labels not cached have no key.
        let unsorted = [("job", "node"), ("__name__", "up")];
        assert_eq!(cache.insert(&raw(&unsorted), &labels(&unsorted)), None);
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

    /// Growing moves the entries (their hash computed again from their wire form) and a
    /// full cache starts again from empty: what it finds is always the labels of those
    /// bytes, every series cached since it last started again is found, and it never holds
    /// more than its bound.
    #[test]
    fn a_growing_or_full_cache_only_forgets() {
        let bound = MIN_ENTRIES;
        let cache = WireLabelCache::new(bound);
        let pairs = |i: usize| [("__name__", "m".to_string()), ("i", i.to_string())];
        let mut since_reset = Vec::new();
        for i in 0..bound + 5_000 {
            let p = pairs(i);
            let p: Vec<(&str, &str)> = p.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let before = cache.len();
            cache.insert(&raw(&p), &labels(&p));
            if cache.len() <= before {
                since_reset.clear();
            }
            since_reset.push(i);
            assert!(cache.len() <= bound);
        }
        assert!(
            since_reset.len() > 1000,
            "the last reset left {} entries",
            since_reset.len()
        );
        for &i in &since_reset {
            let p = pairs(i);
            let p: Vec<(&str, &str)> = p.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(cache.get(&raw(&p)), Some(labels(&p)), "series {i}");
        }
        let mut found = 0;
        for i in 0..bound + 5_000 {
            let p = pairs(i);
            let p: Vec<(&str, &str)> = p.iter().map(|(n, v)| (*n, v.as_str())).collect();
            if let Some(got) = cache.get(&raw(&p)) {
                assert_eq!(got, labels(&p));
                found += 1;
            }
        }
        assert_eq!(found, cache.len());
    }
}
