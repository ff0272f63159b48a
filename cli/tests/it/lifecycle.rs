//! The real binary's lifecycle: every sample acknowledged before a `kill -9` is queryable
//! after restart and a torn WAL tail is cut at start-up, never fatal; SIGTERM drains and
//! exits cleanly; a data directory has one owner; `--help` documents the flags.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::process::{now_ms, otlp_gauge_json, Didban, BIN};
use didban_testkit::wait::{until, HANG};

#[test]
fn acknowledged_samples_survive_kill_9_and_a_torn_wal_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Didban::start(BIN, dir.path(), &[]);
    let base_ms = now_ms() - 60_000;

    // Four writers push one sample per request, each request its own timestamp and
    // value; a sample counts as acknowledged only on a 2xx.
    let acked: Arc<Mutex<Vec<i64>>> = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicBool::new(true));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let acked = acked.clone();
        let running = running.clone();
        let url = format!("http://{}/v1/metrics", server.otlp_http);
        writers.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut i = 0i64;
            while running.load(Ordering::Relaxed) {
                let seq = i * 4 + w;
                let body = otlp_gauge_json("crash", &format!("crash_writer_{w}"), base_ms + i, seq as f64);
                let ok = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    acked.lock().unwrap().push(seq);
                } else if !running.load(Ordering::Relaxed) {
                    break;
                }
                i += 1;
            }
        }));
    }
    // Let them write, then kill mid-stream without warning.
    until("400 acknowledged samples", HANG, || {
        let n = acked.lock().unwrap().len();
        if n >= 400 {
            Ok(())
        } else {
            Err(format!("{n} acknowledged"))
        }
    });
    server.kill9();
    running.store(false, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 400);

    // Simulate a torn last record: half a frame appended to the newest WAL segment.
    let wal_dir = dir.path().join("wal").join("metrics");
    let mut segments: Vec<_> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    segments.sort();
    let last = segments.last().expect("a WAL segment exists");
    let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    f.write_all(&[0x40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .unwrap();
    drop(f);

    let server = Didban::start(BIN, dir.path(), &[]);
    let at = (base_ms + 1_000_000) as f64 / 1000.0;
    for w in 0..4i64 {
        let r = server.query(&format!("crash_writer_{w}[1h]"), at);
        assert_eq!(r["status"], "success", "{r}");
        let values = r["data"]["result"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let stored: std::collections::HashSet<i64> = values
            .iter()
            .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap() as i64)
            .collect();
        for seq in acked.iter().filter(|s| *s % 4 == w) {
            assert!(
                stored.contains(seq),
                "acknowledged sample {seq} of writer {w} lost after kill -9"
            );
        }
    }
    let m = reqwest::blocking::get(format!("http://{}/metrics", server.http))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        m.contains("didban_wal_torn_tail_repairs_total 1"),
        "torn tail not reported:\n{m}"
    );
}

#[test]
fn sigterm_drains_and_exits_cleanly_keeping_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Didban::start(BIN, dir.path(), &[]);
    let t = now_ms();
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/json")
        .body(otlp_gauge_json("term", "before_sigterm", t, 7.0))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let status = server.terminate();
    assert!(status.success(), "didban exited with {status} on SIGTERM");

    // A second start replays cleanly: nothing torn, the sample is there.
    let server = Didban::start(BIN, dir.path(), &[]);
    let r = server.query("before_sigterm", t as f64 / 1000.0);
    assert_eq!(r["data"]["result"][0]["value"][1], "7", "{r}");
    let m = reqwest::blocking::get(format!("http://{}/metrics", server.http))
        .unwrap()
        .text()
        .unwrap();
    assert!(m.contains("didban_wal_torn_tail_repairs_total 0"), "{m}");
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Didban::start(BIN, dir.path(), &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_didban"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another didban process"), "{err}");
}

/// A `--retention-time` shorter than a downsampling age set in the file is refused at
/// start, naming the flag and both durations, as the same setting in the file is.
#[test]
fn a_retention_flag_below_a_configured_downsampling_age_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, "[storage]\ndownsample_5m_after = \"2d\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_didban"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .args(["--retention-time", "1d", "--http-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--retention-time")
            && err.contains("storage.downsample_5m_after (172800s)")
            && err.contains("storage.retention_time (86400s)"),
        "{err}"
    );
}

#[test]
fn help_documents_every_serve_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_didban"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--data-dir",
        "--http-addr",
        "--otlp-grpc-addr",
        "--otlp-http-addr",
        "--fsync",
        "--retention-time",
        "--retention-size",
        "DIDBAN_DATA_DIR",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}
