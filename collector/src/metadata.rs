//! Metric metadata (type, help, unit) as clients report it — OTLP descriptions and units,
//! remote_write metadata — served by `/api/v1/metadata` so Grafana can show help texts.
//! Kept in memory and saved to `<data_dir>/metadata.json` so it survives restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What is known about one metric name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricMetadata {
    /// `counter`, `gauge`, `histogram`, `summary` or `unknown`, as Prometheus names them.
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// The metadata of every metric name seen, newest report wins.
#[derive(Debug)]
pub struct MetadataStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_metric: BTreeMap<String, MetricMetadata>,
    dirty: bool,
}

/// Most metric names remembered; beyond it new names are ignored (a cardinality guard).
const MAX_METRICS: usize = 100_000;

impl MetadataStore {
    /// Loads `<data_dir>/metadata.json` if present; a damaged file is ignored with a warning.
    pub fn open(data_dir: &Path) -> MetadataStore {
        let path = data_dir.join("metadata.json");
        let mut by_metric = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            match serde_json::from_str(&text) {
                Ok(map) => by_metric = map,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring damaged metadata file")
                }
            }
        }
        MetadataStore {
            path,
            inner: Mutex::new(Inner {
                by_metric,
                dirty: false,
            }),
        }
    }

    /// Records metadata for `metric`.
    pub fn record(&self, metric: &str, meta: MetricMetadata) {
        let mut inner = self.inner.lock();
        if inner.by_metric.get(metric) == Some(&meta) {
            return;
        }
        if inner.by_metric.len() >= MAX_METRICS && !inner.by_metric.contains_key(metric) {
            return;
        }
        inner.by_metric.insert(metric.to_string(), meta);
        inner.dirty = true;
    }

    /// What is known about `metric`, if anything.
    pub fn get(&self, metric: &str) -> Option<MetricMetadata> {
        self.inner.lock().by_metric.get(metric).cloned()
    }

    /// The API's `data` object: `{"metric": [{"type","help","unit"}]}`.
    pub fn to_json(&self, metric: Option<&str>, limit: usize) -> Value {
        let inner = self.inner.lock();
        let mut out = serde_json::Map::new();
        for (name, meta) in inner.by_metric.iter() {
            if metric.is_some_and(|m| m != name) {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            out.insert(name.clone(), json!([meta]));
        }
        Value::Object(out)
    }

    /// Writes the file if anything changed (atomically, via a temporary file).
    pub fn save(&self) -> std::io::Result<()> {
        let text = {
            let mut inner = self.inner.lock();
            if !inner.dirty {
                return Ok(());
            }
            inner.dirty = false;
            serde_json::to_string(&inner.by_metric).map_err(std::io::Error::other)?
        };
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_serves_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path());
        let meta = MetricMetadata {
            kind: "counter".into(),
            help: "Requests served.".into(),
            unit: "".into(),
        };
        store.record("http_requests_total", meta.clone());
        store.save().unwrap();
        let again = MetadataStore::open(dir.path());
        let data = again.to_json(Some("http_requests_total"), usize::MAX);
        assert_eq!(data["http_requests_total"][0]["type"], "counter");
        assert_eq!(data["http_requests_total"][0]["help"], "Requests served.");
        assert_eq!(again.to_json(Some("other"), usize::MAX), json!({}));
    }
}
