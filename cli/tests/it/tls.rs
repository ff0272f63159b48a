//! `didban serve` with `[tls]` in its config file, as a user runs it: every listener answers
//! over HTTPS, the in-process host collector still ships its metrics (over its loopback
//! listener), and a certificate file that does not load stops the start with its name.

use std::path::Path;
use std::time::Duration;

use didban_testkit::certs::make_certs;
use didban_testkit::{wait, Didban, Start};

const BIN: &str = env!("CARGO_BIN_EXE_didban");

fn https_client(ca: &Path) -> reqwest::blocking::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

fn config_file(dir: &Path, cert: &Path, key: &Path) -> String {
    let path = dir.join("didban.toml");
    std::fs::write(
        &path,
        format!(
            "[host_metrics]\ninterval = \"1s\"\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn serve_over_tls_from_the_config_file_with_the_host_collector() {
    let certs = make_certs();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &certs.cert, &certs.key);
    let stderr = dir.path().join("stderr.log");
    let mut d = Didban::spawn(
        BIN,
        &dir.path().join("data"),
        Start {
            args: &["--config", &config],
            stderr: Some(&stderr),
            ..Start::default()
        },
    );
    let client = https_client(&certs.ca);
    let base = format!("https://localhost:{}", port(&d.http));
    wait::until("didban ready over HTTPS", Duration::from_secs(60), || {
        if let Ok(Some(status)) = d.child.try_wait() {
            let text = std::fs::read_to_string(&stderr).unwrap_or_default();
            panic!("didban exited ({status}): {text}");
        }
        match client.get(format!("{base}/-/ready")).send() {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(format!("{e:#}")),
        }
    });
    let page = client.get(format!("{base}/")).send().unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::blocking::Client::new()
        .get(format!("http://{}/-/ready", d.http))
        .send();
    assert!(!plain.is_ok_and(|r| r.status().is_success()));
    let otlp = client
        .post(format!("https://localhost:{}/v1/metrics", port(&d.otlp_http)))
        .header("content-type", "application/json")
        .body(r#"{"resourceMetrics":[]}"#)
        .send()
        .unwrap();
    assert_eq!(otlp.status(), 200);
    // The host collector cannot use the TLS gRPC port; its samples still arrive.
    wait::until(
        "host metrics over the loopback listener",
        Duration::from_secs(60),
        || {
            let body: serde_json::Value = client
                .get(format!("{base}/api/v1/query?query=node_load1"))
                .send()
                .map_err(|e| format!("{e:#}"))?
                .json()
                .map_err(|e| format!("{e:#}"))?;
            match body["data"]["result"].as_array() {
                Some(r) if !r.is_empty() => Ok(()),
                _ => Err(body.to_string()),
            }
        },
    );
    assert!(d.terminate().success(), "{}", d.stderr_text());
}

#[test]
fn a_certificate_that_does_not_load_stops_the_start_naming_the_file() {
    let certs = make_certs();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let config = config_file(dir.path(), &bad, &certs.key);
    let stderr = dir.path().join("stderr.log");
    let mut d = Didban::spawn(
        BIN,
        &dir.path().join("data"),
        Start {
            args: &["--config", &config],
            stderr: Some(&stderr),
            ..Start::default()
        },
    );
    let status = d.child.wait().unwrap();
    assert!(!status.success());
    let text = d.stderr_text();
    assert!(text.contains("broken.pem"), "{text}");
}
