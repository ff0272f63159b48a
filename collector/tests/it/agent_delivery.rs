//! The agent's exporter against the collector's own receivers, token check and stores
//! (issue 13, "the agent keeps what it can keep"): while its token is revoked (401 /
//! `UNAUTHENTICATED`) the agent keeps everything buffered, and once it has a valid token every
//! data point and log record arrives exactly once; a request over the collector's body limit
//! (413 / `RESOURCE_EXHAUSTED` "too large") is split until it fits, and only a log record that
//! alone is over the limit is dropped, and counted.
//!
//! Log records prove "exactly once": the log store keeps a record sent twice twice, and its
//! ingest counter counts both (the metric store would drop a repeated sample as a duplicate).
//!
//! `AGENT_401_SECONDS` sets how long the token stays revoked (default 3 s, which with the
//! test's 10–100 ms backoff is more retries than a default agent makes in a minute).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use didban_agent::config::{ExportConfig, Protocol};
use didban_agent::export::encode::ResourceInfo;
use didban_agent::export::reason::Reason;
use didban_agent::export::{Exporter, Signal};
use didban_agent::model::Sample;
use didban_auth::{Auth, AuthSettings, Role};
use didban_collector::config::Config;
use didban_collector::ingest;
use didban_collector::state::AppState;
use didban_collector::stores::Stores;
use didban_testkit::wait::{until_async, HANG};
use didban_testkit::{kv, now_ms, now_nanos};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ingest_support::series;

/// The OTLP receivers of the collector with sign-in required, as `server::run` builds them.
struct Collector {
    state: AppState,
    auth: Arc<Auth>,
    grpc: String,
    http: String,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Collector {
    async fn start(max_body_bytes: usize) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.limits.max_body_bytes = max_body_bytes;
        let store_config = config.clone();
        let stores = tokio::task::spawn_blocking(move || Stores::open(&store_config))
            .await
            .unwrap()
            .unwrap();
        let state = AppState::new(stores, config);
        let auth = Auth::open(dir.path(), AuthSettings::default()).unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let stopped = didban_collector::shutdown::stopped;

        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = grpc.local_addr().unwrap();
        let a = auth.clone();
        let check: ingest::grpc::IngestCheck = Arc::new(move |value: Option<&str>| a.ingest_allowed(value));
        tokio::spawn(ingest::serve_otlp_grpc(
            state.clone(),
            Some(check),
            grpc,
            stopped(stop_rx.clone()),
        ));

        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let router = ingest::otlp_http_router(state.clone())
            .fallback_service(didban_auth::not_found(didban_auth::Require::ingest()))
            .layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                didban_auth::resolve,
            ));
        tokio::spawn(
            axum::serve(http, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(stopped(stop_rx))
                .into_future(),
        );
        Collector {
            state,
            auth,
            grpc: format!("http://{grpc_addr}"),
            http: format!("http://{http_addr}"),
            stop,
            _dir: dir,
        }
    }

    fn endpoint(&self, protocol: Protocol) -> String {
        match protocol {
            Protocol::Grpc => self.grpc.clone(),
            Protocol::Http => self.http.clone(),
        }
    }

    /// A new ingest token and its id.
    fn token(&self, name: &str) -> (String, String) {
        let (secret, record) = self
            .auth
            .tokens()
            .create(name, Role::Viewer, true, "test", now_ms())
            .unwrap();
        (secret, record.id)
    }

    /// A self-metric summed over all its label sets (0 when it has none).
    fn counter(&self, name: &str) -> f64 {
        let mut sum = 0.0;
        for line in self.state.metrics.render().lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if rest.starts_with('{') || rest.starts_with(' ') {
                sum += rest.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
            }
        }
        sum
    }

    /// Samples stored in `agent_delivery_events_total` series. (The ingest counter also
    /// counts the `target_info` samples the resource attributes give.)
    fn points(&self) -> f64 {
        let mut n = 0;
        for s in series(&self.state, "agent_delivery_events_total") {
            n += s.samples.len();
        }
        n as f64
    }

    fn log_records(&self) -> f64 {
        self.counter("didban_log_records_ingested_total")
    }
}

fn resource() -> ResourceInfo {
    ResourceInfo {
        service_name: "didban-agent".into(),
        host_name: "test-host".into(),
    }
}

fn agent_config(endpoint: String, protocol: Protocol, token: &str) -> ExportConfig {
    ExportConfig {
        endpoint,
        protocol,
        bearer_token: token.to_string(),
        flush_interval: Duration::from_millis(20),
        retry_initial_backoff: Duration::from_millis(10),
        retry_max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(10),
        ..ExportConfig::default()
    }
}

fn start_agent(config: &ExportConfig, buffer: &Path) -> Exporter {
    Exporter::start(config, buffer, resource()).unwrap()
}

/// One sample per series `agent_delivery_events_total{seq}` for `seq` in `first..first + n`.
fn samples(first: usize, n: usize) -> Vec<Sample> {
    let now = now_ms();
    (first..first + n)
        .map(|i| {
            Sample::counter(
                "agent_delivery_events_total",
                &[("seq", &i.to_string())],
                1.0,
                now,
            )
        })
        .collect()
}

/// An encoded logs request with one record per `(seq, body bytes)`.
fn logs(records: &[(usize, usize)]) -> Vec<u8> {
    let now = u64::try_from(now_nanos()).unwrap();
    let log_records = records
        .iter()
        .map(|(seq, size)| LogRecord {
            time_unix_nano: now,
            observed_time_unix_nano: now,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "{seq:06} {}",
                    "x".repeat(*size)
                ))),
            }),
            attributes: vec![kv("seq", &seq.to_string())],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "agent-delivery")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Every `agent_delivery_events_total` series holds exactly one sample, and there are `n`.
fn assert_each_point_once(collector: &Collector, n: usize) {
    let all = series(&collector.state, "agent_delivery_events_total");
    assert_eq!(all.len(), n, "one series per seq");
    for s in &all {
        assert_eq!(s.samples.len(), 1, "{:?}", s.labels);
    }
}

async fn wait_stored(collector: &Collector, points: usize, records: usize) {
    until_async("the collector to store everything sent", HANG, || async {
        let (p, r) = (collector.points(), collector.log_records());
        if p >= points as f64 && r >= records as f64 {
            Ok(())
        } else {
            Err(format!("points {p}/{points}, log records {r}/{records}"))
        }
    })
    .await;
}

async fn rotated_token_loses_nothing(protocol: Protocol) {
    let revoked_for = Duration::from_secs_f64(
        std::env::var("AGENT_401_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    );
    let collector = Collector::start(20 * 1024 * 1024).await;
    let buffer = tempfile::tempdir().unwrap();
    let (old_token, old_id) = collector.token("agent-old");
    let agent = start_agent(
        &agent_config(collector.endpoint(protocol), protocol, &old_token),
        buffer.path(),
    );
    let (mut points, mut records) = (0, 0);
    agent.sink().send(samples(points, 100)).await;
    points += 100;
    let batch: Vec<(usize, usize)> = (records..records + 100).map(|i| (i, 100)).collect();
    agent.otlp_sink().send(Signal::Logs, logs(&batch)).await.unwrap();
    records += 100;
    wait_stored(&collector, points, records).await;

    // The token is rotated on the collector; the agent keeps pushing with the old one.
    collector.auth.tokens().revoke(&old_id).unwrap();
    let started = Instant::now();
    while started.elapsed() < revoked_for {
        agent.sink().send(samples(points, 10)).await;
        points += 10;
        let batch: Vec<(usize, usize)> = (records..records + 10).map(|i| (i, 200)).collect();
        agent.otlp_sink().send(Signal::Logs, logs(&batch)).await.unwrap();
        records += 10;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_async("a refusal for the revoked token", HANG, || async {
        let snap = agent.snapshot();
        if snap.failures.get(Reason::Unauthorized) > 0 && snap.pending_records > 0 {
            Ok(())
        } else {
            Err(format!("{snap:?}"))
        }
    })
    .await;
    let during = agent.snapshot();
    assert_eq!(during.dropped_items.total(), 0, "{during:?}");
    assert_eq!(during.rejected_records, 0, "{during:?}");
    assert_eq!(collector.points(), 100.0, "nothing got in without a token");
    agent.shutdown().await;

    // The operator gives the agent the new token and restarts it over the same buffer.
    let (new_token, _) = collector.token("agent-new");
    let agent = start_agent(
        &agent_config(collector.endpoint(protocol), protocol, &new_token),
        buffer.path(),
    );
    assert!(agent.wait_drained(HANG).await, "{:?}", agent.snapshot());
    wait_stored(&collector, points, records).await;
    let after = agent.snapshot();
    agent.shutdown().await;

    assert_eq!(collector.points(), points as f64, "each point stored once");
    assert_eq!(
        collector.log_records(),
        records as f64,
        "each log record stored once"
    );
    assert_eq!(collector.counter("didban_log_records_rejected_total"), 0.0);
    assert_each_point_once(&collector, points);
    assert_eq!(after.dropped_items.total(), 0, "{after:?}");
    eprintln!(
        "FIGURE agent {protocol:?}: {:.1} s of 401s ({} refused attempts): {points} of {points} points and {records} of {records} log records stored exactly once",
        revoked_for.as_secs_f64(),
        during.failures.get(Reason::Unauthorized),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_agent_with_a_revoked_token_keeps_everything_until_it_has_a_valid_one() {
    rotated_token_loses_nothing(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_agent_with_a_revoked_token_keeps_everything_until_it_has_a_valid_one() {
    rotated_token_loses_nothing(Protocol::Http).await;
}

async fn oversize_requests_are_split(protocol: Protocol) {
    let limit = 64 * 1024;
    let collector = Collector::start(limit).await;
    let buffer = tempfile::tempdir().unwrap();
    let (token, _) = collector.token("agent");
    let mut config = agent_config(collector.endpoint(protocol), protocol, &token);
    // The agent does not cut requests itself here: the collector's limit is what splits them.
    config.batch_max_bytes = 8 * 1024 * 1024;
    let agent = start_agent(&config, buffer.path());

    // 300 records of 1-3 KiB (about 600 KiB) with one of 100 KiB among them.
    let mut batch = Vec::new();
    for i in 0..300 {
        let size = if i == 150 {
            100 * 1024
        } else {
            1024 + (i % 3) * 1024
        };
        batch.push((i, size));
    }
    agent.otlp_sink().send(Signal::Logs, logs(&batch)).await.unwrap();
    // 3,000 points with long labels in one batch (about 300 KiB).
    let long = "l".repeat(80);
    let now = now_ms();
    let big: Vec<Sample> = (0..3000)
        .map(|i| {
            Sample::counter(
                "agent_delivery_events_total",
                &[("seq", &i.to_string()), ("pad", &long)],
                1.0,
                now,
            )
        })
        .collect();
    agent.sink().send(big).await;

    assert!(agent.wait_drained(HANG).await, "{:?}", agent.snapshot());
    wait_stored(&collector, 3000, 299).await;
    let snap = agent.snapshot();
    agent.shutdown().await;
    assert_eq!(
        collector.log_records(),
        299.0,
        "all records but the one over the limit"
    );
    assert_eq!(collector.points(), 3000.0);
    assert_each_point_once(&collector, 3000);
    assert!(snap.failures.get(Reason::TooLarge) > 0, "{snap:?}");
    assert_eq!(snap.dropped_items.get(Reason::TooLarge), 1, "{snap:?}");
    assert_eq!(snap.dropped_items.total(), 1, "{snap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_request_over_the_body_limit_is_split_and_only_a_lone_oversize_record_dropped() {
    oversize_requests_are_split(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_request_over_the_body_limit_is_split_and_only_a_lone_oversize_record_dropped() {
    oversize_requests_are_split(Protocol::Http).await;
}
