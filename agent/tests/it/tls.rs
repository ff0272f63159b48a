//! TLS: the exporter to an https gRPC collector with a private CA, scrapes and probes of an
//! HTTPS Python app, and the certificate expiry the probe reports.

use std::sync::Arc;
use std::time::Duration;

use crate::common::otlp::{start_grpc_tls, Recorder};
use crate::common::scripts::spawn_python;
use didban_agent::collectors::probe::ProbeCollector;
use didban_agent::collectors::scrape::ScrapeCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::{ExportConfig, ProbeConfig, ScrapeConfig};
use didban_agent::export::encode::ResourceInfo;
use didban_agent::export::Exporter;
use didban_agent::model::Sample;
use didban_testkit::certs::{make_certs, make_chain_certs};
use didban_testkit::wait::{until_async, HANG};

fn value(s: &[Sample], name: &str) -> f64 {
    s.iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_over_tls_with_a_private_ca() {
    let certs = make_certs();
    let recorder = Arc::new(Recorder::default());
    let cert = std::fs::read(&certs.cert).unwrap();
    let key = std::fs::read(&certs.key).unwrap();
    let receiver = start_grpc_tls(recorder.clone(), &cert, &key).await;
    let endpoint = format!("https://127.0.0.1:{}", receiver.addr.port());
    let resource = ResourceInfo {
        service_name: "didban-agent".into(),
        host_name: "h".into(),
    };

    // Without the CA the collector's certificate is not trusted: nothing is sent.
    let untrusted_dir = tempfile::tempdir().unwrap();
    let untrusted = ExportConfig {
        endpoint: endpoint.clone(),
        flush_interval: Duration::from_millis(50),
        retry_initial_backoff: Duration::from_millis(50),
        ..ExportConfig::default()
    };
    let exporter = Exporter::start(&untrusted, untrusted_dir.path(), resource.clone()).unwrap();
    exporter
        .sink()
        .send(vec![Sample::gauge("tls_test", &[], 1.0, 1_700_000_000_000)])
        .await;
    until_async("an attempt against the untrusted certificate", HANG, || async {
        let snap = exporter.snapshot();
        if snap.failed_attempts > 0 {
            Ok(())
        } else {
            Err(format!("{snap:?}"))
        }
    })
    .await;
    assert!(exporter.snapshot().failed_attempts > 0);
    assert!(recorder.points().is_empty());
    exporter.shutdown().await;

    // With it, the same buffered record goes through.
    let trusted = ExportConfig {
        tls_ca_file: certs.ca.to_str().unwrap().to_string(),
        ..untrusted
    };
    let exporter = Exporter::start(&trusted, untrusted_dir.path(), resource).unwrap();
    recorder
        .wait_for(Duration::from_secs(10), "the buffered point", |p| !p.is_empty())
        .await;
    assert_eq!(recorder.named("tls_test").len(), 1);
    exporter.shutdown().await;
    receiver.stop().await;

    let missing = ExportConfig {
        tls_ca_file: "/nonexistent/ca.pem".into(),
        ..ExportConfig::default()
    };
    let err = Exporter::start(
        &ExportConfig {
            endpoint: "https://c:4317".into(),
            ..missing
        },
        certs.dir.path(),
        ResourceInfo {
            service_name: "x".into(),
            host_name: "h".into(),
        },
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn https_scrape_and_probe_with_certificate_expiry() {
    let certs = make_certs();
    let (_app, ready) = spawn_python(
        "prom_app.py",
        &["--tls", certs.cert.to_str().unwrap(), certs.key.to_str().unwrap()],
    );
    let port = ready.strip_prefix("READY ").unwrap();
    let ca = certs.ca.to_str().unwrap().to_string();

    let job = ScrapeConfig {
        job: "secure".into(),
        targets: vec![],
        metrics_path: "/metrics".into(),
        scheme: "https".into(),
        tls_ca_file: ca.clone(),
        interval: None,
        timeout: Duration::from_secs(5),
        convert_classic_histograms_to_nhcb: false,
    };
    let mut scrape = ScrapeCollector::new(&job, &format!("127.0.0.1:{port}"));
    let samples = scrape.collect().await.unwrap();
    assert_eq!(value(&samples, "up"), 1.0);
    assert!(samples.iter().any(|s| s.name == "app_requests_total"));

    let probe = |tls_ca_file: String| ProbeConfig {
        target: format!("https://127.0.0.1:{port}/metrics"),
        job: "blackbox".into(),
        expect_status: vec![],
        body_match: String::new(),
        tls_ca_file,
        interval: None,
        timeout: Duration::from_secs(5),
    };
    let mut trusted = ProbeCollector::new(&probe(ca)).unwrap();
    let samples = trusted.collect().await.unwrap();
    assert_eq!(value(&samples, "probe_success"), 1.0);
    assert_eq!(value(&samples, "probe_http_ssl"), 1.0);
    let expiry = value(&samples, "probe_ssl_earliest_cert_expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let days = (expiry - now) / 86400.0;
    assert!(
        (1.9..=2.1).contains(&days),
        "certificate made for 2 days expires in {days} days"
    );

    let mut untrusted = ProbeCollector::new(&probe(String::new())).unwrap();
    let samples = untrusted.collect().await.unwrap();
    assert_eq!(value(&samples, "probe_success"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_the_earliest_expiry_of_the_whole_chain() {
    // The server certificate is good for 3 days, but the intermediate it is sent with expires
    // in 1: blackbox_exporter reports the intermediate's date, and so do we.
    let certs = make_chain_certs();
    let (_app, ready) = spawn_python(
        "prom_app.py",
        &["--tls", certs.cert.to_str().unwrap(), certs.key.to_str().unwrap()],
    );
    let port = ready.strip_prefix("READY ").unwrap();
    let config = ProbeConfig {
        target: format!("https://127.0.0.1:{port}/metrics"),
        job: "blackbox".into(),
        expect_status: vec![],
        body_match: String::new(),
        tls_ca_file: certs.ca.to_str().unwrap().to_string(),
        interval: None,
        timeout: Duration::from_secs(5),
    };
    let mut probe = ProbeCollector::new(&config).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for round in 0..2 {
        // Twice: the second probe makes a new handshake and reports the same date.
        let samples = probe.collect().await.unwrap();
        assert_eq!(value(&samples, "probe_success"), 1.0, "round {round}");
        let days = (value(&samples, "probe_ssl_earliest_cert_expiry") - now) / 86400.0;
        assert!(
            (0.9..=1.1).contains(&days),
            "round {round}: expiry in {days} days, want ~1"
        );
    }
}
