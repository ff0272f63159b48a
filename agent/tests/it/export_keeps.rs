//! The agent keeps what it can keep (issue 13): every refusal that may pass — 401, 403, 404,
//! 408, 429, 5xx, gRPC codes alike — keeps the batch buffered and retried, logged once per
//! change of state; only a 400 / `INVALID_ARGUMENT` batch and items rejected in a partial
//! success are dropped, and counted by reason; a full buffer drops its oldest records, counted
//! in items; log batches stay under `export.batch_max_bytes`. (Against the collector's own
//! receivers and token check: `collector/tests/it/agent_delivery.rs`.)

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::common::otlp::{start_grpc, start_http, Recorder, Reply};
use didban_agent::config::{ExportConfig, LogsConfig, Protocol, StartAt};
use didban_agent::export::encode::ResourceInfo;
use didban_agent::export::reason::Reason;
use didban_agent::export::{ExportSnapshot, Exporter};
use didban_agent::logs::LogTailer;
use didban_agent::model::Sample;
use didban_testkit::wait::{until_async, HANG};
use prost::Message;
use tonic::Code;

fn resource() -> ResourceInfo {
    ResourceInfo {
        service_name: "didban-agent".into(),
        host_name: "test-host".into(),
    }
}

fn config(endpoint: String) -> ExportConfig {
    ExportConfig {
        endpoint,
        flush_interval: Duration::from_millis(20),
        retry_initial_backoff: Duration::from_millis(10),
        retry_max_backoff: Duration::from_millis(50),
        retry_after_max: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        ..ExportConfig::default()
    }
}

fn batch(first: usize, n: usize) -> Vec<Sample> {
    (first..first + n)
        .map(|i| {
            Sample::counter(
                "keep_events_total",
                &[("seq", &i.to_string())],
                1.0,
                1_700_000_000_000,
            )
        })
        .collect()
}

/// seq → how many times it arrived.
fn arrivals(rec: &Recorder) -> BTreeMap<usize, usize> {
    let mut out = BTreeMap::new();
    for p in rec.named("keep_events_total") {
        *out.entry(p.attr("seq").unwrap().parse().unwrap()).or_default() += 1;
    }
    out
}

fn script(rec: &Recorder, replies: impl IntoIterator<Item = Reply>) {
    rec.script.lock().unwrap().extend(replies);
}

async fn wait_snapshot(exporter: &Exporter, what: &str, pred: impl Fn(&ExportSnapshot) -> bool) {
    until_async(what, HANG, || async {
        let snap = exporter.snapshot();
        if pred(&snap) {
            Ok(())
        } else {
            Err(format!("{snap:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn grpc_refusals_that_may_pass_keep_the_batch_and_are_logged_once_per_state() {
    let recorder = Arc::new(Recorder::default());
    script(
        &recorder,
        [
            Reply::Grpc(Code::Unauthenticated, None),
            Reply::Grpc(Code::Unauthenticated, None),
            Reply::Grpc(Code::Unauthenticated, None),
            Reply::Grpc(Code::PermissionDenied, None),
            Reply::Grpc(Code::NotFound, None),
            Reply::Grpc(Code::Unimplemented, None),
            Reply::Grpc(Code::DeadlineExceeded, None),
            Reply::Grpc(Code::Internal, None),
            Reply::Grpc(Code::Unavailable, None),
            // Back-pressure without RetryInfo: not a size refusal, so retried whole.
            Reply::GrpcMessage(Code::ResourceExhausted, "ingest quota"),
        ],
    );
    let receiver = start_grpc(0, recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = crate::common::logs::capture_at(tracing::Level::INFO);
    let exporter = Exporter::start(&config(receiver.endpoint()), dir.path(), resource()).unwrap();
    exporter.sink().send(batch(0, 5)).await;
    recorder
        .wait_for(HANG, "the batch after ten refusals", |p| p.len() >= 5)
        .await;
    assert!(exporter.wait_drained(HANG).await);
    let snap = exporter.snapshot();
    exporter.shutdown().await;
    receiver.stop().await;

    assert_eq!(
        arrivals(&recorder),
        (0..5).map(|i| (i, 1)).collect(),
        "each point once"
    );
    let f = snap.failures;
    assert_eq!(f.get(Reason::Unauthorized), 3);
    assert_eq!(f.get(Reason::Forbidden), 1);
    assert_eq!(f.get(Reason::NotFound), 2);
    assert_eq!(f.get(Reason::Timeout), 1);
    assert_eq!(f.get(Reason::ServerError), 1);
    assert_eq!(f.get(Reason::Unavailable), 1);
    assert_eq!(f.get(Reason::Throttled), 1);
    assert_eq!(snap.failed_attempts, 10);
    assert_eq!(snap.dropped_items.total(), 0, "{snap:?}");
    assert_eq!(snap.rejected_records, 0);

    let text = logs.text();
    let failing: Vec<&str> = text.lines().filter(|l| l.contains("export failing")).collect();
    // One line per change of reason: unauthorized, forbidden, not_found (twice in a row),
    // timeout, server_error, unavailable, throttled.
    assert_eq!(failing.len(), 7, "{failing:#?}");
    assert!(
        failing[0].contains("ERROR") && failing[0].contains("unauthorized"),
        "a token problem needs a person: {}",
        failing[0]
    );
    assert!(failing[3].contains("WARN"), "{}", failing[3]);
    assert_eq!(text.matches("export recovered").count(), 1, "{text}");
    assert!(!text.contains("dropping"), "{text}");
}

#[tokio::test]
async fn http_refusals_that_may_pass_keep_the_batch_and_retry_after_is_capped() {
    let recorder = Arc::new(Recorder::default());
    script(
        &recorder,
        [
            Reply::Http(401, None),
            Reply::Http(403, None),
            Reply::Http(404, None),
            Reply::Http(408, None),
            Reply::Http(500, None),
            Reply::Http(502, None),
            Reply::Http(415, None),
            // An hour asked for; the agent waits retry_after_max (100 ms) at most.
            Reply::Http(503, Some(3600)),
            Reply::Http(429, Some(3600)),
        ],
    );
    let receiver = start_http(recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(receiver.endpoint());
    cfg.protocol = Protocol::Http;
    let exporter = Exporter::start(&cfg, dir.path(), resource()).unwrap();
    exporter.sink().send(batch(0, 4)).await;
    recorder
        .wait_for(HANG, "the batch after nine refusals", |p| p.len() >= 4)
        .await;
    assert!(exporter.wait_drained(HANG).await);
    let snap = exporter.snapshot();
    exporter.shutdown().await;
    receiver.stop().await;

    assert_eq!(arrivals(&recorder), (0..4).map(|i| (i, 1)).collect());
    let f = snap.failures;
    for (reason, n) in [
        (Reason::Unauthorized, 1),
        (Reason::Forbidden, 1),
        (Reason::NotFound, 1),
        (Reason::Timeout, 1),
        (Reason::ServerError, 1),
        (Reason::Unavailable, 2),
        (Reason::Other, 1),
        (Reason::Throttled, 1),
    ] {
        assert_eq!(f.get(reason), n, "{reason:?}: {snap:?}");
    }
    assert_eq!(snap.dropped_items.total(), 0, "{snap:?}");
}

#[tokio::test]
async fn only_partial_rejects_and_undecodable_batches_are_dropped_and_counted() {
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(0, recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = crate::common::logs::capture_at(tracing::Level::WARN);
    let exporter = Exporter::start(&config(receiver.endpoint()), dir.path(), resource()).unwrap();

    // Two partial successes in a row, then a batch refused whole, then a good one.
    script(&recorder, [Reply::Partial(2)]);
    exporter.sink().send(batch(0, 5)).await;
    wait_snapshot(&exporter, "the first partial success", |s| s.sent_requests >= 1).await;
    script(&recorder, [Reply::Partial(1)]);
    exporter.sink().send(batch(5, 2)).await;
    wait_snapshot(&exporter, "the second partial success", |s| s.sent_requests >= 2).await;
    script(&recorder, [Reply::Grpc(Code::InvalidArgument, None)]);
    exporter.sink().send(batch(7, 3)).await;
    wait_snapshot(&exporter, "the refused batch", |s| s.rejected_records >= 1).await;
    exporter.sink().send(batch(10, 1)).await;
    recorder
        .wait_for(HANG, "the batch after the refused one", |p| {
            p.iter().any(|x| x.attr("seq") == Some("10"))
        })
        .await;
    assert!(exporter.wait_drained(HANG).await);
    let snap = exporter.snapshot();
    exporter.shutdown().await;
    receiver.stop().await;

    assert_eq!(snap.dropped_items.get(Reason::Rejected), 3, "{snap:?}");
    assert_eq!(
        snap.dropped_items.get(Reason::Invalid),
        3,
        "the refused batch's points"
    );
    assert_eq!(snap.dropped_items.total(), 6);
    let seqs: Vec<usize> = arrivals(&recorder).into_keys().collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4, 5, 6, 10]);
    let text = logs.text();
    assert_eq!(
        text.matches("rejected some items as invalid").count(),
        1,
        "one warning for a run of partial successes: {text}"
    );
    assert_eq!(text.matches("refused a request as invalid").count(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_during_a_long_refusal_drops_the_oldest_and_counts_every_point() {
    let recorder = Arc::new(Recorder::default());
    // Refused for as long as the test pushes (the script is cleared afterwards).
    script(
        &recorder,
        std::iter::repeat_n(Reply::Grpc(Code::Unauthenticated, None), 100_000),
    );
    let receiver = start_grpc(0, recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(receiver.endpoint());
    cfg.buffer_segment_bytes = 4096;
    cfg.buffer_max_bytes = 4 * 4096;
    let exporter = Exporter::start(&cfg, dir.path(), resource()).unwrap();
    let (batches, per_batch) = (60, 10);
    for b in 0..batches {
        exporter.sink().send(batch(b * per_batch, per_batch)).await;
        // One batch per record: wait until it is buffered before sending the next.
        wait_snapshot(&exporter, "the batch to be buffered", |s| {
            s.pending_records + s.dropped_records as usize > b
        })
        .await;
    }
    let full = exporter.snapshot();
    assert!(full.dropped_records > 0, "{full:?}");
    assert!(full.buffer_bytes <= 5 * 4096, "{full:?}");
    recorder.script.lock().unwrap().clear();
    assert!(exporter.wait_drained(HANG).await);
    let snap = exporter.snapshot();
    exporter.shutdown().await;
    receiver.stop().await;

    let got = arrivals(&recorder);
    assert!(got.values().all(|n| *n == 1), "no point twice: {got:?}");
    let dropped = snap.dropped_items.get(Reason::BufferFull);
    assert_eq!(
        got.len() as u64 + dropped,
        (batches * per_batch) as u64,
        "every point delivered or counted as dropped: {snap:?}"
    );
    // The newest data is what survives.
    assert!(got.contains_key(&(batches * per_batch - 1)));
    assert!(!got.contains_key(&0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_large_log_lines_go_out_in_requests_under_batch_max_bytes() {
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(0, recorder.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let logs_dir = tempfile::tempdir().unwrap();
    let path = logs_dir.path().join("big.log");
    let mut file = std::fs::File::create(&path).unwrap();
    let line_bytes = 4000;
    for i in 0..2000 {
        writeln!(file, "{i:06} {}", "y".repeat(line_bytes)).unwrap();
    }
    drop(file);
    let max = 256 * 1024;
    let mut cfg = config(receiver.endpoint());
    cfg.batch_max_bytes = max;
    let exporter = Exporter::start(&cfg, &data.path().join("buffer"), resource()).unwrap();
    let logs_config = LogsConfig {
        paths: vec![format!("{}/*.log", logs_dir.path().display())],
        exclude: Vec::new(),
        service: "big".into(),
        start_at: StartAt::Beginning,
        poll_interval: Duration::from_millis(50),
        ..LogsConfig::default()
    };
    let tailer = LogTailer::start(&[logs_config], data.path(), "log-host", exporter.otlp_sink());
    until_async("2,000 log records", HANG, || async {
        let n = recorder.log_records().len();
        if n >= 2000 {
            Ok(())
        } else {
            Err(format!("{n} records"))
        }
    })
    .await;
    tailer.shutdown().await;
    assert!(exporter.wait_drained(HANG).await);
    exporter.shutdown().await;
    receiver.stop().await;

    let requests = recorder.logs.lock().unwrap().clone();
    assert!(requests.len() >= 8000 * 1000 / max, "{} requests", requests.len());
    for r in &requests {
        assert!(r.encoded_len() <= max, "{} bytes", r.encoded_len());
    }
    let mut seqs: Vec<String> = recorder
        .log_records()
        .into_iter()
        .map(|(_, _, body)| body[..6].to_string())
        .collect();
    let received = seqs.len();
    seqs.sort();
    seqs.dedup();
    assert_eq!((received, seqs.len()), (2000, 2000), "each line once");
}
