//! A real Prometheus (Debian's `prometheus` package; the test command installs it) scrapes
//! Didban's own `/metrics` and remote-writes the samples to Didban: they come back through
//! PromQL, with the metadata Prometheus sends. Fails, does not skip, without Prometheus.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{free_port, Didban, BIN};
use didban_testkit::process::Proc;

#[test]
fn a_real_prometheus_remote_writes_into_didban() {
    let dir = tempfile::tempdir().unwrap();
    let didban = Didban::start(BIN, &dir.path().join("didban"), &[]);
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: didban-self
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: http://{target}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
    metadata_config:
      send_interval: 1s
"#,
        target = didban.http
    );
    let config_path = prom_dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let mut prometheus = Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", prom_dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is not installed: run scripts/test.sh, which installs it"),
    );

    // Prometheus scrapes every second and sends within a second: give it some time.
    let deadline = Instant::now() + Duration::from_secs(60);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    loop {
        let up = didban.query("up{job=\"didban-self\"}", now());
        let ingested = didban.query(
            "didban_samples_ingested_total{job=\"didban-self\", protocol=\"remote_write\"}",
            now(),
        );
        let meta: serde_json::Value = reqwest::blocking::get(format!(
            "http://{}/api/v1/metadata?metric=didban_head_series",
            didban.http
        ))
        .unwrap()
        .json()
        .unwrap();
        let up_ok = up["data"]["result"][0]["value"][1] == "1";
        let counted = ingested["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v > 0.0);
        let meta_ok = meta["data"]["didban_head_series"][0]["type"] == "gauge";
        if up_ok && counted && meta_ok {
            assert_eq!(
                up["data"]["result"][0]["metric"]["instance"],
                didban.http.as_str()
            );
            break;
        }
        // Its port may have been taken between free_port() and its bind: say so.
        assert!(
            !prometheus.exited(),
            "prometheus exited (port {port} taken?); up={up}"
        );
        assert!(
            Instant::now() < deadline,
            "Prometheus' remote_write did not arrive: up={up} ingested={ingested} metadata={meta}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
