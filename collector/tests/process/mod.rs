//! Runs the real `didban` binary as a child process on free ports, for tests that need a
//! real process (crash with `kill -9`, restart, signals).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `didban serve`.
pub struct Didban {
    pub child: Child,
    pub data_dir: PathBuf,
    pub http: String,
    pub otlp_http: String,
    pub otlp_grpc: String,
}

impl Didban {
    /// Starts the binary with `data_dir` and extra flags, and waits until it is ready.
    /// Ports picked by binding :0 can be taken by another test before didban binds them;
    /// didban then exits with a bind error, and the start is retried on new ports.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Didban {
        for _ in 0..5 {
            if let Some(d) = Didban::try_start(data_dir, extra) {
                return d;
            }
        }
        panic!("didban did not start after 5 attempts");
    }

    fn try_start(data_dir: &Path, extra: &[&str]) -> Option<Didban> {
        let (h, oh, og) = (free_port(), free_port(), free_port());
        let http = format!("127.0.0.1:{h}");
        let otlp_http = format!("127.0.0.1:{oh}");
        let otlp_grpc = format!("127.0.0.1:{og}");
        let child = Command::new(env!("CARGO_BIN_EXE_didban"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--http-addr",
                &http,
                "--otlp-http-addr",
                &otlp_http,
                "--otlp-grpc-addr",
                &otlp_grpc,
            ])
            .args(extra)
            .env("DIDBAN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut d = Didban {
            child,
            data_dir: data_dir.to_path_buf(),
            http,
            otlp_http,
            otlp_grpc,
        };
        if d.wait_ready() {
            Some(d)
        } else {
            None
        }
    }

    /// True once our own process answers `/-/ready`; false if it exited first.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Ok(r) = client.get(format!("http://{}/-/ready", self.http)).send() {
                if r.status().is_success() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("didban did not become ready on {}", self.http);
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }

    /// `GET /api/v1/query` and the parsed JSON.
    pub fn query(&self, expr: &str, time_s: f64) -> serde_json::Value {
        let client = reqwest::blocking::Client::new();
        let r = client
            .get(format!("http://{}/api/v1/query", self.http))
            .query(&[("query", expr), ("time", &time_s.to_string())])
            .send()
            .unwrap();
        r.json().unwrap()
    }
}

impl Drop for Didban {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OTLP/HTTP JSON body with one gauge point.
pub fn otlp_gauge_json(service: &str, metric: &str, time_ms: i64, value: f64) -> String {
    let ns = (time_ms as i128) * 1_000_000;
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"{metric}","gauge":{{"dataPoints":[{{"timeUnixNano":"{ns}","asDouble":{value}}}]}}}}]}}]}}]}}"#
    )
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
