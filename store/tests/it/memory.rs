//! The head memory budget: a cardinality burst refuses new series first while existing
//! series keep flowing, a cut gives the memory back, idle series leave the head, and
//! nothing replayed from the WAL keeps ingest refused.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::*;
use didban_store::{AppendError, Db, DbOptions, RejectReason};

/// A budget a few hundred small series fill.
const BUDGET: u64 = 128 * 1024;

fn small_budget(dir: &std::path::Path) -> DbOptions {
    let mut o = options(dir);
    o.head_memory_bytes = BUDGET;
    o
}

/// Appends one new series per call (`burst<i>`) until the head refuses one for memory;
/// returns how many were accepted.
async fn fill_with_new_series(db: &Db, t: i64) -> usize {
    for i in 0..100_000 {
        let report = db
            .append(vec![series("burst", &format!("b{i}"), &[(t, 1.0)])])
            .await
            .unwrap();
        if report.accepted == 0 {
            assert_eq!(report.rejected, vec![(RejectReason::HeadMemoryLimit, 1)]);
            let msg = report.first_error.unwrap();
            assert!(msg.contains("head memory limit"), "{msg}");
            assert!(
                msg.contains(&format!("b{i}")),
                "the refusal names the series: {msg}"
            );
            return i;
        }
    }
    panic!("the head never refused a new series");
}

#[tokio::test]
async fn burst_refuses_new_series_while_existing_ones_flow_until_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(small_budget(dir.path())).unwrap();
    let t = didban_base::now_ms();
    db.append(vec![series("up", "steady", &[(t, 1.0)])])
        .await
        .unwrap();

    let created = fill_with_new_series(&db, t).await;
    assert!(created > 10, "only {created} series fit in {BUDGET} bytes");
    let stats = db.stats();
    assert_eq!(
        stats.head_series as usize,
        created + 1,
        "a refused series is not kept"
    );
    assert!(
        stats.head_bytes >= BUDGET * 9 / 10,
        "{} of {BUDGET}",
        stats.head_bytes
    );

    // Existing series keep being accepted, new ones in the same batch are refused.
    let wal_before = db.stats().wal_bytes_written;
    let report = db
        .append(vec![
            series("up", "steady", &[(t + 1000, 2.0)]),
            series("burst", "b0", &[(t + 1000, 2.0)]),
            series("burst", "newcomer", &[(t + 1000, 2.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(report.accepted, 2);
    assert_eq!(report.rejected, vec![(RejectReason::HeadMemoryLimit, 1)]);
    assert!(db.stats().wal_bytes_written > wal_before);

    // The head passed 80% of the budget: the maintenance loop was asked to cut now.
    tokio::time::timeout(Duration::from_secs(10), db.cut_requested())
        .await
        .expect("an append at the budget asks for a cut");

    // The cut writes the head as a block; the memory comes back and new series get in.
    db.maintain(t).unwrap();
    assert_eq!(db.stats().blocks_cut, 1);
    assert_eq!(
        count(&everything(&db)),
        created + 3,
        "the cut head stays queryable"
    );
    // A cut for memory keeps only recurring series (two samples here): the burst's
    // one-off series left with it.
    assert_eq!(db.stats().head_series, 2);
    let report = db
        .append(vec![series("burst", "newcomer", &[(t + 2000, 3.0)])])
        .await
        .unwrap();
    assert_eq!(report.accepted, 1, "{report:?}");

    // Series idle since the last cut leave the head at the next one.
    db.append(vec![series("up", "steady", &[(t + 3000, 3.0)])])
        .await
        .unwrap();
    db.flush_head().unwrap();
    let stats = db.stats();
    assert_eq!(
        stats.head_series, 2,
        "only the series written since the first cut stay"
    );
    assert!(stats.head_bytes < BUDGET / 10, "{} bytes left", stats.head_bytes);
    let report = db
        .append(vec![series("burst", "after", &[(t + 4000, 1.0)])])
        .await
        .unwrap();
    assert_eq!(report.accepted, 1);
    db.close().await.unwrap();
}

#[tokio::test]
async fn existing_series_are_refused_whole_only_past_125_percent() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(small_budget(dir.path())).unwrap();
    let t = didban_base::now_ms();
    let mut i = 0i64;
    let (used, limit) = loop {
        let points: Vec<(i64, f64)> = (0..64).map(|k| (t + i * 64 + k, 1.0)).collect();
        match db.append(vec![series("up", "one", &points)]).await {
            Ok(r) => assert_eq!(r.accepted, 64),
            Err(AppendError::Overloaded { used, limit }) => break (used, limit),
            Err(e) => panic!("{e}"),
        }
        i += 1;
        assert!(i < 10_000, "never overloaded");
    };
    assert_eq!(limit, BUDGET);
    assert!(used > BUDGET + BUDGET / 4, "refused at {used} of {limit}");
    // The next sample of the series: newer than every stored one, and within
    // `max_future` of the clock (the loop moves 64 ms per round).
    let next = t + (i + 1) * 64;
    let wal_bytes = db.stats().wal_bytes_written;
    let before = everything(&db);
    let err = db
        .append(vec![series("up", "one", &[(next, 1.0)])])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("memory limit"), "{err}");
    assert_eq!(
        db.stats().wal_bytes_written,
        wal_bytes,
        "nothing written to the WAL"
    );
    assert_same(&everything(&db), &before);
    db.maintain(t).unwrap();
    let r = db
        .append(vec![series("up", "one", &[(next, 1.0)])])
        .await
        .unwrap();
    assert_eq!(r.accepted, 1);
}

/// The wedge: a head over its budget holding only series (no samples) was never
/// cut, refused everything and came back the same after a restart.
#[tokio::test]
async fn restart_over_the_budget_cuts_instead_of_refusing() {
    let dir = tempfile::tempdir().unwrap();
    let t = didban_base::now_ms();
    let mut roomy = options(dir.path());
    roomy.head_memory_bytes = 64 * 1024 * 1024;
    {
        let db = Db::open(roomy).unwrap();
        for i in 0..2_000 {
            db.append(vec![series("burst", &format!("b{i}"), &[(t, 1.0)])])
                .await
                .unwrap();
        }
        // The cut leaves 2,000 sample-less series in the head and in the WAL checkpoint.
        db.flush_head().unwrap();
        assert_eq!(db.stats().head_series, 2_000);
        assert_eq!(db.stats().head_samples, 0);
        db.append(vec![series("up", "steady", &[(t + 1000, 1.0)])])
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    // Reopened with a budget those series exceed: the replayed head is cut at open.
    let db = Db::open(small_budget(dir.path())).unwrap();
    let stats = db.stats();
    assert!(stats.head_bytes < BUDGET, "{} bytes after open", stats.head_bytes);
    assert_eq!(
        stats.head_series, 0,
        "idle series and one-off series left the head at the open cut"
    );
    let report = db
        .append(vec![
            series("burst", "b1", &[(t + 2000, 2.0)]),
            series("burst", "fresh", &[(t + 2000, 2.0)]),
            series("up", "steady", &[(t + 2000, 2.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(report.accepted, 3, "{report:?}");
    assert_eq!(
        count(&everything(&db)),
        2_000 + 4,
        "nothing acknowledged was lost"
    );
    db.close().await.unwrap();
    // And a second restart finds nothing to refuse either.
    let db = Db::open(small_budget(dir.path())).unwrap();
    let report = db
        .append(vec![series("burst", "fresh2", &[(t + 3000, 2.0)])])
        .await
        .unwrap();
    assert_eq!(report.accepted, 1);
}
