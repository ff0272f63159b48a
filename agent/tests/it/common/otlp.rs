//! An OTLP receiver for tests (metrics, traces, logs): a real tonic gRPC server (and an axum OTLP/HTTP
//! endpoint) that records every accepted request and can be told to fail the next calls.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use tokio::sync::oneshot;

/// What the receiver does with the next call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Fail with this gRPC code and an optional `retry-after` (seconds) metadata.
    Grpc(tonic::Code, Option<u64>),
    /// Fail with this HTTP status and optional `Retry-After` seconds.
    Http(u16, Option<u64>),
    /// Fail with this gRPC code and message (no `retry-after`).
    GrpcMessage(tonic::Code, &'static str),
    /// Accept (gRPC metrics), but report this many points rejected in a partial success.
    Partial(i64),
}

#[derive(Default)]
pub struct Recorder {
    pub requests: Mutex<Vec<ExportMetricsServiceRequest>>,
    pub attempts: Mutex<Vec<Instant>>,
    pub auth: Mutex<Vec<Option<String>>>,
    pub script: Mutex<VecDeque<Reply>>,
    pub traces: Mutex<Vec<ExportTraceServiceRequest>>,
    pub logs: Mutex<Vec<ExportLogsServiceRequest>>,
}

/// One received data point, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub service_name: String,
    pub instance: String,
    pub host_name: String,
    pub name: String,
    pub unit: String,
    pub is_sum: bool,
    pub monotonic: bool,
    pub attrs: Vec<(String, String)>,
    pub value: f64,
    pub time_ns: u64,
}

impl Point {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

fn kvs(list: &[KeyValue]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kv in list {
        let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => format!("{other:?}"),
        };
        out.push((kv.key.clone(), v));
    }
    out
}

impl Recorder {
    pub fn points(&self) -> Vec<Point> {
        let mut out = Vec::new();
        for req in self.requests.lock().unwrap().iter() {
            for rm in &req.resource_metrics {
                let res = kvs(&rm.resource.as_ref().unwrap().attributes);
                let get = |k: &str| {
                    res.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                for sm in &rm.scope_metrics {
                    for m in &sm.metrics {
                        let (points, is_sum, monotonic) = match m.data.as_ref().unwrap() {
                            metric::Data::Gauge(g) => (&g.data_points, false, false),
                            metric::Data::Sum(s) => (&s.data_points, true, s.is_monotonic),
                            other => panic!("unexpected data {other:?}"),
                        };
                        for p in points {
                            let value = match p.value {
                                Some(number_data_point::Value::AsDouble(v)) => v,
                                Some(number_data_point::Value::AsInt(v)) => v as f64,
                                None => f64::NAN,
                            };
                            out.push(Point {
                                service_name: get("service.name"),
                                instance: get("service.instance.id"),
                                host_name: get("host.name"),
                                name: m.name.clone(),
                                unit: m.unit.clone(),
                                is_sum,
                                monotonic,
                                attrs: kvs(&p.attributes),
                                value,
                                time_ns: p.time_unix_nano,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    pub fn named(&self, name: &str) -> Vec<Point> {
        self.points().into_iter().filter(|p| p.name == name).collect()
    }

    fn next_reply(&self) -> Option<Reply> {
        self.attempts.lock().unwrap().push(Instant::now());
        self.script.lock().unwrap().pop_front()
    }

    /// Waits until `pred` holds on the points, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Point]) -> bool,
    ) -> Vec<Point> {
        let deadline = Instant::now() + timeout;
        loop {
            let points = self.points();
            if pred(&points) {
                return points;
            }
            if Instant::now() > deadline {
                let mut names: Vec<String> = points.iter().map(|p| p.name.clone()).collect();
                names.sort();
                names.dedup();
                panic!("timed out waiting for {what}; received metric names: {names:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Service(Arc<Recorder>);

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        match self.0.next_reply() {
            Some(Reply::Grpc(code, retry_after)) => {
                let mut status = tonic::Status::new(code, "scripted failure");
                if let Some(secs) = retry_after {
                    status
                        .metadata_mut()
                        .insert("retry-after", secs.to_string().parse().unwrap());
                }
                return Err(status);
            }
            Some(Reply::GrpcMessage(code, message)) => return Err(tonic::Status::new(code, message)),
            Some(Reply::Partial(rejected)) => {
                self.0.requests.lock().unwrap().push(request.into_inner());
                return Ok(tonic::Response::new(ExportMetricsServiceResponse {
                    partial_success: Some(
                        opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess {
                            rejected_data_points: rejected,
                            error_message: "scripted rejection".into(),
                        },
                    ),
                }));
            }
            Some(Reply::Http(..)) | None => {}
        }
        self.0.auth.lock().unwrap().push(auth);
        self.0.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.0.logs.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

impl Recorder {
    /// (service.name, host.name, span name) of every received span.
    pub fn spans(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for req in self.traces.lock().unwrap().iter() {
            for rs in &req.resource_spans {
                let res = kvs(&rs.resource.as_ref().unwrap().attributes);
                let get = |k: &str| {
                    res.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                for ss in &rs.scope_spans {
                    for span in &ss.spans {
                        out.push((get("service.name"), get("host.name"), span.name.clone()));
                    }
                }
            }
        }
        out
    }

    /// (service.name, host.name, body) of every received log record.
    pub fn log_records(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for req in self.logs.lock().unwrap().iter() {
            for rl in &req.resource_logs {
                let res = kvs(&rl.resource.as_ref().unwrap().attributes);
                let get = |k: &str| {
                    res.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                for sl in &rl.scope_logs {
                    for rec in &sl.log_records {
                        let body = match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
                            Some(any_value::Value::StringValue(s)) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        out.push((get("service.name"), get("host.name"), body));
                    }
                }
            }
        }
        out
    }
}

/// A running receiver; dropping `stop` (or calling `stop()`) shuts it down and frees the port.
pub struct Receiver {
    pub addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

pub use didban_testkit::free_port;

/// Starts the gRPC receiver on `port` (0 = any) with a shared recorder.
pub async fn start_grpc(port: u16, recorder: Arc<Recorder>) -> Receiver {
    start_grpc_with(port, recorder, None).await
}

/// Starts the gRPC receiver serving TLS with the given PEM certificate and key.
pub async fn start_grpc_tls(recorder: Arc<Recorder>, cert: &[u8], key: &[u8]) -> Receiver {
    start_grpc_with(0, recorder, Some(tonic::transport::Identity::from_pem(cert, key))).await
}

async fn start_grpc_with(
    port: u16,
    recorder: Arc<Recorder>,
    identity: Option<tonic::transport::Identity>,
) -> Receiver {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let service = MetricsServiceServer::new(Service(recorder.clone()));
    let traces = TraceServiceServer::new(Service(recorder.clone()));
    let logs = LogsServiceServer::new(Service(recorder.clone()));
    let incoming = tokio_stream_from(listener);
    let mut builder = tonic::transport::Server::builder();
    if let Some(identity) = identity {
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .unwrap();
    }
    let task = tokio::spawn(async move {
        builder
            .add_service(service)
            .add_service(traces)
            .add_service(logs)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Receiver {
        addr,
        recorder,
        stop: Some(tx),
        task: Some(task),
    }
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    })
}

/// Starts an OTLP/HTTP receiver (POST /v1/metrics, protobuf) on any port.
pub async fn start_http(recorder: Arc<Recorder>) -> Receiver {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use prost::Message;

    async fn handle(
        State(rec): State<Arc<Recorder>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::response::Response {
        if let Some(Reply::Http(status, retry_after)) = rec.next_reply() {
            let mut h = HeaderMap::new();
            if let Some(secs) = retry_after {
                h.insert("retry-after", secs.to_string().parse().unwrap());
            }
            return (StatusCode::from_u16(status).unwrap(), h, "scripted failure").into_response();
        }
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        rec.auth.lock().unwrap().push(auth);
        let req = ExportMetricsServiceRequest::decode(body.as_ref()).unwrap();
        rec.requests.lock().unwrap().push(req);
        let resp = ExportMetricsServiceResponse::default().encode_to_vec();
        ([("content-type", "application/x-protobuf")], resp).into_response()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/v1/metrics", axum::routing::post(handle))
        .with_state(recorder.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Receiver {
        addr,
        recorder,
        stop: Some(tx),
        task: Some(task),
    }
}
