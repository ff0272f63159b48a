//! Time sanity: samples far ahead of the server clock are refused one by one, and no sample
//! (accepted now or found in an old WAL or block at open) moves the acceptance window of
//! other series.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::*;
use didban_store::{Db, RejectReason};

const HOUR: i64 = 60 * MIN;
const YEAR: i64 = 365 * 24 * HOUR;

#[tokio::test]
async fn far_future_samples_are_refused_per_sample_and_normal_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    let now = didban_base::now_ms();
    for (i, ahead) in [YEAR, 7 * HOUR, i64::MAX - now].into_iter().enumerate() {
        let report = db
            .append(vec![
                series("evil", "x", &[(now + ahead, 1.0)]),
                series("up", "a", &[(now + i as i64, 1.0)]),
            ])
            .await
            .unwrap();
        assert_eq!(
            report.rejected,
            vec![(RejectReason::TooFarInFuture, 1)],
            "{ahead}"
        );
        assert!(report.first_error.unwrap().contains(r#"evil{job="x"}"#));
        // The rest of the batch is stored.
        assert_eq!(report.accepted, 1);
    }
    // A client a few minutes ahead is within the default allowance.
    let report = db
        .append(vec![series("skewed", "b", &[(now + 5 * MIN, 1.0)])])
        .await
        .unwrap();
    assert_eq!(report.accepted, 1);
    // ... and does not make anyone else's current sample too old.
    let report = db
        .append(vec![series("up", "a", &[(now + 10, 2.0)])])
        .await
        .unwrap();
    assert_eq!(report.accepted, 1, "{report:?}");
    assert_eq!(count(&everything(&db)), 5);
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_poisoned_wal_and_block_do_not_poison_the_window_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let now = didban_base::now_ms();
    {
        // What a store without time sanity wrote: one series a year ahead, in a block and
        // in the WAL.
        let mut unchecked = options(dir.path());
        unchecked.max_future = Duration::ZERO;
        let db = Db::open(unchecked).unwrap();
        db.append(vec![series("evil", "block", &[(now + YEAR, 1.0)])])
            .await
            .unwrap();
        db.flush_head().unwrap();
        let report = db
            .append(vec![series("evil", "wal", &[(now + YEAR, 1.0)])])
            .await
            .unwrap();
        assert_eq!(report.accepted, 1);
        // Without the server clock in the rule this is what broke every client.
        let report = db.append(vec![series("up", "a", &[(now, 1.0)])]).await.unwrap();
        assert_eq!(
            report.rejected,
            vec![],
            "the window follows the clock, not the data"
        );
        db.close().await.unwrap();
    }
    let db = Db::open(options(dir.path())).unwrap();
    let t = didban_base::now_ms().max(now + 1);
    let report = db
        .append(vec![
            series("up", "a", &[(t, 2.0)]),
            series("up", "new", &[(t - 5 * HOUR, 1.0)]),
            // The poisoned series itself takes samples at the server's time again.
            series("evil", "wal", &[(t, 3.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(report.accepted, 3, "{report:?}");
    let report = db
        .append(vec![series("up", "old", &[(t - 7 * HOUR, 1.0)])])
        .await
        .unwrap();
    assert_eq!(
        report.rejected,
        vec![(RejectReason::TooOld, 1)],
        "the age limit still holds"
    );
    db.close().await.unwrap();
}
