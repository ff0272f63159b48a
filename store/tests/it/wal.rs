//! WAL behaviour through the public API: replay, rotation, torn tails, group commit.
#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::sync::Arc;

use crate::common::*;
use didban_store::model::stale_nan;
use didban_store::{AppendError, Db, FsyncMode};

fn batch(i: i64) -> Vec<didban_store::SeriesSamples> {
    vec![
        series("up", "api", &[(T0 + i * 1000, i as f64)]),
        series("up", "web", &[(T0 + i * 1000, -(i as f64))]),
    ]
}

/// The highest-numbered segment that holds data.
fn last_written_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segs = wal_segments(dir);
    segs.retain(|p| fs::metadata(p).unwrap().len() > 0);
    segs.pop().unwrap()
}

#[tokio::test]
async fn replay_restores_exactly_the_acknowledged_samples() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let db = Db::open(options(dir.path())).unwrap();
        for i in 0..50 {
            db.append(batch(i)).await.unwrap();
        }
        db.append(vec![series("up", "api", &[(T0 + 60_000, stale_nan())])])
            .await
            .unwrap();
        before = everything(&db);
        assert_eq!(count(&before), 101);
        // dropped without close: must still be safe
    }
    let db = Db::open(options(dir.path())).unwrap();
    assert_same(&everything(&db), &before);
    let stats = db.stats();
    assert_eq!(stats.wal_replayed_records, 51);
    assert_eq!(stats.wal_torn_tail_repairs, 0);
    assert_eq!(stats.head_series, 2);
    // ordering state survives the restart: an old sample is out of order now
    let report = db
        .append(vec![series("up", "api", &[(T0 - 20 * MIN, 1.0)])])
        .await
        .unwrap();
    assert_eq!(report.accepted, 0);
    db.close().await.unwrap();
    assert!(matches!(db.append(batch(99)).await, Err(AppendError::Closed)));
}

#[tokio::test]
async fn segments_rotate_at_the_size_limit_and_replay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.wal_segment_bytes = 1024;
    let before;
    {
        let db = Db::open(opts.clone()).unwrap();
        for i in 0..200 {
            db.append(batch(i)).await.unwrap();
        }
        assert!(db.stats().wal_segments >= 5, "{:?}", db.stats());
        before = everything(&db);
        db.close().await.unwrap();
    }
    assert!(wal_segments(dir.path()).len() >= 5);
    for seg in wal_segments(dir.path()) {
        assert!(fs::metadata(&seg).unwrap().len() <= 1024);
    }
    let db = Db::open(opts).unwrap();
    assert_eq!(count(&before), 400);
    assert_same(&everything(&db), &before);
}

async fn write_then_damage(damage: impl FnOnce(&std::path::Path)) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(options(dir.path())).unwrap();
        for i in 0..10 {
            db.append(batch(i)).await.unwrap();
        }
        db.close().await.unwrap();
    }
    damage(&last_written_segment(dir.path()));
    let db = Db::open(options(dir.path())).unwrap();
    (dir, db)
}

#[tokio::test]
async fn torn_tail_mid_record_is_cut_and_counted() {
    let (_dir, db) = write_then_damage(|seg| {
        let len = fs::metadata(seg).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(seg)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
    })
    .await;
    assert_eq!(db.stats().wal_torn_tail_repairs, 1);
    let all = everything(&db);
    assert_eq!(
        count(&all),
        18,
        "the last record (2 samples) is lost, the rest survive"
    );
    assert_eq!(all[0].samples.last().unwrap().timestamp_ms, T0 + 8000);
    db.append(batch(10)).await.unwrap();
    assert_eq!(count(&everything(&db)), 20);
}

#[tokio::test]
async fn flipped_byte_in_last_record_is_cut_and_counted() {
    let (dir, db) = write_then_damage(|seg| {
        let mut bytes = fs::read(seg).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x55;
        fs::write(seg, bytes).unwrap();
    })
    .await;
    assert_eq!(db.stats().wal_torn_tail_repairs, 1);
    assert_eq!(count(&everything(&db)), 18);
    drop(db);
    // the repair is permanent: the next open finds nothing to repair
    let db = Db::open(options(dir.path())).unwrap();
    assert_eq!(db.stats().wal_torn_tail_repairs, 0);
    assert_eq!(count(&everything(&db)), 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_shares_fsyncs_between_concurrent_appends() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(options(dir.path())).unwrap());
    let fsyncs_at_start = db.stats().wal_fsyncs;
    let tasks = 400;
    let mut handles = Vec::new();
    for i in 0..tasks {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            let job = format!("job{}", i % 40);
            db.append(vec![series("reqs", &job, &[(T0 + i, i as f64)])])
                .await
                .unwrap()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().accepted, 1);
    }
    let stats = db.stats();
    let fsyncs = stats.wal_fsyncs - fsyncs_at_start;
    eprintln!("group commit: {fsyncs} fsyncs for {tasks} appends");
    assert!(fsyncs < tasks as u64, "{fsyncs} fsyncs for {tasks} appends");
    assert!(fsyncs > 0);
    assert!(stats.wal_fsync_seconds_total > 0.0);
    assert_eq!(count(&everything(&db)), tasks as usize);
    db.close().await.unwrap();
    drop(db);
    let db = Db::open(options(dir.path())).unwrap();
    assert_eq!(count(&everything(&db)), tasks as usize);
}

#[tokio::test]
async fn interval_and_off_modes_acknowledge_and_replay() {
    for mode in [FsyncMode::Interval, FsyncMode::Off] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        opts.fsync = mode;
        opts.fsync_interval = std::time::Duration::from_millis(20);
        {
            let db = Db::open(opts.clone()).unwrap();
            for i in 0..20 {
                db.append(batch(i)).await.unwrap();
            }
            if mode == FsyncMode::Interval {
                // The interval fsync runs in the background: wait for it (a minute only on a
                // hang) rather than hoping 100 ms were enough.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while db.stats().wal_fsyncs < 1 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                assert!(db.stats().wal_fsyncs >= 1);
            }
            db.close().await.unwrap();
        }
        let db = Db::open(opts).unwrap();
        assert_eq!(count(&everything(&db)), 40, "{mode:?}");
    }
}
