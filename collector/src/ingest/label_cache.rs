//! Series labels built once per request scope: an OTLP request usually carries several
//! points of one series, and building labels (sanitising names, stringifying values,
//! sorting, checking limits) was most of the mapping's cost.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hash, Hasher};

use didban_store::Labels;
use foldhash::HashMap;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// One built entry, with the name and attributes it was built from.
struct Cached {
    name: String,
    attributes: Vec<KeyValue>,
    labels: Labels,
}

/// Built labels keyed by a hash of (metric name, raw attributes); entries are compared in
/// full, so a hash collision is only a miss.
#[derive(Default)]
pub struct LabelCache {
    entries: RefCell<HashMap<u64, Vec<Cached>>>,
}

impl LabelCache {
    /// The labels built before for `name` and exactly these `attributes`.
    pub fn get(&self, name: &str, attributes: &[KeyValue]) -> Option<Labels> {
        let entries = self.entries.borrow();
        for c in entries.get(&key(name, attributes))? {
            if c.name == name && c.attributes.as_slice() == attributes {
                return Some(c.labels.clone());
            }
        }
        None
    }

    /// Remembers `labels` for `name` and `attributes`.
    pub fn insert(&self, name: &str, attributes: &[KeyValue], labels: Labels) {
        self.entries
            .borrow_mut()
            .entry(key(name, attributes))
            .or_default()
            .push(Cached {
                name: name.to_string(),
                attributes: attributes.to_vec(),
                labels,
            });
    }
}

fn key(name: &str, attributes: &[KeyValue]) -> u64 {
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    name.hash(&mut h);
    for kv in attributes {
        kv.key.hash(&mut h);
        hash_value(kv.value.as_ref(), &mut h);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(AnyValueKind::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn hits_only_on_the_same_name_and_attributes() {
        let cache = LabelCache::default();
        let labels = Labels::from_pairs([("__name__", "m"), ("a", "1")]);
        cache.insert("m", &[kv("a", "1")], labels.clone());
        assert_eq!(cache.get("m", &[kv("a", "1")]), Some(labels));
        assert_eq!(cache.get("m", &[kv("a", "2")]), None);
        assert_eq!(cache.get("n", &[kv("a", "1")]), None);
        assert_eq!(cache.get("m", &[]), None);
    }
}
