//! The whole agent: the library runner and the real `didban-agent` binary shipping host and
//! scraped metrics to an in-test OTLP receiver, including a collector outage across an agent
//! process restart.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::otlp::{free_port, start_grpc, Recorder};
use crate::common::scripts::spawn_python;
use didban_agent::config::Config;
use didban_agent::runner::Agent;
use didban_testkit::process::Proc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_ships_host_scrape_and_self_metrics() {
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(0, recorder.clone()).await;
    let (_app, ready) = spawn_python("prom_app.py", &[]);
    let port = ready.strip_prefix("READY ").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
        [agent]
        data_dir = "{}"
        hostname = "web-1"
        interval = "1s"
        [export]
        endpoint = "{}"
        flush_interval = "100ms"
        [[scrape]]
        job = "django"
        targets = ["127.0.0.1:{port}"]
        "#,
        dir.path().display(),
        receiver.endpoint()
    );
    let config = Config::parse(&text).unwrap();
    let agent = Agent::start(&config).unwrap();
    let points = recorder
        .wait_for(Duration::from_secs(20), "host, scrape and self metrics", |p| {
            p.iter().any(|x| x.name == "node_cpu_seconds_total")
                && p.iter().any(|x| x.name == "up")
                && p.iter()
                    .any(|x| x.name == "didban_agent_collector_up" && x.attr("collector") == Some("host"))
        })
        .await;
    let cpu = points
        .iter()
        .find(|p| p.name == "node_cpu_seconds_total")
        .unwrap();
    assert_eq!(
        (
            cpu.service_name.as_str(),
            cpu.instance.as_str(),
            cpu.host_name.as_str()
        ),
        ("didban-agent", "web-1", "web-1")
    );
    assert!(cpu.is_sum && cpu.monotonic && cpu.unit.is_empty());
    let up = points.iter().find(|p| p.name == "up").unwrap();
    assert_eq!(
        (up.service_name.as_str(), up.instance.as_str()),
        ("django", format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(up.value, 1.0);
    assert!(
        up.attrs.is_empty(),
        "job/instance travel as resource attributes: {:?}",
        up.attrs
    );
    let requests = points.iter().find(|p| p.name == "app_requests_total").unwrap();
    assert!(requests.is_sum && requests.monotonic);
    let host_up = points
        .iter()
        .find(|p| p.name == "didban_agent_collector_up" && p.attr("collector") == Some("host"))
        .unwrap();
    assert_eq!(host_up.value, 1.0);
    agent.shutdown().await;
    receiver.stop().await;
}

fn node_time_stamps(recorder: &Recorder) -> BTreeSet<u64> {
    recorder
        .named("node_time_seconds")
        .iter()
        .map(|p| p.time_ns)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_restart_during_collector_outage_loses_nothing() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("agent.toml");
    std::fs::write(
        &config_path,
        format!(
            "[agent]\ndata_dir = \"{}\"\ninterval = \"500ms\"\n[export]\nendpoint = \"http://127.0.0.1:{port}\"\n\
             flush_interval = \"100ms\"\nretry_initial_backoff = \"50ms\"\nretry_max_backoff = \"200ms\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let run = |seconds: u64| {
        let child = Command::new(env!("CARGO_BIN_EXE_didban-agent"))
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proc = Proc(child);
        std::thread::sleep(Duration::from_secs(seconds));
        // A clean stop (SIGTERM) flushes the open batch to the disk buffer.
        let status = Command::new("kill")
            .args(["-TERM", &proc.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        proc
    };
    // Two agent runs while the collector is down.
    let mut first = run(2);
    assert!(first.0.wait().unwrap().success());
    let mut second = run(2);
    assert!(second.0.wait().unwrap().success());

    // Collector up, agent started a third time: every host sample of the first two runs arrives.
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(port, recorder.clone()).await;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let _third = Proc(
        Command::new(env!("CARGO_BIN_EXE_didban-agent"))
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    recorder
        .wait_for(
            Duration::from_secs(20),
            "samples collected after the restart",
            |p| {
                p.iter()
                    .any(|x| x.name == "node_time_seconds" && x.time_ns > started)
            },
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stamps = node_time_stamps(&recorder);
    let before: Vec<&u64> = stamps.iter().filter(|t| **t < started).collect();
    // 2 runs x ~2 s at 500 ms intervals: at least 6 collections happened during the outage.
    assert!(
        before.len() >= 6,
        "buffered collections delivered: {}",
        before.len()
    );
    // Each collection once: node_time_seconds has one series, so no timestamp twice.
    let all = recorder.named("node_time_seconds");
    assert_eq!(all.len(), stamps.len(), "no sample delivered twice");
    receiver.stop().await;
}
