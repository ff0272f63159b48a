//! A real full disk under the metric WAL (a private 8 MiB tmpfs; needs root, skipped with
//! a message otherwise): appends are refused while it is full, work again once space is
//! freed, and a restart replays exactly the acknowledged samples.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use didban_store::{AppendError, Db, SeriesSamples};
use didban_testkit::tmpfs::Tmpfs;

fn batch(round: i64) -> Vec<SeriesSamples> {
    (0..20)
        .map(|k| {
            series(
                "disk",
                &format!("job-{round}-{k}"),
                &[(T0 + round * 1000, k as f64)],
            )
        })
        .collect()
}

#[tokio::test]
async fn a_full_disk_refuses_appends_and_they_resume_when_space_is_freed() {
    let fs = match Tmpfs::mount(8 * 1024 * 1024) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_refuses_appends_…: {why}");
            return;
        }
    };
    let data = fs.path().join("data");
    let mut opts = options(&data);
    opts.wal_segment_bytes = 64 * 1024;
    let db = Db::open(opts.clone()).unwrap();
    let mut acknowledged = 0usize;
    for round in 0..5 {
        acknowledged += db.append(batch(round)).await.unwrap().accepted as usize;
    }
    let filler = fs.fill("filler");
    let mut round = 5;
    let error = loop {
        match db.append(batch(round)).await {
            Ok(report) => acknowledged += report.accepted as usize,
            Err(e) => break e,
        }
        round += 1;
        assert!(round < 10_000, "the disk never filled up");
    };
    assert!(
        matches!(&error, AppendError::Wal(e) if e.raw_os_error() == Some(28)
        || e.to_string().contains("No space left")),
        "{error:?}"
    );
    assert!(db.wal_fault().is_some());
    assert_eq!(
        count(&everything(&db)),
        acknowledged,
        "a refused append left samples"
    );
    assert_eq!(
        db.stats().head_series as usize,
        acknowledged,
        "a refused append left series"
    );
    // Still full: still refused, still no trace.
    assert!(db.append(batch(round + 1)).await.is_err());
    assert_eq!(db.stats().head_series as usize, acknowledged);

    std::fs::remove_file(&filler).unwrap();
    for r in round + 2..round + 6 {
        acknowledged += db.append(batch(r)).await.unwrap().accepted as usize;
    }
    assert_eq!(db.wal_fault(), None);
    let before = everything(&db);
    assert_eq!(count(&before), acknowledged);
    db.close().await.unwrap();
    drop(db);

    let db = Db::open(opts).unwrap();
    assert_same(&everything(&db), &before);
    db.close().await.unwrap();
}
