//! The real binary on a disk that fills up (a private tmpfs; needs root, skipped with a
//! message otherwise) and out of file descriptors (`prlimit` on the running server): while
//! it lasts, ingest answers 503 with `Retry-After` and `/-/ready` answers 503 naming the
//! fault; once space or descriptors are back both recover without a restart; SIGTERM then
//! exits 0, and every acknowledged sample (and no refused one) is queryable, after a
//! restart too. `scripts/diskfull.sh` runs the disk-full scenario by hand.

use std::time::Duration;

use crate::process::{now_ms, otlp_gauge_json, Didban, BIN};
use didban_testkit::tmpfs::Tmpfs;
use didban_testkit::wait::{until, HANG};

/// One sample of a series of its own (`service` = `svc-<i>`); true when acknowledged.
fn push(client: &reqwest::blocking::Client, server: &Didban, i: i64, t0: i64) -> (u16, Option<String>) {
    let body = otlp_gauge_json(&format!("svc-{i}"), "diskfull_sample", t0 + i, i as f64);
    let r = client
        .post(format!("http://{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry)
}

fn ready(server: &Didban) -> (u16, String) {
    let r = reqwest::blocking::get(server.url("/-/ready")).unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn stored_series(server: &Didban, at_ms: i64) -> f64 {
    let r = server.query(
        "count(last_over_time(diskfull_sample[1h]))",
        at_ms as f64 / 1000.0,
    );
    r["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0.0, |v| v.parse().unwrap())
}

#[test]
fn a_full_disk_is_a_503_until_space_is_freed_and_nothing_acknowledged_is_lost() {
    let fs = match Tmpfs::mount(48 * 1024 * 1024) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_is_a_503_…: {why}");
            return;
        }
    };
    let data = fs.path().join("data");
    let args = ["--no-host-metrics"];
    let mut server = Didban::start(BIN, &data, &args);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let t0 = now_ms() - 60_000;
    let mut acked = 0i64;
    let mut i = 0i64;
    for _ in 0..20 {
        assert_eq!(push(&client, &server, i, t0).0, 200);
        acked += 1;
        i += 1;
    }

    let filler = fs.fill("filler");
    // Requests keep coming until the WAL meets the full disk.
    let retry_after = loop {
        let (status, retry) = push(&client, &server, i, t0);
        i += 1;
        match status {
            200 => acked += 1,
            503 => break retry,
            other => panic!("unexpected status {other} while the disk fills"),
        }
        assert!(i < 100_000, "the disk never filled up");
    };
    assert_eq!(retry_after.as_deref(), Some("5"));
    let (status, body) = ready(&server);
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("metrics WAL") && body.contains("No space left"),
        "{body}"
    );
    // While it lasts, every new series is refused (and leaves nothing behind).
    for _ in 0..50 {
        assert_eq!(push(&client, &server, i, t0).0, 503);
        i += 1;
    }
    assert_eq!(stored_series(&server, t0 + i) as i64, acked);

    std::fs::remove_file(&filler).unwrap();
    until("/-/ready to recover once space is freed", HANG, || {
        match ready(&server) {
            (200, _) => Ok(()),
            (s, body) => Err(format!("{s} {body}")),
        }
    });
    for _ in 0..20 {
        assert_eq!(push(&client, &server, i, t0).0, 200);
        acked += 1;
        i += 1;
    }
    assert_eq!(stored_series(&server, t0 + i) as i64, acked);

    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM after a fault must exit 0, got {status}"
    );
    drop(server);
    let server = Didban::start(BIN, &data, &args);
    assert_eq!(
        stored_series(&server, t0 + i) as i64,
        acked,
        "acknowledged samples after restart"
    );
}

/// The soft `RLIMIT_NOFILE` of process `pid`.
fn soft_nofile(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    line.split_whitespace().nth(3).unwrap().to_string()
}

/// Sets the soft `RLIMIT_NOFILE` of the running server; `Err` when `prlimit` is missing.
fn set_nofile(pid: u32, soft: &str) -> Result<(), String> {
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .output()
        .map_err(|e| format!("cannot run prlimit: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn running_out_of_file_descriptors_is_a_503_until_they_are_back() {
    let dir = tempfile::tempdir().unwrap();
    // 1 KiB segments: every few appends need a new segment file, i.e. a descriptor.
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, "[storage]\nwal_segment_size = \"1KiB\"\n").unwrap();
    let data = dir.path().join("data");
    let config_arg = config.to_str().unwrap();
    let args = ["--no-host-metrics", "--config", config_arg];
    let mut server = Didban::start(BIN, &data, &args);
    // One client, so its keep-alive connections (opened now) outlive the limit.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ready = |client: &reqwest::blocking::Client| {
        let r = client.get(server.url("/-/ready")).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let t0 = now_ms() - 60_000;
    let mut acked = 0i64;
    for i in 0..20 {
        assert_eq!(push(&client, &server, i, t0).0, 200);
        acked += 1;
    }
    assert_eq!(ready(&client).0, 200);

    let pid = server.child.id();
    let soft = soft_nofile(pid);
    // Below what is open now: no new descriptor until several close, whatever else the
    // server opens and closes meanwhile (open ones, like our connections, stay usable).
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    if let Err(why) = set_nofile(pid, &open.saturating_sub(8).max(3).to_string()) {
        eprintln!("SKIPPED running_out_of_file_descriptors_…: {why}");
        return;
    }
    let mut refused = 0;
    let mut i = 20;
    while refused == 0 {
        let (status, retry) = push(&client, &server, i, t0);
        i += 1;
        match status {
            200 => acked += 1,
            503 => {
                assert_eq!(retry.as_deref(), Some("5"));
                refused += 1;
            }
            other => panic!("unexpected status {other} without file descriptors"),
        }
        assert!(i < 1_000, "no append ever needed a descriptor");
    }
    let (status, body) = ready(&client);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Too many open files"), "{body}");

    set_nofile(pid, &soft).unwrap();
    until("/-/ready once descriptors are back", HANG, || {
        match ready(&client) {
            (200, _) => Ok(()),
            (s, body) => Err(format!("{s} {body}")),
        }
    });
    for _ in 0..20 {
        assert_eq!(push(&client, &server, i, t0).0, 200);
        acked += 1;
        i += 1;
    }
    assert_eq!(stored_series(&server, t0 + i) as i64, acked);
    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM after a fault must exit 0, got {status}"
    );
}
