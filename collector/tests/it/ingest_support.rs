//! Shared by the `ingest_*` tests: a server with the ingest routers on real sockets over a
//! state the test can read back, request builders and store queries.

use std::future::IntoFuture;
use std::net::SocketAddr;

use didban_collector::config::Config;
use didban_collector::ingest;
use didban_collector::state::AppState;
use didban_collector::stores::Stores;
use didban_store::{LabelMatcher, Queryable, SeriesSamples};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The ingest receivers on three real sockets.
pub struct Server {
    pub state: AppState,
    /// Base URL of the OTLP/HTTP port, e.g. `http://127.0.0.1:1234`.
    pub otlp_http: String,
    /// Base URL of the remote_write port.
    pub http: String,
    /// Address of the OTLP/gRPC port.
    pub grpc: SocketAddr,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Opens fresh stores in a temp dir (kept alive by the returned guard) with `tweak` applied
/// to a default configuration: the state every in-process server of these tests shares.
pub async fn open_state(tweak: impl FnOnce(&mut Config)) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    tweak(&mut config);
    // Opening the stores blocks (the log store waits for its writer): not on a runtime thread.
    let store_config = config.clone();
    let stores = tokio::task::spawn_blocking(move || Stores::open(&store_config))
        .await
        .unwrap()
        .unwrap();
    (AppState::new(stores, config), dir)
}

/// Starts the receivers with `tweak` applied to a default configuration.
pub async fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    let (state, dir) = open_state(tweak).await;
    let (stop, stop_rx) = watch::channel(false);
    let otlp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server {
        otlp_http: format!("http://{}", otlp.local_addr().unwrap()),
        http: format!("http://{}", http.local_addr().unwrap()),
        grpc: grpc.local_addr().unwrap(),
        state: state.clone(),
        stop,
        _dir: dir,
    };
    let stopped = didban_collector::shutdown::stopped;
    tokio::spawn(
        axum::serve(otlp, ingest::otlp_http_router(state.clone()))
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    tokio::spawn(
        axum::serve(
            http,
            ingest::remote_write_router(state.clone())
                .merge(didban_collector::api::router(state.clone(), stop_rx.clone())),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()))
        .into_future(),
    );
    tokio::spawn(ingest::serve_otlp_grpc(state, None, grpc, stopped(stop_rx)));
    server
}

/// Every series named `name`, all time.
pub fn series(state: &AppState, name: &str) -> Vec<SeriesSamples> {
    state
        .stores
        .metrics
        .select(&[LabelMatcher::equal("__name__", name)], i64::MIN, i64::MAX)
        .unwrap()
}

/// Values of the one series named `name` whose labels include all of `labels`.
pub fn values(state: &AppState, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let mut found = Vec::new();
    for s in series(state, name) {
        if labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)) {
            found.push(s);
        }
    }
    assert_eq!(found.len(), 1, "series {name} {labels:?}: found {found:#?}");
    found[0].samples.iter().map(|s| s.value).collect()
}

pub use didban_testkit::kv;

/// Now in Unix nanoseconds, as OTLP wants it.
pub fn now_ns() -> u64 {
    u64::try_from(didban_testkit::now_nanos()).unwrap()
}

/// A request with one gauge `name` per value (attribute `i` = index) at `time_ns`.
pub fn gauge_request(name: &str, values: &[f64], time_ns: u64) -> ExportMetricsServiceRequest {
    let mut points = Vec::new();
    for (i, v) in values.iter().enumerate() {
        points.push(NumberDataPoint {
            attributes: vec![kv("i", &i.to_string())],
            time_unix_nano: time_ns,
            value: Some(number_data_point::Value::AsDouble(*v)),
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "test")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::Gauge(Gauge { data_points: points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Serves `router` on a free loopback port until `stop` turns true; returns its base URL.
pub async fn serve_router(router: axum::Router, stop: watch::Receiver<bool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(didban_collector::shutdown::stopped(stop))
            .into_future(),
    );
    base
}
