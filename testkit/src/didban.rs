//! The real `didban serve` as a child process, for tests that need a real process (signals,
//! `kill -9`, restarts, sign-in over HTTP, a browser). The binary's path comes from the
//! test (`env!("CARGO_BIN_EXE_didban")`, which only the crate that builds it can name).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::ports::reserve;

/// How long a start may take before the test fails (a debug build replays its WAL first).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How to start the server besides its data directory.
#[derive(Default)]
pub struct Start<'a> {
    /// Extra flags after `serve --data-dir … --http-addr … …`. A listen flag given here
    /// (`--http-addr`, `--otlp-http-addr`, `--otlp-grpc-addr`) replaces the reserved port.
    pub args: &'a [&'a str],
    /// Extra environment (the inherited `DIDBAN_ADMIN_*` and `DIDBAN_AUTH` are removed).
    pub envs: &'a [(&'a str, &'a str)],
    /// Where stderr goes; inherited from the test when `None`.
    pub stderr: Option<&'a Path>,
}

/// A running (or exited) `didban serve`; killed when dropped.
pub struct Didban {
    /// The child process.
    pub child: Child,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// `127.0.0.1:<port>` of the query API, remote_write and UI.
    pub http: String,
    /// `127.0.0.1:<port>` of OTLP/HTTP.
    pub otlp_http: String,
    /// `127.0.0.1:<port>` of OTLP/gRPC.
    pub otlp_grpc: String,
    /// The stderr file, when one was given.
    pub stderr: Option<PathBuf>,
}

impl Didban {
    /// Starts `bin serve` over `data_dir` with `args` and waits until `/-/ready` answers.
    pub fn start(bin: &str, data_dir: &Path, args: &[&str]) -> Didban {
        Didban::start_with(
            bin,
            data_dir,
            Start {
                args,
                ..Start::default()
            },
        )
    }

    /// Like [`Didban::start`] with environment and a stderr file. Panics when the server exits
    /// before it is ready (with its stderr when it went to a file).
    pub fn start_with(bin: &str, data_dir: &Path, start: Start) -> Didban {
        let mut d = Didban::spawn(bin, data_dir, start);
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!(
                    "didban exited before it was ready ({status}):\n{}",
                    d.stderr_text()
                );
            }
            if let Ok(r) = client.get(format!("http://{}/-/ready", d.http)).send() {
                if r.status().is_success() {
                    return d;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "didban did not become ready on {} within {READY_WITHIN:?}",
            d.http
        );
    }

    /// Spawns without waiting, for starts that are expected to fail.
    pub fn spawn(bin: &str, data_dir: &Path, start: Start) -> Didban {
        let ports = [reserve(), reserve(), reserve()];
        // A listen flag in `start.args` names the address the test chose.
        let given = |flag: &str, reserved: String| {
            let at = start.args.iter().position(|a| *a == flag);
            at.and_then(|i| start.args.get(i + 1))
                .map(|a| a.to_string())
                .unwrap_or(reserved)
        };
        let http = given("--http-addr", ports[0].addr());
        let otlp_http = given("--otlp-http-addr", ports[1].addr());
        let otlp_grpc = given("--otlp-grpc-addr", ports[2].addr());
        let mut listen = Vec::new();
        for (flag, addr) in [
            ("--http-addr", &http),
            ("--otlp-http-addr", &otlp_http),
            ("--otlp-grpc-addr", &otlp_grpc),
        ] {
            if !start.args.contains(&flag) {
                listen.push(flag.to_string());
                listen.push(addr.clone());
            }
        }
        let stderr = match start.stderr {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        };
        for p in ports {
            p.release();
        }
        let child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(&listen)
            .args(start.args)
            .env("DIDBAN_LOG", "warn")
            .env_remove("DIDBAN_ADMIN_USER")
            .env_remove("DIDBAN_ADMIN_PASSWORD")
            .env_remove("DIDBAN_AUTH")
            .envs(start.envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Didban {
            child,
            data_dir: data_dir.to_path_buf(),
            http,
            otlp_http,
            otlp_grpc,
            stderr: start.stderr.map(Path::to_path_buf),
        }
    }

    /// `http://<http>` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit and returns its status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }

    /// What the server wrote to its stderr file so far (empty when stderr is inherited).
    pub fn stderr_text(&self) -> String {
        match &self.stderr {
            Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The value of `series` (as the exposition writes it: a name, or a name with its
    /// labels in braces, sorted by name) in the server's own `/metrics`; 0 when absent or
    /// when the server does not answer.
    pub fn self_metric(&self, series: &str) -> f64 {
        let text = reqwest::blocking::get(self.url("/metrics"))
            .and_then(|r| r.text())
            .unwrap_or_default();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')) {
                return v.trim().parse().unwrap_or(0.0);
            }
        }
        0.0
    }

    /// `GET /api/v1/query` at `time_s` and the parsed JSON.
    pub fn query(&self, expr: &str, time_s: f64) -> serde_json::Value {
        reqwest::blocking::Client::new()
            .get(self.url("/api/v1/query"))
            .query(&[("query", expr), ("time", &time_s.to_string())])
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}

impl Drop for Didban {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
