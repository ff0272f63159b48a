//! Series labels: [`Labels`], the identity of a series, held as **one allocation**.
//!
//! A head holds one `Labels` per series, so their size is most of the memory a series costs
//! when it has few samples. A slice of `(String, String)` costs a header, 48 bytes per label
//! and two more allocations per label (~360 bytes with the allocator's rounding for
//! `node_cpu_seconds_total{cpu, instance, job, mode}`); the same labels encoded in one
//! string cost their text, two bytes per label and one header (~100 bytes). Prometheus'
//! default `stringlabels` representation is the same idea.
//!
//! # Encoding
//!
//! The string holds each label in order as `len(name) name len(value) value`, where a
//! length is written in 6-bit digits, least significant first, each digit one ASCII
//! character: `0x40 | digit` when more digits follow, `digit` for the last one. Every
//! length character is ASCII, so the whole is valid UTF-8 made of whole strings, and
//! names and values are borrowed from it as `&str` without checking anything again. The
//! encoding of a list of labels is unique, so equality and hashing of the strings are those
//! of the labels; ordering is not (a length comes first) and is defined label by label.
//!
//! A name among [`WELL_KNOWN_NAMES`] (`__name__`, `instance`, `job`, … — in nearly every
//! series) is written as the length 0 and its index in that list instead of its text, and
//! always so, which keeps the encoding unique; an empty name is the length 0 and
//! [`EMPTY_NAME_CODE`]. That took the labels of 1 M node-exporter series from 133.5 to
//! 103.0 MB (heaptrack, `docs/benchmarks.md`).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The label that holds a series' metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// One label: a name and a value, owned — what [`Labels`] are built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// One label of a [`Labels`], borrowed from it. Serializes as a [`Label`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename = "Label")]
pub struct LabelRef<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

impl LabelRef<'_> {
    /// This label, owned.
    pub fn to_label(self) -> Label {
        Label::new(self.name, self.value)
    }
}

/// Why a set of labels was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("duplicate label name {0:?}")]
    Duplicate(String),
    #[error("invalid label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidName(String),
    #[error("invalid metric name {0:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName(String),
    #[error("series has no metric name (__name__ label)")]
    MissingMetricName,
}

/// A series identity: labels sorted by name, names unique, no empty values.
///
/// The invariant is established once, on creation, so equality, hashing and ordering of two
/// `Labels` are the equality, hashing and ordering of the series they name (ordering label
/// by label, name then value, as Prometheus sorts series). The labels are immutable and
/// shared: a clone is a reference-count increment, so ingest, the head and query results
/// pass one series' labels around without copying. See the module documentation for the
/// encoding.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Arc<str>);

impl Labels {
    /// Builds labels from any order; empty values are dropped (Prometheus treats an empty
    /// value as an absent label) and a repeated name is an error.
    pub fn new(mut labels: Vec<Label>) -> Result<Labels, LabelsError> {
        labels.retain(|l| !l.value.is_empty());
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in labels.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(LabelsError::Duplicate(pair[0].name.clone()));
            }
        }
        Ok(Labels::encode(
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        ))
    }

    /// Builds labels from a list that is known to be valid (sorted, unique); when two
    /// entries share a name the later one wins. Used for labels computed by queries.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Labels {
        let mut all: Vec<Label> = Vec::new();
        for (n, v) in pairs {
            let label = Label::new(n, v);
            if !label.value.is_empty() {
                all.push(label);
            }
        }
        // A stable sort keeps equal names in input order, so the last of a run is the
        // latest.
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(all.len());
        for label in all {
            match out.last_mut() {
                Some(prev) if prev.name == label.name => *prev = label,
                _ => out.push(label),
            }
        }
        Labels::encode(out.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Labels of `pairs` as given. The caller keeps the invariant (sorted by name, names
    /// unique, values not empty): every constructor goes through here.
    fn encode<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Labels {
        let mut size = 0;
        for (name, value) in pairs.clone() {
            size += name.len() + value.len() + 2;
        }
        let mut text = String::with_capacity(size);
        let mut previous: Option<&str> = None;
        for (name, value) in pairs {
            debug_assert!(
                previous.is_none_or(|p| p < name),
                "labels out of order at {name:?}"
            );
            debug_assert!(!value.is_empty(), "empty value of {name:?}");
            previous = Some(name);
            push_name(&mut text, name);
            push_text(&mut text, value);
        }
        Labels(Arc::from(text))
    }

    /// Checks that every name is a valid Prometheus label name and that the metric name,
    /// when present, is valid too. Ingest calls this; query results need not.
    pub fn validate(&self) -> Result<(), LabelsError> {
        for l in self.iter() {
            if l.name == METRIC_NAME_LABEL {
                if !is_valid_metric_name(l.value) {
                    return Err(LabelsError::InvalidMetricName(l.value.to_string()));
                }
            } else if !is_valid_label_name(l.name) {
                return Err(LabelsError::InvalidName(l.name.to_string()));
            }
        }
        if self.metric_name().is_none() {
            return Err(LabelsError::MissingMetricName);
        }
        Ok(())
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for l in self.iter() {
            match l.name.cmp(name) {
                Ordering::Less => {}
                Ordering::Equal => return Some(l.value),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME_LABEL)
    }

    /// The labels in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter {
            text: &self.0,
            pos: 0,
        }
    }

    /// Number of labels (counted: the encoding does not store it).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels, owned.
    pub fn to_vec(&self) -> Vec<Label> {
        self.iter().map(LabelRef::to_label).collect()
    }

    /// True when both are clones of one allocation (a cache hit handed out the labels it
    /// holds rather than new ones).
    pub fn shares_allocation(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// These labels with `name` removed.
    pub fn without(&self, name: &str) -> Labels {
        Labels::encode(self.iter().filter(|l| l.name != name).map(|l| (l.name, l.value)))
    }

    /// These labels with `name` removed (for dropping `__name__` after a function).
    pub fn without_metric_name(&self) -> Labels {
        self.without(METRIC_NAME_LABEL)
    }

    /// These labels with `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let before = self.iter().filter(|l| l.name < name).map(|l| (l.name, l.value));
        let set = Some((name, value)).filter(|_| !value.is_empty());
        let after = self.iter().filter(|l| l.name > name).map(|l| (l.name, l.value));
        Labels::encode(before.chain(set).chain(after))
    }

    /// Only the labels whose names are in `names`.
    pub fn keep_only(&self, names: &[String]) -> Labels {
        Labels::encode(
            self.iter()
                .filter(|l| names.iter().any(|n| n == l.name))
                .map(|l| (l.name, l.value)),
        )
    }

    /// All labels except those whose names are in `names`.
    pub fn drop_names(&self, names: &[String]) -> Labels {
        Labels::encode(
            self.iter()
                .filter(|l| !names.iter().any(|n| n == l.name))
                .map(|l| (l.name, l.value)),
        )
    }

    /// A stable 64-bit fingerprint (FNV-1a over names and values), the same across
    /// processes and versions, used for alert fingerprints and series ids in files.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for l in self.iter() {
            for b in l.name.bytes().chain([0xff]).chain(l.value.bytes()).chain([0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// Heap bytes held (the encoded text and the reference counts), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.0.len() + 16
    }
}

/// Label names written as a one-byte code (see the module documentation): the names
/// Prometheus, node_exporter, Kubernetes and OpenTelemetry put in most series. The list is
/// part of the in-memory encoding only (labels are written to disk as names and values),
/// so it may change between versions; at most [`EMPTY_NAME_CODE`] entries.
const WELL_KNOWN_NAMES: [&str; 40] = [
    "__name__",
    "instance",
    "job",
    "le",
    "quantile",
    "code",
    "method",
    "handler",
    "status",
    "status_code",
    "path",
    "route",
    "service",
    "service_name",
    "namespace",
    "pod",
    "container",
    "node",
    "cluster",
    "env",
    "region",
    "zone",
    "cpu",
    "mode",
    "device",
    "mountpoint",
    "fstype",
    "state",
    "name",
    "type",
    "version",
    "queue",
    "db",
    "datname",
    "host",
    "server",
    "operation",
    "endpoint",
    "reason",
    "result",
];

/// The code of an empty name (a name of length 0 that is not a well-known one).
const EMPTY_NAME_CODE: u8 = 0x3f;

// Every code is a single length digit below the empty name's (checked when compiling).
const _: () = assert!(WELL_KNOWN_NAMES.len() < EMPTY_NAME_CODE as usize);

/// Appends a label name: its code when it is well known, else as [`push_text`] does.
fn push_name(out: &mut String, name: &str) {
    let code = if name.is_empty() {
        Some(EMPTY_NAME_CODE)
    } else {
        WELL_KNOWN_NAMES.iter().position(|n| *n == name).map(|i| i as u8)
    };
    match code {
        Some(code) => {
            out.push('\0');
            out.push(char::from(code));
        }
        None => push_text(out, name),
    }
}

/// Appends `s` with its length in front (see the module documentation).
fn push_text(out: &mut String, s: &str) {
    let mut n = s.len();
    while n >= 0x40 {
        out.push(char::from(0x40 | (n & 0x3f) as u8));
        n >>= 6;
    }
    out.push(char::from(n as u8));
    out.push_str(s);
}

/// The labels of a [`Labels`], in name order.
#[derive(Debug, Clone)]
pub struct LabelsIter<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> LabelsIter<'a> {
    /// The next label name: a well-known one by its code, else its text.
    fn next_name(&mut self) -> &'a str {
        let bytes = self.text.as_bytes();
        if bytes.get(self.pos) != Some(&0) {
            return self.next_text();
        }
        let code = bytes.get(self.pos + 1).copied().unwrap_or(EMPTY_NAME_CODE);
        self.pos += 2;
        WELL_KNOWN_NAMES.get(usize::from(code)).copied().unwrap_or("")
    }

    /// The next length-prefixed string. Only `Labels::encode` writes the text, so a length
    /// always ends before the text does and a string always ends on a character boundary;
    /// were it otherwise, the rest reads as empty rather than panicking.
    fn next_text(&mut self) -> &'a str {
        let bytes = self.text.as_bytes();
        let mut len = 0usize;
        let mut shift = 0u32;
        while let Some(&digit) = bytes.get(self.pos) {
            self.pos += 1;
            len |= usize::from(digit & 0x3f).checked_shl(shift).unwrap_or(0);
            shift += 6;
            if digit & 0x40 == 0 {
                break;
            }
        }
        let start = self.pos;
        self.pos = start.saturating_add(len);
        let text = self.text.get(start..self.pos);
        debug_assert!(text.is_some(), "label text cut at {start}+{len}");
        text.unwrap_or("")
    }
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = LabelRef<'a>;

    fn next(&mut self) -> Option<LabelRef<'a>> {
        if self.pos >= self.text.len() {
            return None;
        }
        let name = self.next_name();
        let value = self.next_text();
        Some(LabelRef { name, value })
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = LabelRef<'a>;
    type IntoIter = LabelsIter<'a>;

    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

/// Label by label, name then value; fewer labels first when one is a prefix of the other.
///
/// The labels two encodings hold in their common leading bytes are the same labels (each
/// is read from the same bytes), so the comparison starts at the first label that reaches
/// past them: series of one metric compare only where they differ, not label by label
/// from their name (sorting a selection's series spent most of its time there).
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        let shared = common_prefix(self.0.as_bytes(), other.0.as_bytes());
        let mut walk = self.iter();
        let mut from = 0;
        // The end of the last label wholly inside the shared bytes.
        while walk.next().is_some() && walk.pos <= shared {
            from = walk.pos;
        }
        let mine = LabelsIter {
            text: &self.0,
            pos: from,
        };
        let theirs = LabelsIter {
            text: &other.0,
            pos: from,
        };
        mine.cmp(theirs)
    }
}

/// How many leading bytes `a` and `b` share, eight at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while let (Some(x), Some(y)) = (a.get(i..i + 8), b.get(i..i + 8)) {
        let (Ok(x), Ok(y)) = (<[u8; 8]>::try_from(x), <[u8; 8]>::try_from(y)) else {
            break;
        };
        let diff = u64::from_le_bytes(x) ^ u64::from_le_bytes(y);
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a.get(i) == b.get(i) {
        i += 1;
    }
    i
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for Labels {
    /// Prometheus' notation: `name{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.iter().filter(|l| l.name != METRIC_NAME_LABEL) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// A list of `{name, value}` objects, as before the encoding existed.
impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// From a list of labels in any order, made valid as [`Labels::new`] does (a repeated name
/// is an error naming it); labels this program serialized come back unchanged.
impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = Vec::<Label>::deserialize(deserializer)?;
        Labels::new(list).map_err(serde::de::Error::custom)
    }
}

/// True for a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True for a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Well-known names take two bytes, read back as themselves, and every way of building
    /// the same labels gives the same text (equality and hashing depend on it); an empty
    /// name and names that only start like a well-known one keep their text.
    #[test]
    fn well_known_names_are_coded_and_read_back() {
        let pairs = [
            ("", "e"),
            ("__name__", "node_cpu_seconds_total"),
            ("cpu", "3"),
            ("instance", "host-0001:9100"),
            ("job", "node"),
            ("jobs", "x"),
            ("mode", "idle"),
        ];
        let owned: Vec<Label> = pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect();
        let built = Labels::new(owned.iter().rev().cloned().collect()).unwrap();
        let read: Vec<(&str, &str)> = built.iter().map(|l| (l.name, l.value)).collect();
        assert_eq!(read, pairs);
        assert_eq!(built, Labels::from_pairs(pairs));
        assert_eq!(built, Labels::from_pairs(pairs).with("job", "node"));
        assert_eq!(built.without("jobs").with("jobs", "x"), built);
        assert_eq!(built.get("job"), Some("node"));
        assert_eq!(built.get(""), Some("e"));
        // Coded: "", __name__, cpu, instance, job, mode (2 bytes each) and "jobs" (5).
        let values: usize = pairs.iter().map(|(_, v)| v.len() + 1).sum();
        assert_eq!(built.heap_bytes(), 6 * 2 + 5 + values + 16);
        let unknown = Labels::from_pairs([("jobx", "node")]);
        assert_eq!(unknown.iter().next().map(|l| l.name), Some("jobx"));
    }

    #[test]
    fn labels_are_sorted_deduplicated_and_drop_empty_values() {
        let l = Labels::new(vec![
            Label::new("b", "2"),
            Label::new("__name__", "up"),
            Label::new("a", "1"),
            Label::new("empty", ""),
        ])
        .unwrap();
        let names: Vec<&str> = l.iter().map(|l| l.name).collect();
        assert_eq!(names, ["__name__", "a", "b"]);
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.get("empty"), None);
        assert_eq!(l.to_string(), r#"up{a="1", b="2"}"#);
    }

    #[test]
    fn from_pairs_keeps_the_last_of_repeated_names_and_drops_empty_values() {
        let l = Labels::from_pairs([("b", "1"), ("a", "x"), ("b", "2"), ("c", ""), ("a", "")]);
        assert_eq!(l.to_string(), r#"{a="x", b="2"}"#);
    }

    #[test]
    fn with_sets_replaces_and_removes_in_order() {
        let l = Labels::from_pairs([("__name__", "m"), ("b", "1"), ("d", "2")]);
        assert_eq!(l.with("c", "x").to_string(), r#"m{b="1", c="x", d="2"}"#);
        assert_eq!(l.with("b", "9").to_string(), r#"m{b="9", d="2"}"#);
        assert_eq!(l.with("d", "").to_string(), r#"m{b="1"}"#);
        assert_eq!(l.with("a", "0").to_string(), r#"m{a="0", b="1", d="2"}"#);
        assert_eq!(l.with("z", "0").to_string(), r#"m{b="1", d="2", z="0"}"#);
    }

    #[test]
    fn duplicate_label_names_are_refused() {
        let err = Labels::new(vec![Label::new("a", "1"), Label::new("a", "2")]).unwrap_err();
        assert_eq!(err, LabelsError::Duplicate("a".into()));
    }

    #[test]
    fn validation_names_the_bad_label() {
        let l = Labels::from_pairs([("__name__", "up"), ("bad-name", "x")]);
        assert_eq!(l.validate(), Err(LabelsError::InvalidName("bad-name".into())));
        let l = Labels::from_pairs([("__name__", "1up")]);
        assert_eq!(l.validate(), Err(LabelsError::InvalidMetricName("1up".into())));
        let l = Labels::from_pairs([("job", "x")]);
        assert_eq!(l.validate(), Err(LabelsError::MissingMetricName));
    }

    /// Names and values of every length (one, two and three length digits), with
    /// characters that look like length digits and multi-byte ones, come back as given.
    #[test]
    fn every_length_and_character_round_trips() {
        for len in [1usize, 2, 63, 64, 65, 200, 4095, 4096, 5000] {
            let value: String = "é@\u{7f}\u{1}".chars().cycle().take(len).collect();
            let name = format!("n{}", "x".repeat(len % 70));
            let l = Labels::from_pairs([("__name__", "m".to_string()), (name.as_str(), value.clone())]);
            assert_eq!(l.get(&name), Some(value.as_str()), "length {len}");
            assert_eq!(l.metric_name(), Some("m"));
            let got: Vec<(&str, &str)> = l.iter().map(|l| (l.name, l.value)).collect();
            assert_eq!(got, [("__name__", "m"), (name.as_str(), value.as_str())]);
            assert_eq!(l.len(), 2);
        }
    }

    /// Ordering is label by label, name then value, as the list of labels orders (the
    /// order blocks and query results are sorted in), not the order of the encoded text.
    #[test]
    fn ordering_is_label_by_label() {
        let sets = [
            Labels::from_pairs([("a", "1")]),
            Labels::from_pairs([("a", "1"), ("b", "2")]),
            Labels::from_pairs([("a", "10")]),
            Labels::from_pairs([("a", "2")]),
            Labels::from_pairs([("ab", "1")]),
            Labels::from_pairs([("b", "1")]),
            Labels::from_pairs([("a", "x".repeat(70))]),
            Labels::from_pairs([("a", "y")]),
            Labels::default(),
            // Series of one metric, sharing leading labels and parts of values.
            Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("instance", "h1"),
                ("mode", "idle"),
            ]),
            Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("instance", "h1"),
                ("mode", "iowait"),
            ]),
            Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("instance", "h10"),
                ("mode", "idle"),
            ]),
            Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("instance", "h1"),
            ]),
            Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("instance", "h1"),
                ("zone", "a"),
            ]),
            Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "10"),
                ("instance", "h1"),
            ]),
            Labels::from_pairs([("__name__", "node_cpu_seconds"), ("cpu", "0")]),
            // Values whose lengths take two digits, one sharing its text with a shorter one.
            Labels::from_pairs([("a", "x".repeat(64).as_str()), ("b", "1")]),
            Labels::from_pairs([("a", "x".repeat(65).as_str()), ("b", "1")]),
            Labels::from_pairs([("a", "x"), ("b", "1")]),
        ];
        for x in &sets {
            for y in &sets {
                assert_eq!(x.cmp(y), x.to_vec().cmp(&y.to_vec()), "{x} vs {y}");
                assert_eq!(x == y, x.to_vec() == y.to_vec());
            }
        }
    }

    /// Labels made by different routes to the same set are equal and hash alike.
    #[test]
    fn equal_sets_are_equal_however_made() {
        use std::hash::BuildHasher;
        let by_new = Labels::new(vec![Label::new("b", "2"), Label::new("a", "1")]).unwrap();
        let by_pairs = Labels::from_pairs([("a", "1"), ("b", "2")]);
        let by_with = Labels::from_pairs([("b", "2")]).with("a", "1");
        let by_without = Labels::from_pairs([("a", "1"), ("b", "2"), ("c", "3")]).without("c");
        let hasher = foldhash::fast::FixedState::with_seed(7);
        for l in [&by_pairs, &by_with, &by_without] {
            assert_eq!(&by_new, l);
            assert_eq!(hasher.hash_one(&by_new), hasher.hash_one(l));
        }
        assert!(!by_new.shares_allocation(&by_pairs));
        assert!(by_new.shares_allocation(&by_new.clone()));
    }

    /// The serialized form is the list of `{name, value}` objects it always was; reading
    /// one back sorts it, and a repeated name is refused with the name.
    #[test]
    fn serde_keeps_the_list_form() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "api")]);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(
            json,
            r#"[{"name":"__name__","value":"up"},{"name":"job","value":"api"}]"#
        );
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), l);
        let unsorted = r#"[{"name":"job","value":"api"},{"name":"__name__","value":"up"}]"#;
        assert_eq!(serde_json::from_str::<Labels>(unsorted).unwrap(), l);
        let twice = r#"[{"name":"job","value":"a"},{"name":"job","value":"b"}]"#;
        let err = serde_json::from_str::<Labels>(twice).unwrap_err();
        assert!(err.to_string().contains("duplicate label name \"job\""), "{err}");
    }

    /// One allocation: the text and two length bytes per label, not a `String` pair each
    /// (names that are not well known; the others cost less, as tested above).
    #[test]
    fn a_series_costs_its_text_and_two_bytes_per_label() {
        let l = Labels::from_pairs([
            ("alpha", "node_cpu_seconds_total"),
            ("beta", "3"),
            ("gamma", "host-0001:9100"),
            ("kappa", "node"),
            ("lambda", "idle"),
        ]);
        let text: usize = l.iter().map(|l| l.name.len() + l.value.len()).sum();
        assert_eq!(l.heap_bytes(), text + 2 * 5 + 16);
        let copies = allocation_counter::measure(|| {
            let copy = l.clone();
            assert_eq!(copy, l);
        });
        assert_eq!(copies.count_total, 0, "a clone allocates nothing");
    }
}
