//! Helpers shared by the storage integration tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use didban_store::{
    BlockStorage, Db, DbOptions, LabelMatcher, Labels, MatchOp, Queryable, S3Config, Sample, SeriesSamples,
};
use didban_testkit::garage::{Garage, REGION};

/// A round, 30-minute-aligned start time (2023-11-14T22:00:00Z).
pub const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % (30 * 60 * 1000);
pub const MIN: i64 = 60 * 1000;

/// Options for tests: 10-minute blocks so cuts happen within a short span of sample time.
pub fn options(dir: &Path) -> DbOptions {
    let mut o = DbOptions::new(dir);
    o.block_duration = Duration::from_secs(600);
    o.out_of_order_window = Duration::from_secs(600);
    o.retention_time = Duration::ZERO;
    o
}

pub fn labels(name: &str, job: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", job)])
}

pub fn series(name: &str, job: &str, points: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: labels(name, job),
        samples: points.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        histograms: Vec::new(),
    }
}

/// Every series with every sample.
pub fn everything(db: &Db) -> Vec<SeriesSamples> {
    let all = LabelMatcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    db.select(&[all], i64::MIN, i64::MAX).unwrap()
}

/// Total samples in a query result.
pub fn count(result: &[SeriesSamples]) -> usize {
    result.iter().map(|s| s.samples.len()).sum()
}

/// Block directories currently on disk (temporary ones excluded).
pub fn block_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(data_dir.join("metrics/blocks")).unwrap() {
        let e = e.unwrap();
        if !e.file_name().to_string_lossy().starts_with('.') {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// WAL segment files currently on disk, sorted.
pub fn wal_segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data_dir.join("wal/metrics"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

/// Bitwise comparison of two query results (so NaN stale markers compare equal).
pub fn assert_same(a: &[SeriesSamples], b: &[SeriesSamples]) {
    assert_eq!(a.len(), b.len(), "series count differs");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.labels, y.labels);
        assert_eq!(
            x.samples.len(),
            y.samples.len(),
            "sample count differs for {}",
            x.labels
        );
        for (s, t) in x.samples.iter().zip(&y.samples) {
            assert_eq!(s.timestamp_ms, t.timestamp_ms, "{}", x.labels);
            assert_eq!(
                s.value.to_bits(),
                t.value.to_bits(),
                "{} at {}",
                x.labels,
                s.timestamp_ms
            );
        }
    }
}

/// Blocks in `garage`'s bucket through node `node` (plain HTTP), with a local cache of
/// `cache_bytes`: the storage of every object-storage test.
pub fn garage_storage(garage: &Garage, node: usize, cache_bytes: u64) -> BlockStorage {
    BlockStorage::S3(S3Config {
        endpoint: garage.endpoint(node),
        bucket: garage.bucket.clone(),
        region: REGION.to_string(),
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: garage.secret_access_key.clone(),
        allow_http: true,
        cache_bytes,
    })
}
