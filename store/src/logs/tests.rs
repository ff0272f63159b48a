#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::{Map, Value};

const DAY: i64 = 86_400 * 1_000_000_000;
const T0: i64 = 1_764_115_200_000_000_000; // 2025-11-26T00:00:00Z

fn rec(t: i64, sev: &str, service: &str, body: &str, status: i64, trace: &str) -> LogRecord {
    let mut attributes = Map::new();
    attributes.insert("http.status_code".into(), Value::from(status));
    attributes.insert("http.method".into(), Value::from("GET"));
    LogRecord {
        timestamp_unix_nano: t,
        observed_unix_nano: t,
        severity_number: if sev == "ERROR" { 17 } else { 9 },
        severity_text: sev.into(),
        service: service.into(),
        body: body.into(),
        attributes,
        resource: Map::new(),
        trace_id: trace.into(),
        span_id: String::new(),
        scope_name: String::new(),
    }
}

fn q(query: &str) -> LogQuery {
    LogQuery {
        query: query.into(),
        trace_id: None,
        start_unix_nano: T0 - DAY,
        end_unix_nano: T0 + 3 * DAY,
        limit: 100,
        cursor: None,
    }
}

async fn maintain(store: &Arc<LogStore>, now: i64) {
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.maintain(now))
        .await
        .unwrap();
}

async fn commit(store: &Arc<LogStore>) {
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.commit())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn search_histogram_top_values_tail_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(LogOptions::new(dir.path())).unwrap());
    let start_seq = store.tail_start();
    let mut batch = Vec::new();
    for i in 0..30i64 {
        let sev = if i % 3 == 0 { "ERROR" } else { "INFO" };
        let service = if i % 2 == 0 { "checkout" } else { "cart" };
        // Spread over two days.
        let t = T0 + i * 3_600_000_000_000;
        batch.push(rec(
            t,
            sev,
            service,
            &format!("payment failed for order {i}"),
            200 + i,
            "",
        ));
    }
    batch.push(rec(
        T0 + 5,
        "INFO",
        "cart",
        "connection reset by peer",
        500,
        &"ab".repeat(16),
    ));
    store.append(batch).await.unwrap();
    assert!(
        store.search(&q("payment")).unwrap().records.is_empty(),
        "not committed yet"
    );
    commit(&store).await;
    assert_eq!(std::fs::read_dir(dir.path().join("logs")).unwrap().count(), 2);

    let page = store.search(&q("payment")).unwrap();
    assert_eq!(page.records.len(), 30);
    assert!(page.records[0].timestamp_unix_nano > page.records[29].timestamp_unix_nano);
    assert_eq!(
        store
            .search(&q("service:checkout AND severity_text:ERROR"))
            .unwrap()
            .records
            .len(),
        5
    );
    assert_eq!(
        store
            .search(&q("attributes.http.status_code:500"))
            .unwrap()
            .records
            .len(),
        1
    );
    assert_eq!(store.search(&q("\"reset by peer\"")).unwrap().records.len(), 1);
    assert_eq!(store.search(&q("\"peer by reset\"")).unwrap().records.len(), 0);
    assert_eq!(
        store
            .search(&q("attributes.http.method:GET"))
            .unwrap()
            .records
            .len(),
        31
    );
    let mut by_trace = q("");
    by_trace.trace_id = Some("ab".repeat(16));
    assert_eq!(store.search(&by_trace).unwrap().records.len(), 1);
    let err = store.search(&q("service:(")).unwrap_err();
    assert!(matches!(err, LogError::Query { .. }), "{err}");

    // Pagination walks every record exactly once.
    let mut query = q("payment");
    query.limit = 7;
    let mut seen = Vec::new();
    loop {
        let page = store.search(&query).unwrap();
        for r in &page.records {
            seen.push(r.body.clone());
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(Cursor::decode(&c).unwrap()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 30);

    let mut range = q("");
    range.start_unix_nano = T0;
    range.end_unix_nano = T0 + DAY - 1;
    let hist = store.histogram(&range, 6 * 3_600_000).unwrap();
    assert_eq!(hist.len(), 4, "{hist:?}");
    assert_eq!(hist[0].count, 7);
    let errors: u64 = hist
        .iter()
        .map(|b| b.by_severity.get("ERROR").copied().unwrap_or(0))
        .sum();
    assert_eq!(errors, 8);

    let top = store.top_values(&q(""), "service", 10).unwrap();
    assert_eq!(top[0], ("cart".to_string(), 16));
    let top = store.top_values(&q(""), "attributes.http.method", 10).unwrap();
    assert_eq!(top, vec![("GET".to_string(), 31)]);

    let (tail, last) = store.tail("severity_text:ERROR", start_seq, 100).unwrap();
    assert_eq!(tail.len(), 10);
    let (tail, _) = store.tail("", last, 100).unwrap();
    assert!(tail.len() < 31);

    // Uncommitted records come back from the WAL; committed ones are not indexed twice.
    store
        .append(vec![rec(T0 + 99, "WARN", "cart", "late record", 200, "")])
        .await
        .unwrap();
    store.close().await.unwrap();
    drop(store);
    let store = Arc::new(LogStore::open(LogOptions::new(dir.path())).unwrap());
    assert_eq!(store.stats().wal_replayed_records, 1);
    commit(&store).await;
    assert_eq!(store.search(&q("")).unwrap().records.len(), 32);
    assert_eq!(store.stats().committed_records, 32);

    // Retention by days deletes whole day folders.
    maintain(&store, T0 + 10 * DAY).await;
    assert_eq!(store.stats().days, 0);
    assert_eq!(store.stats().retention_deleted_days, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_retention_deletes_the_oldest_days_but_never_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LogOptions::new(dir.path());
    options.retention_days = 0;
    options.retention_bytes = 1;
    let store = Arc::new(LogStore::open(options).unwrap());
    for d in 0..3 {
        store
            .append(vec![rec(T0 + d * DAY, "INFO", "a", "hello", 200, "")])
            .await
            .unwrap();
    }
    commit(&store).await;
    assert_eq!(store.stats().days, 3);
    maintain(&store, T0 + 3 * DAY).await;
    assert_eq!(store.stats().days, 1);
    let page = store.search(&q("hello")).unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].timestamp_unix_nano, T0 + 2 * DAY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backlog_refuses_batches_until_it_drains() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LogOptions::new(dir.path());
    options.max_pending_bytes = 1000;
    let store = Arc::new(LogStore::open(options).unwrap());
    // A batch in flight holding 800 of the 1000 bytes.
    let in_flight = store.admit(800).unwrap();
    assert_eq!(store.pending_bytes(), 800);
    match store.admit(300) {
        Err(AppendError::Backlog { used, limit }) => assert_eq!((used, limit), (800, 1000)),
        other => panic!("expected a backlog refusal, got {:?}", other.map(|_| ())),
    }
    let refused = store
        .append(vec![rec(T0, "INFO", "web", "refused while busy", 200, "")])
        .await;
    assert!(matches!(refused, Err(AppendError::Backlog { .. })), "{refused:?}");
    assert_eq!(
        store.pending_bytes(),
        800,
        "a refused batch leaves nothing counted"
    );
    drop(in_flight);
    assert_eq!(store.pending_bytes(), 0);
    // Nothing waiting: even a batch larger than the limit goes through.
    let big: Vec<LogRecord> = (0..50)
        .map(|i| {
            rec(
                T0 + i,
                "INFO",
                "web",
                &format!("accepted {i} {}", "x".repeat(40)),
                200,
                "",
            )
        })
        .collect();
    assert_eq!(store.append(big).await.unwrap(), 50);
    assert_eq!(store.pending_bytes(), 0);
    commit(&store).await;
    assert_eq!(store.search(&q("accepted")).unwrap().records.len(), 50);
    assert!(store.search(&q("refused")).unwrap().records.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_across_search_windows_are_complete_and_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(LogOptions::new(dir.path())).unwrap());
    // Two records every 7 minutes over one day (same timestamps in pairs), so pages cross
    // the 15-minute first window and the longer ones after it; every third one matches.
    let mut batch = Vec::new();
    let step = 7 * 60 * 1_000_000_000i64;
    let mut expected = 0;
    for i in 0..(DAY / step) {
        for copy in 0..2 {
            let word = if i % 3 == 0 { "needle" } else { "hay" };
            batch.push(rec(
                T0 + i * step,
                "INFO",
                "web",
                &format!("{word} {i} {copy}"),
                200,
                "",
            ));
            if i % 3 == 0 {
                expected += 1;
            }
        }
    }
    store.append(batch).await.unwrap();
    commit(&store).await;
    let mut query = q("needle");
    query.limit = 7;
    let mut seen: Vec<(i64, String)> = Vec::new();
    loop {
        let page = store.search(&query).unwrap();
        for r in &page.records {
            seen.push((r.timestamp_unix_nano, r.body.clone()));
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(Cursor::decode(&c).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected, "every match exactly once");
    let mut bodies: Vec<&String> = seen.iter().map(|(_, b)| b).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), expected, "no record twice");
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    assert!(seen.iter().all(|(_, b)| b.starts_with("needle")));
}
