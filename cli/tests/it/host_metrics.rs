//! `didban serve` collects its own host's metrics out of the box (the agent's host
//! collector, in-process, over OTLP into itself), with node_exporter names.

use std::time::{Duration, Instant};

use crate::process::{Didban, BIN};

#[test]
fn a_fresh_server_shows_its_own_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, "[host_metrics]\ninterval = \"1s\"\n").unwrap();
    let data = dir.path().join("data");
    let server = Didban::start(BIN, &data, &["--config", config.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = crate::process::now_ms() as f64 / 1000.0;
        let mem = server.query("node_memory_MemTotal_bytes{job=\"didban-agent\"}", now);
        let cpu = server.query(
            "count(node_cpu_seconds_total{job=\"didban-agent\", mode=\"idle\"})",
            now,
        );
        let total = mem["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok());
        let cpus = cpu["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok());
        if let (Some(total), Some(cpus)) = (total, cpus) {
            assert!(total > 100e6, "MemTotal {total}");
            assert!(cpus >= 1.0, "cpus {cpus}");
            assert!(
                mem["data"]["result"][0]["metric"]["instance"].is_string(),
                "{mem}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no host metrics arrived: {mem} {cpu}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        data.join("agent").is_dir(),
        "the host collector buffers under <data_dir>/agent"
    );
}
