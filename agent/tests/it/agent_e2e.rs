//! The whole agent: the library runner and the real `didban-agent` binary shipping host and
//! scraped metrics to an in-test OTLP receiver, including a collector outage across an agent
//! process restart.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::otlp::{free_port, start_grpc, Recorder};
use crate::common::scripts::spawn_python;
use didban_agent::config::Config;
use didban_agent::export::Signal;
use didban_agent::runner::Agent;
use didban_testkit::process::Proc;
use didban_testkit::wait::{until, HANG};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric;
use prost::Message;

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
    // job/instance travel as resource attributes; the watching agent is named per point.
    assert_eq!(
        up.attrs,
        vec![("agent_host".to_string(), "web-1".to_string())],
        "{:?}",
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

/// Distinct `node_time_seconds` stamps in the agent's disk buffer (segment files `<id>.seg`:
/// an 8-byte header, then frames `len: u32 LE | crc32: u32 LE | signal tag | OTLP request`),
/// read while the agent runs: a frame still being written is left for the next look.
fn buffered_node_time_stamps(buffer: &Path) -> BTreeSet<u64> {
    let mut stamps = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(buffer) else {
        return stamps;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "seg") {
            continue;
        }
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let mut pos = 8;
        while pos + 8 <= data.len() {
            let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            let Some(payload) = data.get(pos + 8..pos + 8 + len) else {
                break;
            };
            pos += 8 + len;
            let Some((&tag, body)) = payload.split_first() else {
                continue;
            };
            if tag != Signal::Metrics as u8 {
                continue;
            }
            let Ok(request) = ExportMetricsServiceRequest::decode(body) else {
                continue;
            };
            for rm in &request.resource_metrics {
                for sm in &rm.scope_metrics {
                    for m in sm.metrics.iter().filter(|m| m.name == "node_time_seconds") {
                        if let Some(metric::Data::Gauge(g)) = &m.data {
                            stamps.extend(g.data_points.iter().map(|p| p.time_unix_nano));
                        }
                    }
                }
            }
        }
    }
    stamps
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
            dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let buffer = dir.path().join("data").join("buffer");
    // Each run lasts until the buffer holds `collections` host collections in all, however
    // slowly the machine starts it.
    let run = |collections: usize| {
        let child = Command::new(env!("CARGO_BIN_EXE_didban-agent"))
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut proc = Proc(child);
        until(&format!("{collections} buffered host collections"), HANG, || {
            assert!(!proc.exited(), "the agent exited during the outage");
            let stamps = buffered_node_time_stamps(&buffer);
            if stamps.len() >= collections {
                Ok(())
            } else {
                Err(format!("{} in {}", stamps.len(), buffer.display()))
            }
        });
        // A clean stop (SIGTERM) flushes the open batch to the disk buffer.
        let status = Command::new("kill")
            .args(["-TERM", &proc.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        proc
    };
    // Two agent runs while the collector is down, three collections each.
    let mut first = run(3);
    assert!(first.0.wait().unwrap().success());
    let mut second = run(6);
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
    // The two runs buffered at least 6 collections during the outage.
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
