//! What was built for a series once per request scope: an OTLP request usually carries
//! several points of one series, and building labels (sanitising names, stringifying
//! values, sorting, checking limits) was most of the mapping's cost.
//!
//! A point's attributes are the key, either decoded (`&[KeyValue]`, from the generated
//! protobuf types) or as their raw protobuf bytes (from the borrowing decoder in
//! [`super::otlp_wire`]); the same attribute list always has the same bytes in one request
//! in practice, and two encodings of one list are only two entries with the same labels.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;

use foldhash::HashMap;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// A point's attributes as the cache sees them.
#[derive(Clone, Copy)]
pub enum Attrs<'a> {
    /// Decoded by prost.
    Decoded(&'a [KeyValue]),
    /// The raw bytes of the point's attribute fields (tags included), as they were sent.
    Raw(&'a [u8]),
}

enum OwnedAttrs {
    Decoded(Vec<KeyValue>),
    Raw(Vec<u8>),
}

impl OwnedAttrs {
    fn equals(&self, other: Attrs<'_>) -> bool {
        match (self, other) {
            (OwnedAttrs::Decoded(a), Attrs::Decoded(b)) => a.as_slice() == b,
            (OwnedAttrs::Raw(a), Attrs::Raw(b)) => a.as_slice() == b,
            _ => false,
        }
    }
}

impl Attrs<'_> {
    fn to_owned(self) -> OwnedAttrs {
        match self {
            Attrs::Decoded(a) => OwnedAttrs::Decoded(a.to_vec()),
            Attrs::Raw(b) => OwnedAttrs::Raw(b.to_vec()),
        }
    }
}

/// One built entry, with the name and attributes it was built from.
struct Cached<V> {
    name: String,
    attributes: OwnedAttrs,
    value: V,
}

/// Values keyed by a hash of (metric name, attributes); entries are compared in full, so a
/// hash collision is only a miss.
pub struct LabelCache<V> {
    entries: RefCell<HashMap<u64, Vec<Cached<V>>>>,
}

impl<V> Default for LabelCache<V> {
    fn default() -> Self {
        LabelCache {
            entries: RefCell::new(HashMap::default()),
        }
    }
}

impl<V: Clone> LabelCache<V> {
    /// The value built before for `name` and exactly these `attributes`.
    pub fn get(&self, name: &str, attributes: Attrs<'_>) -> Option<V> {
        let entries = self.entries.borrow();
        for c in entries.get(&key(name, attributes))? {
            if c.name == name && c.attributes.equals(attributes) {
                return Some(c.value.clone());
            }
        }
        None
    }

    /// Remembers `value` for `name` and `attributes`.
    pub fn insert(&self, name: &str, attributes: Attrs<'_>, value: V) {
        self.entries
            .borrow_mut()
            .entry(key(name, attributes))
            .or_default()
            .push(Cached {
                name: name.to_string(),
                attributes: attributes.to_owned(),
                value,
            });
    }
}

fn key(name: &str, attributes: Attrs<'_>) -> u64 {
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    name.hash(&mut h);
    match attributes {
        Attrs::Decoded(list) => {
            for kv in list {
                kv.key.hash(&mut h);
                hash_value(kv.value.as_ref(), &mut h);
            }
        }
        Attrs::Raw(bytes) => h.write(bytes),
    }
    h.finish()
}

fn hash_value(value: Option<&AnyValue>, h: &mut impl Hasher) {
    match value.and_then(|v| v.value.as_ref()) {
        Some(AnyValueKind::StringValue(s)) => s.hash(h),
        Some(AnyValueKind::IntValue(i)) => i.hash(h),
        Some(AnyValueKind::BoolValue(b)) => b.hash(h),
        Some(AnyValueKind::DoubleValue(d)) => d.to_bits().hash(h),
        Some(AnyValueKind::BytesValue(b)) => b.hash(h),
        // Arrays and maps share a bucket; the full comparison tells them apart.
        Some(_) => 1u8.hash(h),
        None => 0u8.hash(h),
    }
}

/// Most entries a [`SharedCache`] holds; past that it starts again from empty. An entry
/// costs ~150 bytes besides its labels (which the head usually shares), so a full cache is
/// ~40 MB; 262,144 entries cover that many series per receiver before any rebuild.
pub const MAX_SHARED_ENTRIES: usize = 1 << 18;

struct SharedEntry<V> {
    scope: Arc<str>,
    name: Box<str>,
    raw: Box<[u8]>,
    value: V,
}

/// Values built by earlier requests, keyed by scope (the request's resource and scope
/// labels, see [`scope_key`]), metric name and the raw bytes of the point's attributes:
/// the same exporter sends the same series in every request, and building their labels
/// once per request was the largest cost of mapping left. What is cached depends only on
/// the key and the server's label limits, so it never goes stale; the cache only bounds
/// its size.
pub struct SharedCache<V> {
    entries: Mutex<SharedEntries<V>>,
}

/// Entries by key hash, and how many there are.
type SharedEntries<V> = (HashMap<u64, Vec<SharedEntry<V>>>, usize);

impl<V> Default for SharedCache<V> {
    fn default() -> Self {
        SharedCache {
            entries: Mutex::new((HashMap::default(), 0)),
        }
    }
}

impl<V: Clone> SharedCache<V> {
    /// The value cached for this scope, name and raw attributes.
    pub fn get(&self, scope: &str, name: &str, raw: &[u8]) -> Option<V> {
        let h = shared_key(scope, name, raw);
        let entries = self.entries.lock();
        for e in entries.0.get(&h)? {
            if &*e.name == name && &*e.raw == raw && &*e.scope == scope {
                return Some(e.value.clone());
            }
        }
        None
    }

    /// Caches `value`.
    pub fn insert(&self, scope: &Arc<str>, name: &str, raw: &[u8], value: V) {
        let h = shared_key(scope, name, raw);
        let mut entries = self.entries.lock();
        if entries.1 >= MAX_SHARED_ENTRIES {
            entries.0.clear();
            entries.1 = 0;
        }
        entries.1 += 1;
        entries.0.entry(h).or_default().push(SharedEntry {
            scope: scope.clone(),
            name: name.into(),
            raw: raw.into(),
            value,
        });
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.lock().1
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn shared_key(scope: &str, name: &str, raw: &[u8]) -> u64 {
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    scope.hash(&mut h);
    name.hash(&mut h);
    h.write(raw);
    h.finish()
}

/// An unambiguous text key of a scope's common labels (each name and value with its
/// length in front).
pub fn scope_key(common: &std::collections::BTreeMap<String, String>) -> Arc<str> {
    let mut out = String::new();
    for (k, v) in common {
        out.push_str(&format!("{}:{k}{}:{v}", k.len(), v.len()));
    }
    Arc::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use didban_testkit::kv;

    #[test]
    fn hits_only_on_the_same_name_and_attributes() {
        let cache = LabelCache::default();
        cache.insert("m", Attrs::Decoded(&[kv("a", "1")]), 7u32);
        assert_eq!(cache.get("m", Attrs::Decoded(&[kv("a", "1")])), Some(7));
        assert_eq!(cache.get("m", Attrs::Decoded(&[kv("a", "2")])), None);
        assert_eq!(cache.get("n", Attrs::Decoded(&[kv("a", "1")])), None);
        assert_eq!(cache.get("m", Attrs::Decoded(&[])), None);
        cache.insert("m", Attrs::Raw(b"\x3a\x01a"), 8);
        assert_eq!(cache.get("m", Attrs::Raw(b"\x3a\x01a")), Some(8));
        assert_eq!(cache.get("m", Attrs::Raw(b"\x3a\x01b")), None);
        assert_eq!(cache.get("m", Attrs::Raw(b"")), None);
    }

    #[test]
    fn shared_cache_hits_only_on_scope_name_and_bytes() {
        let cache = SharedCache::default();
        let mut common = std::collections::BTreeMap::new();
        common.insert("job".to_string(), "a".to_string());
        let a = scope_key(&common);
        common.insert("job".to_string(), "a1".to_string());
        let b = scope_key(&common);
        assert_ne!(a, b);
        cache.insert(&a, "m", b"xy", 1u8);
        assert_eq!(cache.get(&a, "m", b"xy"), Some(1));
        assert_eq!(cache.get(&b, "m", b"xy"), None);
        assert_eq!(cache.get(&a, "n", b"xy"), None);
        assert_eq!(cache.get(&a, "m", b"x"), None);
        assert_eq!(cache.len(), 1);
    }
}
