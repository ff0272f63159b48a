//! I/O faults injected into the trace and log WALs: a refused batch leaves nothing
//! visible (no spans in the head, trace lookups or blocks; no searchable log records), and
//! the client's retry after the fault stores exactly one copy, also across a restart.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use didban_store::logs::{LogOptions, LogQuery, LogRecord, LogStore};
use didban_store::traces::{Span, TraceOptions, TraceStore};
use didban_store::{AppendError, WalFaultOp, WalHealth};
use didban_testkit::wait::{until, HANG};

const T0: i64 = 1_764_115_200_000_000_000; // 2025-11-26T00:00:00Z

/// Span `n` of trace `trace` (service `svc<trace>`), starting at `T0 + n` ns.
pub(crate) fn span(trace: u32, n: u32) -> Span {
    Span {
        trace_id: format!("{trace:032x}"),
        span_id: format!("{:016x}", u64::from(trace) << 16 | u64::from(n)),
        parent_span_id: String::new(),
        trace_state: String::new(),
        name: "GET".into(),
        kind: 2,
        service: format!("svc{trace}"),
        start_unix_nano: T0 + i64::from(n),
        duration_nano: 1000,
        status_code: 0,
        status_message: String::new(),
        attributes: Default::default(),
        resource: Default::default(),
        scope_name: String::new(),
        scope_version: String::new(),
        events: Vec::new(),
        links: Vec::new(),
    }
}

fn batch(trace: u32, spans: u32) -> Vec<Span> {
    (0..spans).map(|n| span(trace, n)).collect()
}

fn trace_len(store: &TraceStore, trace: u32) -> usize {
    store.trace(&format!("{trace:032x}")).unwrap().len()
}

/// A log record of service `checkout` with `body`, at `T0 + i` ns.
pub(crate) fn record(body: &str, i: i64) -> LogRecord {
    LogRecord {
        timestamp_unix_nano: T0 + i,
        observed_unix_nano: T0 + i,
        severity_number: 9,
        severity_text: "INFO".into(),
        service: "checkout".into(),
        body: body.into(),
        attributes: Default::default(),
        resource: Default::default(),
        trace_id: String::new(),
        span_id: String::new(),
        scope_name: String::new(),
    }
}

fn records(body: &str, n: i64) -> Vec<LogRecord> {
    (0..n).map(|i| record(body, i)).collect()
}

fn hits(store: &LogStore, word: &str) -> usize {
    let q = LogQuery {
        query: word.into(),
        trace_id: None,
        start_unix_nano: T0 - 1,
        end_unix_nano: T0 + 1_000_000,
        limit: 1000,
        cursor: None,
    };
    store.search(&q).unwrap().records.len()
}

async fn commit(store: &Arc<LogStore>) {
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.commit())
        .await
        .unwrap()
        .unwrap();
}

fn expect_wal_error<T: std::fmt::Debug>(result: Result<T, AppendError>) {
    match result {
        Err(AppendError::Wal(e)) => assert!(e.to_string().contains("No space left"), "{e}"),
        other => panic!("expected a WAL error, got {other:?}"),
    }
}

/// Polls `fut` once and drops it: a client that disconnects while its append waits for
/// the WAL. Returns whether it had finished.
fn poll_once_and_abandon<F: Future>(fut: F) -> bool {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(fut.as_mut().poll(&mut cx), Poll::Ready(_))
}

/// Starts an append with `start`, abandons it, and clears the write fault once the WAL
/// has refused it (a failure counted while the WAL was healthy before can only be its).
fn abandon_under_write_fault(
    health: impl Fn() -> WalHealth,
    inject: impl Fn(WalFaultOp, u32),
    start: impl FnOnce() -> bool,
) {
    until("the WAL is out of any earlier fault", HANG, || {
        match health().fault {
            None => Ok(()),
            Some(f) => Err(f),
        }
    });
    let errors = health().errors;
    inject(WalFaultOp::Write, u32::MAX);
    start();
    until("the WAL refused the abandoned append", HANG, || {
        if health().errors > errors {
            Ok(())
        } else {
            Err("no failure yet".into())
        }
    });
    inject(WalFaultOp::Write, 0);
}

#[tokio::test]
async fn a_refused_span_batch_is_invisible_and_its_retry_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    store.append(batch(1, 3)).await.unwrap();

    for op in [WalFaultOp::Write, WalFaultOp::Sync] {
        store.inject_wal_fault(op, u32::MAX);
        expect_wal_error(store.append(batch(2, 5)).await);
        store.inject_wal_fault(op, 0);
        assert_eq!(trace_len(&store, 2), 0, "{op:?}: refused spans are not visible");
        assert_eq!(store.stats().head_spans, 3, "{op:?}");
        assert!(!store.services().contains_key("svc2"), "{op:?}");
    }

    // The client retries once the cause is gone: exactly one copy.
    assert_eq!(store.append(batch(2, 5)).await.unwrap(), 5);
    assert_eq!(trace_len(&store, 2), 5);
    assert_eq!(store.stats().head_spans, 8);

    // The WAL holds exactly the acknowledged batches, and a block exactly them too.
    store.close().await.unwrap();
    drop(store);
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    assert_eq!(store.stats().head_spans, 8);
    assert_eq!(store.stats().wal_replayed_records, 2);
    store.flush_head().unwrap();
    let stats = store.stats();
    assert_eq!((stats.head_spans, stats.block_spans), (0, 8));
    assert_eq!(trace_len(&store, 2), 5);
}

#[tokio::test]
async fn an_abandoned_refused_span_batch_never_reaches_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    store.append(batch(1, 3)).await.unwrap();
    abandon_under_write_fault(
        || store.wal_health(),
        |op, n| store.inject_wal_fault(op, n),
        || poll_once_and_abandon(store.append(batch(2, 4))),
    );
    assert_eq!(trace_len(&store, 2), 0);

    // The cut settles the abandoned batch (its answer comes before the rotation's).
    store.flush_head().unwrap();
    let stats = store.stats();
    assert_eq!((stats.head_spans, stats.head_bytes, stats.block_spans), (0, 0, 3));
    assert_eq!(trace_len(&store, 2), 0);

    // An abandoned batch the WAL acknowledged is kept, as it is in the WAL.
    poll_once_and_abandon(store.append(batch(3, 2)));
    store.flush_head().unwrap();
    assert_eq!(store.stats().block_spans, 5);
    assert_eq!(trace_len(&store, 3), 2);
}

#[tokio::test]
async fn a_refused_log_batch_is_never_searchable_and_its_retry_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(LogOptions::new(dir.path())).unwrap());
    store.append(records("before", 2)).await.unwrap();
    commit(&store).await;

    for op in [WalFaultOp::Write, WalFaultOp::Sync] {
        store.inject_wal_fault(op, u32::MAX);
        expect_wal_error(store.append(records("refused", 3)).await);
        store.inject_wal_fault(op, 0);
        commit(&store).await;
        assert_eq!(
            hits(&store, "refused"),
            0,
            "{op:?}: a refused batch is not searchable"
        );
    }

    // Abandoned while the WAL refuses it: taken back by the next commit.
    abandon_under_write_fault(
        || store.wal_health(),
        |op, n| store.inject_wal_fault(op, n),
        || poll_once_and_abandon(store.append(records("refused", 3))),
    );
    commit(&store).await;
    assert_eq!(
        hits(&store, "refused"),
        0,
        "an abandoned refused batch is not searchable"
    );

    // The client retries once the cause is gone: exactly one copy, also after a restart.
    assert_eq!(store.append(records("refused", 3)).await.unwrap(), 3);
    commit(&store).await;
    assert_eq!(hits(&store, "refused"), 3);
    assert_eq!(hits(&store, "before"), 2);
    assert_eq!(store.stats().committed_records, 5);
    store.close().await.unwrap();
    drop(store);
    let store = LogStore::open(LogOptions::new(dir.path())).unwrap();
    assert_eq!(hits(&store, "refused"), 3);
    assert_eq!(store.stats().committed_records, 5);
}
