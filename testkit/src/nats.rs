//! A private nats-server with JetStream per test: its own store directory in a temp dir,
//! a reserved loopback client port and monitoring port; ready once `/healthz` says
//! JetStream is up; killed on drop (`kill -9` on demand, for failure tests).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::reserve;
use crate::process::Proc;
use crate::wait::HANG;

/// How many port pairs to try when another process takes a reserved one in between.
const ATTEMPTS: usize = 5;

/// A running nats-server with JetStream.
pub struct Nats {
    /// The client port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
    proc: Proc,
}

impl Nats {
    /// Starts a server (`-js`, file storage in a temp dir).
    pub fn start() -> Nats {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Nats::try_start() {
                Ok(n) => return n,
                Err(why) => failures.push(why),
            }
        }
        panic!("nats-server did not start in {ATTEMPTS} attempts: {failures:?}");
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn try_start() -> Result<Nats, String> {
        let dir = tempfile::tempdir().unwrap();
        let client = reserve();
        let monitor = reserve();
        let mut cmd = Command::new("nats-server");
        cmd.args(["-js", "-a", "127.0.0.1"])
            .arg("-sd")
            .arg(dir.path())
            .args([
                "-p",
                &client.port().to_string(),
                "-m",
                &monitor.port().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let port = client.release();
        let monitor = monitor.release();
        let mut proc = Proc(
            cmd.spawn()
                .expect("nats-server must be installed (apt-get install nats-server)"),
        );
        let health = format!("http://127.0.0.1:{monitor}/healthz?js-enabled-only=true");
        let deadline = Instant::now() + HANG;
        loop {
            if proc.exited() {
                return Err(format!(
                    "nats-server exited at start on ports {port}/{monitor} (taken?)"
                ));
            }
            if let Ok(r) = reqwest::blocking::get(&health) {
                if r.status().is_success() {
                    return Ok(Nats {
                        port,
                        _dir: dir,
                        proc,
                    });
                }
            }
            if Instant::now() > deadline {
                return Err(format!("nats-server on port {port} not healthy within {HANG:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.proc.id()
    }
}
