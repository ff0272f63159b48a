//! The exporter against a real in-test OTLP receiver: encoding, retries honouring
//! Retry-After, refusal handling, and the outage path (collector down → buffered on disk →
//! agent restarted → collector up → everything arrives once).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::common::otlp::{free_port, start_grpc, start_http, Recorder, Reply};
use didban_agent::config::{ExportConfig, Protocol};
use didban_agent::export::encode::ResourceInfo;
use didban_agent::export::Exporter;
use didban_agent::model::Sample;
use didban_testkit::wait::{until_async, HANG};

fn resource() -> ResourceInfo {
    ResourceInfo {
        service_name: "didban-agent".into(),
        host_name: "test-host".into(),
    }
}

fn config(endpoint: String) -> ExportConfig {
    ExportConfig {
        endpoint,
        flush_interval: Duration::from_millis(50),
        retry_initial_backoff: Duration::from_millis(20),
        retry_max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        ..ExportConfig::default()
    }
}

fn batch(first: usize, n: usize) -> Vec<Sample> {
    (first..first + n)
        .map(|i| {
            Sample::counter(
                "test_events_total",
                &[("seq", &i.to_string())],
                i as f64,
                1_700_000_000_000,
            )
        })
        .collect()
}

fn seqs(rec: &Recorder) -> Vec<usize> {
    let mut v: Vec<usize> = rec
        .named("test_events_total")
        .iter()
        .map(|p| p.attr("seq").unwrap().parse().unwrap())
        .collect();
    v.sort_unstable();
    v
}

/// The `retry_in` waits the exporter logged, in order (Debug-formatted durations such as
/// `1s`, `38.2ms`, `950µs`).
fn retry_waits(log: &str) -> Vec<Duration> {
    let mut out = Vec::new();
    for piece in log.split("retry_in=").skip(1) {
        let text: String = piece.chars().take_while(|c| !c.is_whitespace()).collect();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let n: f64 = number.parse().unwrap_or_else(|e| panic!("retry_in={text}: {e}"));
        let seconds = match unit {
            "s" => n,
            "ms" => n / 1e3,
            "µs" => n / 1e6,
            "ns" => n / 1e9,
            other => panic!("retry_in={text}: unit {other:?}"),
        };
        out.push(Duration::from_secs_f64(seconds));
    }
    out
}

#[tokio::test]
async fn grpc_export_sends_prometheus_names_with_agent_resource() {
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(0, recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(receiver.endpoint());
    cfg.bearer_token = "s3cret".into();
    let exporter = Exporter::start(&cfg, dir.path(), resource()).unwrap();
    let sink = exporter.sink();
    sink.send(vec![
        Sample::counter(
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "idle")],
            12.5,
            1_700_000_000_000,
        ),
        Sample::gauge("node_load1", &[], 0.25, 1_700_000_000_000),
    ])
    .await;
    let points = recorder
        .wait_for(Duration::from_secs(10), "two points", |p| p.len() >= 2)
        .await;
    let cpu = points
        .iter()
        .find(|p| p.name == "node_cpu_seconds_total")
        .unwrap();
    assert!(cpu.is_sum && cpu.monotonic);
    assert_eq!(cpu.unit, "");
    assert_eq!(cpu.service_name, "didban-agent");
    assert_eq!(cpu.instance, "test-host");
    assert_eq!(cpu.host_name, "test-host");
    assert_eq!(cpu.attr("mode"), Some("idle"));
    assert_eq!(cpu.time_ns, 1_700_000_000_000_000_000);
    let load = points.iter().find(|p| p.name == "node_load1").unwrap();
    assert!(!load.is_sum);
    assert_eq!(recorder.auth.lock().unwrap()[0].as_deref(), Some("Bearer s3cret"));
    assert!(exporter.wait_drained(Duration::from_secs(5)).await);
    exporter.shutdown().await;
    receiver.stop().await;
}

#[tokio::test]
async fn grpc_unavailable_is_retried_after_the_servers_retry_after() {
    let recorder = Arc::new(Recorder::default());
    recorder
        .script
        .lock()
        .unwrap()
        .push_back(Reply::Grpc(tonic::Code::Unavailable, Some(1)));
    recorder
        .script
        .lock()
        .unwrap()
        .push_back(Reply::Grpc(tonic::Code::ResourceExhausted, None));
    let receiver = start_grpc(0, recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    // The exporter logs each wait it chooses (`retry_in`): the second one is checked there,
    // since the wall-clock gap also holds however long a loaded machine took to get there.
    let logs = crate::common::logs::capture_at(tracing::Level::DEBUG);
    let exporter = Exporter::start(&config(receiver.endpoint()), dir.path(), resource()).unwrap();
    exporter.sink().send(batch(0, 3)).await;
    recorder
        .wait_for(Duration::from_secs(10), "3 points", |p| p.len() >= 3)
        .await;
    let attempts = recorder.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 3, "two failures then success");
    // The configured backoff is 20 ms; only Retry-After: 1 explains a gap of ~1 s.
    assert!(
        attempts[1] - attempts[0] >= Duration::from_millis(950),
        "{:?}",
        attempts[1] - attempts[0]
    );
    let waits = retry_waits(&logs.text());
    assert_eq!(waits.len(), 2, "one wait per failure: {waits:?}");
    assert_eq!(waits[0], Duration::from_secs(1), "Retry-After: 1 is honoured");
    assert!(waits[1] < Duration::from_millis(900), "{waits:?}");
    assert_eq!(seqs(&recorder), vec![0, 1, 2]);
    assert_eq!(exporter.snapshot().failed_attempts, 2);
    exporter.shutdown().await;
    receiver.stop().await;
}

#[tokio::test]
async fn refused_batch_is_dropped_and_counted_without_blocking_later_ones() {
    let recorder = Arc::new(Recorder::default());
    recorder
        .script
        .lock()
        .unwrap()
        .push_back(Reply::Grpc(tonic::Code::InvalidArgument, None));
    let receiver = start_grpc(0, recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&config(receiver.endpoint()), dir.path(), resource()).unwrap();
    exporter.sink().send(batch(0, 1)).await;
    // The first batch must be refused before the second is sent, or both would share a
    // request (and a fate).
    until_async("the first batch to be refused", HANG, || async {
        let snap = exporter.snapshot();
        if snap.rejected_records >= 1 {
            Ok(())
        } else {
            Err(format!("{snap:?}"))
        }
    })
    .await;
    exporter.sink().send(batch(1, 1)).await;
    recorder
        .wait_for(Duration::from_secs(10), "second batch", |p| !p.is_empty())
        .await;
    assert!(exporter.wait_drained(Duration::from_secs(5)).await);
    assert_eq!(seqs(&recorder), vec![1]);
    assert_eq!(exporter.snapshot().rejected_records, 1);
    exporter.shutdown().await;
    receiver.stop().await;
}

#[tokio::test]
async fn http_protobuf_export_retries_503_with_retry_after() {
    let recorder = Arc::new(Recorder::default());
    recorder
        .script
        .lock()
        .unwrap()
        .push_back(Reply::Http(503, Some(1)));
    recorder.script.lock().unwrap().push_back(Reply::Http(429, None));
    let receiver = start_http(recorder.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(receiver.endpoint());
    cfg.protocol = Protocol::Http;
    cfg.gzip = false;
    cfg.bearer_token = "tok".into();
    let exporter = Exporter::start(&cfg, dir.path(), resource()).unwrap();
    exporter.sink().send(batch(0, 5)).await;
    recorder
        .wait_for(Duration::from_secs(10), "5 points", |p| p.len() >= 5)
        .await;
    let attempts = recorder.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 3);
    assert!(attempts[1] - attempts[0] >= Duration::from_millis(950));
    assert_eq!(seqs(&recorder), vec![0, 1, 2, 3, 4]);
    assert_eq!(recorder.auth.lock().unwrap()[0].as_deref(), Some("Bearer tok"));
    exporter.shutdown().await;
    receiver.stop().await;
}

#[tokio::test]
async fn outage_and_agent_restart_lose_nothing() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();

    // Collector down: the first agent run buffers everything on disk.
    let first = Exporter::start(&config(endpoint.clone()), dir.path(), resource()).unwrap();
    for i in 0..20 {
        first.sink().send(batch(i * 10, 10)).await;
    }
    until_async("a buffered record and a failed attempt", HANG, || async {
        let snap = first.snapshot();
        if snap.pending_records > 0 && snap.failed_attempts > 0 {
            Ok(())
        } else {
            Err(format!("{snap:?}"))
        }
    })
    .await;
    let snap = first.snapshot();
    assert!(snap.pending_records > 0, "{snap:?}");
    assert!(snap.failed_attempts > 0, "{snap:?}");
    first.shutdown().await;

    // Agent restarted on the same buffer directory, still no collector; more data arrives.
    let second = Exporter::start(&config(endpoint.clone()), dir.path(), resource()).unwrap();
    let left = second.snapshot().pending_records;
    for i in 20..30 {
        second.sink().send(batch(i * 10, 10)).await;
    }
    until_async("the second run's data on disk", HANG, || async {
        let snap = second.snapshot();
        if snap.pending_records > left {
            Ok(())
        } else {
            Err(format!("{left} records left by the first run; now {snap:?}"))
        }
    })
    .await;

    // Collector comes up on the same port: everything from both runs arrives, once.
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(port, recorder.clone()).await;
    recorder
        .wait_for(Duration::from_secs(20), "300 points", |p| p.len() >= 300)
        .await;
    assert!(second.wait_drained(Duration::from_secs(10)).await);
    let got = seqs(&recorder);
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    assert_eq!(second.snapshot().dropped_records, 0);
    second.shutdown().await;

    // A third start finds nothing left to send.
    let third = Exporter::start(&config(endpoint), dir.path(), resource()).unwrap();
    assert_eq!(third.snapshot().pending_records, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.named("test_events_total").len(), 300);
    let unique: BTreeSet<usize> = got.into_iter().collect();
    assert_eq!(unique.len(), 300);
    third.shutdown().await;
    receiver.stop().await;
}
