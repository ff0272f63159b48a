//! Ingest-log positions written with appends (`append_at`) come back from every store's
//! WAL replay (the exemplar store's too), also after the segments that held them were deleted by a head cut or a
//! log commit: what a consumer of the ingest log relies on to skip redeliveries. Metric
//! and span blocks cut from a head say which positions they hold everything up to (what a
//! replacement on an empty disk resumes after).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use crate::common::{options, series, T0};
use crate::faults_traces_logs::{record, span};
use didban_store::logs::{LogOptions, LogStore};
use didban_store::traces::{TraceOptions, TraceStore};
use didban_store::{Db, LogPosition};

fn at(partition: u32, seq: u64) -> Option<LogPosition> {
    Some(LogPosition { partition, seq })
}

/// The data files of a WAL directory (segments), by name.
fn segments(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn metric_positions_survive_reopen_and_a_head_cut() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal/metrics");
    {
        let db = Db::open(options(dir.path())).unwrap();
        db.append_at(vec![series("up", "a", &[(T0, 1.0)])], at(1, 7))
            .await
            .unwrap();
        db.append_at(vec![series("up", "a", &[(T0 + 1000, 1.0)])], at(2, 3))
            .await
            .unwrap();
        db.append(vec![series("up", "a", &[(T0 + 2000, 1.0)])])
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    let db = Db::open(options(dir.path())).unwrap();
    assert_eq!(db.replayed_positions().get(1), Some(7));
    assert_eq!(db.replayed_positions().get(2), Some(3));
    assert_eq!(db.replayed_positions().get(0), None);
    db.append_at(vec![series("up", "a", &[(T0 + 3000, 1.0)])], at(1, 9))
        .await
        .unwrap();
    let before = segments(&wal);
    db.flush_head().unwrap();
    let after = segments(&wal);
    assert!(
        !after.contains(&before[0]),
        "the cut deleted no segment: {before:?} → {after:?}"
    );
    db.close().await.unwrap();
    drop(db);
    let db = Db::open(options(dir.path())).unwrap();
    assert_eq!(db.replayed_positions().get(1), Some(9));
    assert_eq!(db.replayed_positions().get(2), Some(3));
    // The block cut from that head holds everything up to those positions, and says so.
    assert_eq!(db.published_positions().get(1), Some(9));
    assert_eq!(db.published_positions().get(2), Some(3));
}

#[tokio::test]
async fn span_positions_survive_reopen_and_a_block_cut() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal/traces");
    {
        let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
        store.append_at(vec![span(1, 0)], at(0, 4)).await.unwrap();
        store.append_at(vec![span(2, 0)], at(0, 6)).await.unwrap();
        store.close().await.unwrap();
    }
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    assert_eq!(store.replayed_positions().get(0), Some(6));
    let before = segments(&wal);
    store.flush_head().unwrap();
    let after = segments(&wal);
    assert!(
        !after.contains(&before[0]),
        "the cut deleted no segment: {before:?} → {after:?}"
    );
    store.close().await.unwrap();
    drop(store);
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    assert_eq!(store.replayed_positions().get(0), Some(6));
    assert_eq!(store.stats().block_spans, 2);
    assert_eq!(store.published_positions().get(0), Some(6));
}

#[tokio::test]
async fn log_positions_survive_reopen_and_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal/logs");
    let options = || LogOptions::new(dir.path());
    {
        let store = Arc::new(LogStore::open(options()).unwrap());
        store.append_at(vec![record("one", 0)], at(3, 10)).await.unwrap();
        let before = segments(&wal);
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.commit())
            .await
            .unwrap()
            .unwrap();
        store.append_at(vec![record("two", 1)], at(3, 12)).await.unwrap();
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.commit())
            .await
            .unwrap()
            .unwrap();
        let after = segments(&wal);
        assert!(
            !after.contains(&before[0]),
            "the commits deleted no segment: {before:?} → {after:?}"
        );
        store.close().await.unwrap();
    }
    let store = LogStore::open(options()).unwrap();
    assert_eq!(store.replayed_positions().get(3), Some(12));
}

#[tokio::test]
async fn exemplar_positions_survive_reopen_and_a_checkpoint() {
    use didban_store::{Exemplar, ExemplarOptions, ExemplarStore, Labels, SeriesExemplar};
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        let mut o = ExemplarOptions::new(dir.path());
        o.max_exemplars = 2;
        o
    };
    let exemplar = |t: i64| SeriesExemplar {
        series: Labels::from_pairs([("__name__", "latency_bucket"), ("le", "1")]),
        exemplar: Exemplar {
            labels: Labels::from_pairs([("trace_id", "ab")]),
            value: 0.5,
            timestamp_ms: t,
        },
    };
    {
        let store = ExemplarStore::open(options()).unwrap();
        for (t, seq) in [(1, 3), (2, 5), (3, 8)] {
            let report = store.append_at(vec![exemplar(t)], at(1, seq)).await.unwrap();
            assert_eq!(report.accepted, 1);
        }
        // More logged than the buffer holds: a checkpoint replaces the older segments.
        store.maintain().unwrap();
        assert_eq!(store.stats().checkpoints, 1);
        store.close().await.unwrap();
    }
    {
        let store = ExemplarStore::open(options()).unwrap();
        assert_eq!(store.replayed_positions().get(1), Some(8));
        assert_eq!(store.stats().stored, 2);
        // Exemplars not from the ingest log, then a checkpoint after the reopen: the
        // replayed positions are carried into it.
        store.append(vec![exemplar(4), exemplar(5)]).await.unwrap();
        store.maintain().unwrap();
        store.close().await.unwrap();
    }
    let store = ExemplarStore::open(options()).unwrap();
    assert_eq!(store.replayed_positions().get(1), Some(8));
}
