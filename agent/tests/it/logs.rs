//! Log-file tailing through the whole agent into an in-test OTLP receiver: rotation by rename
//! and by copytruncate during the test, multiline records, JSON lines, files that appear
//! later, and a restart that resumes from the checkpoint with nothing lost or repeated.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::otlp::{start_grpc, Receiver, Recorder};
use didban_agent::config::Config;
use didban_agent::runner::Agent;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn agent(data: &Path, logs_dir: &Path, receiver: &Receiver) -> Agent {
    let text = format!(
        r#"
        [agent]
        data_dir = "{data}"
        hostname = "log-host"
        [host]
        enabled = false
        [export]
        endpoint = "{endpoint}"
        flush_interval = "100ms"
        [[logs]]
        paths = ["{dir}/*.log"]
        service = "web"
        multiline_start = '^\d{{4}}-'
        start_at = "beginning"
        poll_interval = "100ms"
        [[logs]]
        paths = ["{dir}/json/*.jsonl"]
        service = "api"
        json = true
        start_at = "beginning"
        poll_interval = "100ms"
        "#,
        data = data.display(),
        endpoint = receiver.endpoint(),
        dir = logs_dir.display()
    );
    Agent::start(&Config::parse(&text).unwrap()).unwrap()
}

/// body → how many times it arrived.
fn bodies(recorder: &Recorder) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, _, body) in recorder.log_records() {
        *out.entry(body).or_default() += 1;
    }
    out
}

async fn wait_for_bodies(recorder: &Recorder, wanted: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = bodies(recorder);
        if wanted.iter().all(|w| got.contains_key(*w)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "missing some of {wanted:?}; got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_multiline_json_and_new_files() {
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(0, recorder.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    std::fs::create_dir(logs.path().join("json")).unwrap();
    let app = logs.path().join("app.log");
    append(&app, "2026-01-01 started\n");
    let agent = agent(data.path(), logs.path(), &receiver);
    wait_for_bodies(&recorder, &["2026-01-01 started"]).await;

    // A stack trace: one record.
    append(
        &app,
        "2026-01-01 ERROR boom\nTraceback:\n  File x.py, line 3\n2026-01-01 recovered\n",
    );
    wait_for_bodies(
        &recorder,
        &[
            "2026-01-01 ERROR boom\nTraceback:\n  File x.py, line 3",
            "2026-01-01 recovered",
        ],
    )
    .await;

    // Rotation by rename: the writer still appends to the renamed file for a moment.
    let rotated = logs.path().join("app.log.1");
    std::fs::rename(&app, &rotated).unwrap();
    append(&rotated, "2026-01-01 late line in the old file\n");
    append(&app, "2026-01-01 first line of the new file\n");
    wait_for_bodies(
        &recorder,
        &[
            "2026-01-01 late line in the old file",
            "2026-01-01 first line of the new file",
        ],
    )
    .await;

    // Rotation by copytruncate.
    let other = logs.path().join("other.log");
    append(
        &other,
        "2026-01-01 before truncate one\n2026-01-01 before truncate two\n",
    );
    wait_for_bodies(&recorder, &["2026-01-01 before truncate two"]).await;
    std::fs::copy(&other, logs.path().join("other.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&other)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&other, "2026-01-01 after truncate\n");

    // A file that appears later, and JSON lines.
    append(&logs.path().join("later.log"), "2026-01-01 from a new file\n");
    append(
        &logs.path().join("json").join("api.jsonl"),
        "{\"message\":\"order paid\",\"level\":\"warning\",\"order_id\":42}\n",
    );
    wait_for_bodies(
        &recorder,
        &[
            "2026-01-01 after truncate",
            "2026-01-01 from a new file",
            "order paid",
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let got = bodies(&recorder);
    for (body, count) in &got {
        assert_eq!(*count, 1, "{body:?} arrived {count} times");
    }
    assert_eq!(got.len(), 10, "{got:?}");
    let records = recorder.log_records();
    assert!(records.iter().all(|(_, host, _)| host == "log-host"));
    assert!(records
        .iter()
        .any(|(service, _, body)| service == "api" && body == "order paid"));
    assert!(records
        .iter()
        .any(|(service, _, body)| service == "web" && body == "2026-01-01 started"));
    let json = recorder
        .logs
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.resource_logs.clone())
        .find_map(|rl| {
            rl.scope_logs
                .into_iter()
                .flat_map(|s| s.log_records)
                .find(|r| r.severity_text == "warning")
        });
    let json = json.unwrap();
    assert_eq!(json.severity_number, 13);
    assert!(json.attributes.iter().any(|a| a.key == "order_id"));
    agent.shutdown().await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_the_checkpoint() {
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(0, recorder.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let app = logs.path().join("app.log");
    let line = |i: usize| format!("2026-01-01 line {i}");
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&line(i));
        text.push('\n');
    }
    append(&app, &text);
    let first = agent(data.path(), logs.path(), &receiver);
    wait_for_bodies(&recorder, &[&line(49)]).await;
    first.shutdown().await;

    // Written while the agent is down.
    let mut text = String::new();
    for i in 50..100 {
        text.push_str(&line(i));
        text.push('\n');
    }
    append(&app, &text);
    let second = agent(data.path(), logs.path(), &receiver);
    wait_for_bodies(&recorder, &[&line(99)]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = bodies(&recorder);
    for i in 0..100 {
        assert_eq!(
            got.get(&line(i)),
            Some(&1),
            "{} arrived {:?} times",
            line(i),
            got.get(&line(i))
        );
    }
    assert_eq!(got.len(), 100);
    second.shutdown().await;
    receiver.stop().await;
}
