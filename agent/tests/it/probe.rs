//! Health checks against a real local HTTP server that starts failing, and TCP probes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::otlp::free_port;
use didban_agent::collectors::probe::ProbeCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::ProbeConfig;
use didban_agent::model::Sample;

fn probe(target: String, body_match: &str) -> ProbeConfig {
    ProbeConfig {
        target,
        job: "blackbox".into(),
        expect_status: vec![],
        body_match: body_match.into(),
        tls_ca_file: String::new(),
        interval: None,
        timeout: Duration::from_secs(2),
    }
}

fn value(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .value
}

async fn health_server(healthy: Arc<AtomicBool>) -> u16 {
    use axum::http::StatusCode;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let healthy = healthy.clone();
            async move {
                if healthy.load(Ordering::SeqCst) {
                    (StatusCode::OK, "status: ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "status: degraded")
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn http_probe_sees_a_server_start_failing() {
    let healthy = Arc::new(AtomicBool::new(true));
    let port = health_server(healthy.clone()).await;
    let target = format!("http://127.0.0.1:{port}/healthz");
    let mut c = ProbeCollector::new(&probe(target.clone(), "status: ok")).unwrap();

    let ok = c.collect().await.unwrap();
    assert_eq!(value(&ok, "probe_success"), 1.0);
    assert_eq!(value(&ok, "probe_http_status_code"), 200.0);
    assert_eq!(value(&ok, "probe_http_content_length"), 10.0);
    assert!(value(&ok, "probe_duration_seconds") > 0.0);
    let s = ok.iter().find(|s| s.name == "probe_success").unwrap();
    assert_eq!(
        (s.label("job"), s.label("instance")),
        (Some("blackbox"), Some(target.as_str()))
    );

    healthy.store(false, Ordering::SeqCst);
    let failing = c.collect().await.unwrap();
    assert_eq!(value(&failing, "probe_success"), 0.0);
    assert_eq!(value(&failing, "probe_http_status_code"), 503.0);

    // A 503 may be the expected answer; then the body decides.
    let mut cfg = probe(target.clone(), "status: ok");
    cfg.expect_status = vec![503];
    let mut strict = ProbeCollector::new(&cfg).unwrap();
    assert_eq!(
        value(&strict.collect().await.unwrap(), "probe_success"),
        0.0,
        "body does not match"
    );

    healthy.store(true, Ordering::SeqCst);
    assert_eq!(value(&c.collect().await.unwrap(), "probe_success"), 1.0);
}

#[tokio::test]
async fn tcp_and_unreachable_probes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().port();
    let mut up = ProbeCollector::new(&probe(format!("tcp://127.0.0.1:{open}"), "")).unwrap();
    let samples = up.collect().await.unwrap();
    assert_eq!(value(&samples, "probe_success"), 1.0);
    assert!(!samples.iter().any(|s| s.name == "probe_http_status_code"));

    let closed = free_port();
    let mut down = ProbeCollector::new(&probe(format!("tcp://127.0.0.1:{closed}"), "")).unwrap();
    assert_eq!(value(&down.collect().await.unwrap(), "probe_success"), 0.0);
    let mut http_down = ProbeCollector::new(&probe(format!("http://127.0.0.1:{closed}/"), "")).unwrap();
    let samples = http_down.collect().await.unwrap();
    assert_eq!(value(&samples, "probe_success"), 0.0);
    assert_eq!(value(&samples, "probe_http_status_code"), 0.0);
    drop(listener);
}
