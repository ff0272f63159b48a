//! The real `didban-agent` binary of the stack, started as a child process with a config
//! file the stack writes: it watches PostgreSQL and Redis (Celery events and queues) and
//! tails the application and nginx logs, collecting every second.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use didban_testkit::process::Proc;

use crate::process::BIN;

/// Where the workspace build puts `didban-agent`: next to `didban` (cargo gives a test
/// `CARGO_BIN_EXE_*` only for its own crate's binaries). Panics with what to build when
/// it is missing.
pub fn binary() -> PathBuf {
    let path = Path::new(BIN).with_file_name("didban-agent");
    assert!(
        path.is_file(),
        "{} is missing: the scenario suite runs the real agent binary; build it with \
         `cargo build -p didban-agent` (CI builds every binary with \
         `cargo nextest run --workspace --bins`)",
        path.display()
    );
    path
}

/// What the agent needs to know about the stack.
pub struct Watched<'a> {
    /// The agent's own state directory.
    pub data_dir: &'a Path,
    /// The server's OTLP/gRPC address (`127.0.0.1:port`).
    pub otlp_grpc: &'a str,
    /// PostgreSQL DSN.
    pub postgres_dsn: &'a str,
    /// Redis (the Celery broker) port.
    pub redis_port: u16,
    /// Directory of `app.log` and `access.log`.
    pub logs: &'a Path,
}

/// The agent's TOML: host collection off (the server collects the host), everything else
/// every second, exports flushed every 200 ms.
fn config(w: &Watched) -> String {
    format!(
        r#"
[agent]
data_dir = "{agent_dir}"
hostname = "scenario-agent"
interval = "1s"
[host]
enabled = false
[export]
endpoint = "http://{grpc}"
flush_interval = "200ms"
[[postgres]]
dsn = "{dsn}"
[[redis]]
url = "redis://127.0.0.1:{redis}/0"
[[logs]]
paths = ["{logs}/app.log"]
service = "shop"
poll_interval = "200ms"
[[logs]]
paths = ["{logs}/access.log"]
service = "nginx"
format = "nginx_combined"
poll_interval = "200ms"
"#,
        agent_dir = w.data_dir.display(),
        grpc = w.otlp_grpc,
        dsn = w.postgres_dsn,
        redis = w.redis_port,
        logs = w.logs.display(),
    )
}

/// Writes the config to `dir/agent.toml` and starts `didban-agent --config` on it, its
/// output in `dir/agent.log` (see [`log`]).
pub fn start(dir: &Path, watched: &Watched) -> Proc {
    let bin = binary();
    let path = dir.join("agent.toml");
    std::fs::write(&path, config(watched)).unwrap();
    let log = std::fs::File::create(dir.join("agent.log")).unwrap();
    let child = Command::new(&bin)
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    Proc(child)
}

/// What the agent started by [`start`] in `dir` has logged.
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
}
