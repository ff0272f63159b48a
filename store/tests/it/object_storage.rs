//! Metric blocks on object storage, against a real three-node Garage cluster (replication
//! factor 3): blocks are uploaded once written, meta.json last; a new database on an
//! empty data directory answers from the bucket alone; one node down changes nothing for
//! reads and writes; the local cache of block files stays within its size; retention
//! deletes from the bucket.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use didban_store::model::Span;
use didban_store::{Db, DbOptions, FloatHistogram, HistogramSample, Labels, SeriesSamples};
use didban_testkit::garage::Garage;
use didban_testkit::wait::{until, HANG};

/// Options of a database whose blocks go to `garage`'s bucket through node `node`, with a
/// cache of `cache_bytes`.
fn s3_options(dir: &Path, garage: &Garage, node: usize, cache_bytes: u64) -> DbOptions {
    let mut o = options(dir);
    o.block_storage = garage_storage(garage, node, cache_bytes);
    o
}

/// Block `b`'s data: 40 series of 30 samples over 5 minutes, values unique per block.
fn block_data(b: i64) -> Vec<SeriesSamples> {
    let mut out = Vec::new();
    for i in 0..40 {
        let mut points = Vec::new();
        for k in 0..30 {
            points.push((T0 + b * 5 * MIN + k * 10_000, (b * 1000 + i * 10 + k) as f64));
        }
        out.push(series(
            &format!("objstore_metric_{}", i % 4),
            &format!("job{i}"),
            &points,
        ));
    }
    out
}

/// Appends `blocks` blocks' data, cutting a block after each; returns what was written.
async fn write_blocks(db: &Db, blocks: i64) -> Vec<SeriesSamples> {
    for b in 0..blocks {
        db.append(block_data(b)).await.unwrap();
        db.flush_head().unwrap();
    }
    everything(db)
}

/// Files under `dir`, recursively, with their total size.
fn files_under(dir: &Path) -> (usize, u64) {
    let (mut n, mut bytes) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for e in entries {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            let (a, b) = files_under(&e.path());
            n += a;
            bytes += b;
        } else {
            n += 1;
            bytes += meta.len();
        }
    }
    (n, bytes)
}

#[tokio::test]
async fn blocks_are_uploaded_and_an_empty_data_dir_answers_from_the_bucket() {
    let garage = Garage::start();
    let first_dir = tempfile::tempdir().unwrap();
    let db = Db::open(s3_options(first_dir.path(), &garage, 0, 64 << 20)).unwrap();
    let written = write_blocks(&db, 3).await;
    assert_eq!(count(&written), 3 * 40 * 30);
    assert_eq!(db.stats().blocks, 3);
    assert!(
        block_dirs(first_dir.path()).is_empty(),
        "uploaded blocks leave the data directory"
    );
    db.close().await.unwrap();
    drop(db);

    // Another process's view: nothing local, everything from the bucket, through node 1.
    let second_dir = tempfile::tempdir().unwrap();
    let fresh = Db::open(s3_options(second_dir.path(), &garage, 1, 64 << 20)).unwrap();
    assert_eq!(fresh.stats().blocks, 3);
    let cold = everything(&fresh);
    assert_same(&written, &cold);
    let stats = fresh.stats().object_cache.unwrap();
    assert!(stats.misses > 0, "the first reads go to the bucket: {stats:?}");
    until("the files the query read to reach the cache", HANG, || {
        let s = fresh.stats().object_cache.unwrap();
        if s.loading == 0 && s.files > 0 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    });
    let hits_before = fresh.stats().object_cache.unwrap().hits;
    assert_same(&written, &everything(&fresh));
    assert!(
        fresh.stats().object_cache.unwrap().hits > hits_before,
        "the second query reads cached files"
    );
}

#[tokio::test]
async fn one_garage_node_down_reads_and_writes_go_on() {
    let mut garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(s3_options(dir.path(), &garage, 0, 64 << 20)).unwrap();
    db.append(block_data(0)).await.unwrap();
    db.flush_head().unwrap();

    garage.stop_node(2);
    db.append(block_data(1)).await.unwrap();
    db.flush_head()
        .expect("a block is uploaded with two of three nodes");
    let written = everything(&db);
    assert_eq!(count(&written), 2 * 40 * 30);
    db.close().await.unwrap();
    drop(db);

    let other = tempfile::tempdir().unwrap();
    let fresh = Db::open(s3_options(other.path(), &garage, 1, 64 << 20)).unwrap();
    assert_eq!(fresh.stats().blocks, 2);
    assert_same(&written, &everything(&fresh));
}

#[tokio::test]
async fn the_cache_keeps_within_its_size_and_retention_deletes_from_the_bucket() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(s3_options(dir.path(), &garage, 0, 64 << 20)).unwrap();
    let written = write_blocks(&db, 6).await;
    db.close().await.unwrap();
    drop(db);

    // A cache a little over one block's files: reading all six blocks must evict.
    let cache_dir = tempfile::tempdir().unwrap();
    let probe = Db::open(s3_options(cache_dir.path(), &garage, 0, 1 << 30)).unwrap();
    let block_bytes = probe.stats().block_bytes / 6;
    drop(probe);
    let limit = block_bytes + block_bytes / 2;
    let small = tempfile::tempdir().unwrap();
    let db = Db::open(s3_options(small.path(), &garage, 0, limit)).unwrap();
    for _ in 0..3 {
        assert_same(&written, &everything(&db));
        until("background fetches to end", HANG, || {
            let s = db.stats().object_cache.unwrap();
            if s.loading == 0 {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        });
        let s = db.stats().object_cache.unwrap();
        assert!(s.bytes <= limit, "{s:?} over {limit}");
        let (_, on_disk) = files_under(&small.path().join("cache"));
        assert!(on_disk <= limit, "{on_disk} bytes on disk over {limit}");
    }
    assert!(db.stats().object_cache.unwrap().files > 0);

    // Retention: everything is older than a minute before the newest sample + 1 day.
    let mut o = s3_options(small.path(), &garage, 0, limit);
    o.retention_time = Duration::from_secs(60);
    drop(db);
    let db = Db::open(o).unwrap();
    db.maintain(T0 + 24 * 3600 * 1000).unwrap();
    assert_eq!(db.stats().blocks, 0);
    drop(db);
    until("retention's deletions to reach the bucket", HANG, || {
        let look = tempfile::tempdir().unwrap();
        let db = Db::open(s3_options(look.path(), &garage, 1, limit)).unwrap();
        match db.stats().blocks {
            0 => Ok(()),
            n => Err(format!("{n} blocks still listed")),
        }
    });
}

#[tokio::test]
async fn native_histograms_are_read_back_from_the_bucket() {
    let garage = Garage::start();
    let mut written = Vec::new();
    for k in 0..20i64 {
        let h = FloatHistogram {
            schema: 2,
            zero_threshold: 0.001,
            zero_count: 1.0,
            count: 6.0 + k as f64,
            sum: 3.5 * k as f64,
            positive_spans: vec![Span {
                offset: -2,
                length: 2,
            }],
            positive_buckets: vec![2.0, 3.0 + k as f64],
            ..FloatHistogram::default()
        };
        written.push(HistogramSample::new(T0 + k * 15_000, h));
    }
    let labels = Labels::from_pairs([("__name__", "objstore_latency"), ("job", "api")]);
    let first_dir = tempfile::tempdir().unwrap();
    let db = Db::open(s3_options(first_dir.path(), &garage, 0, 64 << 20)).unwrap();
    db.append(vec![SeriesSamples {
        labels: labels.clone(),
        samples: Vec::new(),
        histograms: written.clone(),
    }])
    .await
    .unwrap();
    db.flush_head().unwrap();
    db.close().await.unwrap();
    drop(db);

    let second_dir = tempfile::tempdir().unwrap();
    let fresh = Db::open(s3_options(second_dir.path(), &garage, 1, 64 << 20)).unwrap();
    let got = everything(&fresh);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].labels, labels);
    assert_eq!(
        got[0].histograms, written,
        "histograms.parquet went up and came back whole"
    );
}
