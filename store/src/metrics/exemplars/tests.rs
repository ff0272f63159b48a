#![allow(clippy::unwrap_used)]
use super::*;
use crate::storage::wal::segment::list_segments;

fn options(dir: &std::path::Path, max: usize) -> ExemplarOptions {
    let mut o = ExemplarOptions::new(dir);
    o.max_exemplars = max;
    o
}

fn item(job: &str, t: i64, trace: &str) -> SeriesExemplar {
    SeriesExemplar {
        series: Labels::from_pairs([("__name__", "req_seconds_bucket"), ("job", job), ("le", "0.5")]),
        exemplar: Exemplar {
            labels: Labels::from_pairs([("trace_id", trace), ("span_id", "00f067aa0ba902b7")]),
            value: 0.25,
            timestamp_ms: t,
        },
    }
}

fn everything() -> Vec<Vec<LabelMatcher>> {
    vec![vec![LabelMatcher::equal("__name__", "req_seconds_bucket")]]
}

fn traces(store: &ExemplarStore) -> Vec<String> {
    let mut out = Vec::new();
    for s in store.select(&everything(), i64::MIN, i64::MAX) {
        for e in s.exemplars {
            out.push(format!(
                "{}@{}",
                e.labels.get("trace_id").unwrap(),
                e.timestamp_ms
            ));
        }
    }
    out
}

#[tokio::test]
async fn acknowledged_exemplars_survive_a_crash_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = ExemplarStore::open(options(dir.path(), 100)).unwrap();
    let report = store
        .append(vec![
            item("a", 1000, "t1"),
            item("a", 2000, "t2"),
            item("b", 1500, "t3"),
        ])
        .await
        .unwrap();
    assert_eq!(report.accepted, 3);
    // No close and no drop (which would flush): what is acknowledged must be on disk.
    std::mem::forget(store);
    let store = ExemplarStore::open(options(dir.path(), 100)).unwrap();
    assert_eq!(traces(&store), vec!["t1@1000", "t2@2000", "t3@1500"]);
    assert_eq!(store.stats().replayed, 3);
    // The rules still hold against the replayed state.
    let again = store
        .append(vec![item("a", 2000, "t2"), item("a", 10, "old")])
        .await
        .unwrap();
    assert_eq!(again.accepted, 0);
    assert_eq!(
        again.refused,
        vec![(ExemplarRefusal::Duplicate, 1), (ExemplarRefusal::OutOfOrder, 1)]
    );
    assert_eq!(again.refused_total(), 1);
    assert!(again
        .first_error
        .unwrap()
        .contains("duplicate exemplar for series"));
}

#[tokio::test]
async fn torn_log_tail_loses_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = ExemplarStore::open(options(dir.path(), 100)).unwrap();
    store.append(vec![item("a", 1, "kept")]).await.unwrap();
    store.append(vec![item("a", 2, "torn")]).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let wal_dir = dir.path().join("wal").join("exemplars");
    let (_, last) = list_segments(&wal_dir).unwrap().pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(len - 3).unwrap();
    let store = ExemplarStore::open(options(dir.path(), 100)).unwrap();
    assert_eq!(traces(&store), vec!["kept@1"]);
}

#[tokio::test]
async fn checkpoint_bounds_the_log_and_replays_to_the_same_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path(), 3);
    // The smallest segments, so the log spans several of them before the checkpoint.
    o.wal_segment_bytes = 1;
    let store = ExemplarStore::open(o.clone()).unwrap();
    for t in 1..=10 {
        let job = if t % 3 == 0 { "b" } else { "a" };
        store.append(vec![item(job, t, &format!("x{t}"))]).await.unwrap();
    }
    let before = traces(&store);
    assert_eq!(before, vec!["x8@8", "x10@10", "x9@9"]);
    let wal_dir = dir.path().join("wal").join("exemplars");
    let segments_before = list_segments(&wal_dir).unwrap().len();
    store.maintain().unwrap();
    assert_eq!(store.stats().checkpoints, 1);
    assert!(list_segments(&wal_dir).unwrap().len() < segments_before);
    // Not due again until the log has grown by a buffer's worth.
    store.maintain().unwrap();
    assert_eq!(store.stats().checkpoints, 1);
    store.append(vec![item("a", 11, "x11")]).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let store = ExemplarStore::open(o).unwrap();
    assert_eq!(traces(&store), vec!["x10@10", "x11@11", "x9@9"]);
}

#[tokio::test]
async fn disabled_store_refuses_and_logs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = ExemplarStore::open(options(dir.path(), 0)).unwrap();
    let report = store.append(vec![item("a", 1, "x")]).await.unwrap();
    assert_eq!(report.refused, vec![(ExemplarRefusal::Disabled, 1)]);
    assert!(traces(&store).is_empty());
    assert_eq!(store.stats().appended_total, 0);
}
