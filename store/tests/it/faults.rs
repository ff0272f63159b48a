//! I/O faults injected into the metric WAL: a failed write, fsync, segment creation or
//! directory fsync refuses the appends it hits, leaves no trace of them (no series, no
//! samples, no bytes in the log), and the next append works again without a restart.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use crate::common::*;
use didban_store::{AppendError, Db, FsyncMode, SeriesLimits, SeriesSamples, WalFaultOp};
use didban_testkit::wait::{until, until_async, HANG};

fn job(name: &str, i: i64) -> SeriesSamples {
    series("req", name, &[(T0 + i * 1000, i as f64)])
}

/// Appends that must fail with a WAL error naming `expect`.
async fn refused(db: &Db, batch: Vec<SeriesSamples>, expect: &str) {
    match db.append(batch).await {
        Err(AppendError::Wal(e)) => assert!(e.to_string().contains(expect), "{e}"),
        other => panic!("expected a WAL error naming {expect:?}, got {other:?}"),
    }
}

fn reopen_and_compare(dir: &Path, expected: &[SeriesSamples]) -> Db {
    let db = Db::open(options(dir)).unwrap();
    assert_same(&everything(&db), expected);
    assert_eq!(
        db.stats().wal_torn_tail_repairs,
        0,
        "a sealed segment has no torn tail"
    );
    db
}

#[tokio::test]
async fn a_failed_write_or_fsync_is_refused_cut_off_and_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    db.append(vec![job("a", 0), job("b", 0)]).await.unwrap();
    let before = everything(&db);

    // Faults last until switched off, so the writer's own recovery probe cannot end them
    // early.
    for op in [WalFaultOp::Write, WalFaultOp::Sync] {
        db.inject_wal_fault(op, u32::MAX);
        refused(&db, vec![job("a", 1), job("new", 1)], "No space left on device").await;
        refused(&db, vec![job("new", 1)], "No space left on device").await;
        db.inject_wal_fault(op, 0);
        assert_same(&everything(&db), &before);
        assert_eq!(db.stats().head_series, 2, "{op:?}: the refused series is gone");
        // (The fault itself may already be over: the writer probes on its own.)
    }
    assert!(db.stats().wal_errors >= 4);

    // The cause is gone: the very next append works, on a new segment.
    db.append(vec![job("a", 2), job("new", 2)]).await.unwrap();
    assert_eq!(db.wal_fault(), None);
    assert!(db.stats().wal_recoveries >= 1);
    let acknowledged = everything(&db);
    assert_eq!(count(&acknowledged), 4);
    db.close().await.unwrap();
    drop(db);
    reopen_and_compare(dir.path(), &acknowledged);
}

#[tokio::test]
async fn segment_creation_failures_do_not_wedge_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    db.append(vec![job("a", 0)]).await.unwrap();
    db.inject_wal_fault(WalFaultOp::Write, 1);
    refused(&db, vec![job("a", 1)], "No space left on device").await;
    // The next segment cannot be created (no file descriptors), then its directory entry
    // cannot be made durable: both refuse the append, neither wedges the writer.
    db.inject_wal_fault(WalFaultOp::CreateSegment, u32::MAX);
    refused(&db, vec![job("a", 2)], "Too many open files").await;
    db.inject_wal_fault(WalFaultOp::SyncDir, u32::MAX);
    db.inject_wal_fault(WalFaultOp::CreateSegment, 0);
    refused(&db, vec![job("a", 3)], "cannot sync WAL directory").await;
    // A segment file left behind by such an attempt (here: planted) is reused, not a wall.
    let next = wal_segments(dir.path()).len() as u64 + 1;
    let leftover = dir.path().join(format!("wal/metrics/{next:08}"));
    std::fs::write(&leftover, b"").unwrap();
    db.inject_wal_fault(WalFaultOp::SyncDir, 0);
    db.append(vec![job("a", 4)]).await.unwrap();
    let acknowledged = everything(&db);
    assert_eq!(count(&acknowledged), 2);
    db.close().await.unwrap();
    drop(db);
    reopen_and_compare(dir.path(), &acknowledged);
}

#[tokio::test]
async fn refused_appends_count_toward_no_series_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.limits = SeriesLimits {
        max_series_per_metric: 20,
        ..SeriesLimits::default()
    };
    let db = Db::open(opts).unwrap();
    db.append(vec![job("seed", 0)]).await.unwrap();
    // A long fault: every write fails while clients keep sending new series.
    db.inject_wal_fault(WalFaultOp::Write, u32::MAX);
    for i in 0..100 {
        let batch = (0..5).map(|k| job(&format!("fault-{i}-{k}"), 1)).collect();
        refused(&db, batch, "No space left on device").await;
    }
    assert_eq!(db.stats().head_series, 1, "refused requests left series behind");
    let segments = wal_segments(dir.path()).len();
    assert!(segments <= 3, "a long fault left {segments} segment files");
    assert_eq!(count(&everything(&db)), 1);

    db.inject_wal_fault(WalFaultOp::Write, 0);
    // All 19 remaining series of the limit are still free.
    let batch: Vec<_> = (0..19).map(|k| job(&format!("after-{k}"), 2)).collect();
    let report = db.append(batch).await.unwrap();
    assert_eq!(report.accepted, 19, "{report:?}");
    assert_eq!(db.stats().head_series, 20);
}

#[tokio::test]
async fn the_writer_recovers_on_its_own_without_appends() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    db.inject_wal_fault(WalFaultOp::Sync, 1);
    refused(&db, vec![job("a", 0)], "No space left on device").await;
    // Readiness must not wait for traffic that a not-ready server may never get.
    until("the WAL fault to clear by itself", HANG, || {
        match db.wal_fault() {
            None => Ok(()),
            Some(f) => Err(f),
        }
    });
    assert_eq!(db.stats().head_series, 0);
    db.append(vec![job("a", 1)]).await.unwrap();
}

#[tokio::test]
async fn an_append_abandoned_by_its_caller_is_rolled_back_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    db.append(vec![job("seed", 0)]).await.unwrap();
    db.inject_wal_fault(WalFaultOp::Write, u32::MAX);
    // The caller (a client that disconnected) stops waiting after the record went out.
    {
        let mut abandoned = Box::pin(db.append(vec![job("gone", 1), job("seed", 1)]));
        let _ = tokio::time::timeout(std::time::Duration::ZERO, &mut abandoned).await;
    }
    // The next append settles it once the WAL's refusal is there.
    let mut round = 2;
    until_async("the abandoned append to be rolled back", HANG, || {
        round += 1;
        let db = &db;
        let r = round;
        async move {
            let _ = db.append(vec![job("seed", r)]).await;
            let stats = db.stats();
            if stats.head_series == 1 && count(&everything(db)) == 1 {
                Ok(())
            } else {
                Err(format!(
                    "{} series, {} samples",
                    stats.head_series,
                    count(&everything(db))
                ))
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_head_cut_after_a_fault_writes_only_acknowledged_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    db.append(vec![job("seed", 0)]).await.unwrap();
    db.inject_wal_fault(WalFaultOp::Write, u32::MAX);
    refused(
        &db,
        vec![job("gone", 1), job("seed", 1)],
        "No space left on device",
    )
    .await;
    assert!(db.flush_head().is_err(), "no cut while the WAL cannot rotate");
    db.inject_wal_fault(WalFaultOp::Write, 0);
    db.flush_head().unwrap();
    assert_eq!(block_dirs(dir.path()).len(), 1);
    let acknowledged = everything(&db);
    assert_eq!(count(&acknowledged), 1);
    db.close().await.unwrap();
    drop(db);
    reopen_and_compare(dir.path(), &acknowledged);
}

#[tokio::test]
async fn every_fsync_mode_recovers_from_a_failed_write() {
    for mode in [FsyncMode::Interval, FsyncMode::Off] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        opts.fsync = mode;
        let db = Db::open(opts).unwrap();
        db.append(vec![job("a", 0)]).await.unwrap();
        db.inject_wal_fault(WalFaultOp::Write, u32::MAX);
        refused(&db, vec![job("a", 1), job("new", 1)], "No space left on device").await;
        db.inject_wal_fault(WalFaultOp::Write, 0);
        db.append(vec![job("a", 2), job("new", 2)]).await.unwrap();
        let acknowledged = everything(&db);
        assert_eq!(count(&acknowledged), 3, "{mode:?}");
        db.close().await.unwrap();
        drop(db);
        reopen_and_compare(dir.path(), &acknowledged);
    }
}
