//! A private RabbitMQ node per test (its own node name, ports and directories) with the
//! management plugin, so a test neither depends on nor changes the machine's broker. Ready
//! once the management API answers for `guest` and the AMQP port speaks AMQP; stopped with
//! `rabbitmqctl stop` on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ports::reserve;
use crate::process::Proc;
use crate::wait::until;

/// A node takes a few seconds to boot, more on a loaded machine.
const BOOT_WITHIN: Duration = Duration::from_secs(120);

/// A running node; stopped when dropped.
pub struct Rabbitmq {
    /// The AMQP port on 127.0.0.1 (user `guest`, password `guest`).
    pub amqp_port: u16,
    /// The management HTTP API port on 127.0.0.1.
    pub management_port: u16,
    node: String,
    _dir: tempfile::TempDir,
    proc: Proc,
}

impl Rabbitmq {
    /// Starts the node (statistics refreshed every 500 ms) and waits until it answers.
    pub fn start() -> Rabbitmq {
        let dir = tempfile::Builder::new().prefix("didban-rmq").tempdir().unwrap();
        let (amqp, management, dist) = (reserve(), reserve(), reserve());
        let (amqp_port, management_port) = (amqp.port(), management.port());
        let node = format!("didban{amqp_port}@localhost");
        std::fs::write(dir.path().join("enabled_plugins"), "[rabbitmq_management].\n").unwrap();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = {amqp_port}\nmanagement.tcp.port = {management_port}\n\
                 management.tcp.ip = 127.0.0.1\ncollect_statistics_interval = 500\n"
            ),
        )
        .unwrap();
        // rabbitmq-server drops to the rabbitmq user, which must own its directories.
        let status = Command::new("chown")
            .arg("-R")
            .arg("rabbitmq:rabbitmq")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "chown rabbitmq {}: {status}",
            dir.path().display()
        );
        let d = dir.path().to_path_buf();
        let dist_port = dist.release();
        amqp.release();
        management.release();
        let child = Command::new("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rabbitmq-server must be installed (apt-get install rabbitmq-server)");
        let mut rabbit = Rabbitmq {
            amqp_port,
            management_port,
            node,
            _dir: dir,
            proc: Proc(child),
        };
        until(
            &format!("RabbitMQ node {} to answer", rabbit.node),
            BOOT_WITHIN,
            || {
                assert!(
                !rabbit.proc.exited(),
                "rabbitmq-server {} exited while starting (ports {amqp_port}, {management_port}, {dist_port} taken?); logs in {}",
                rabbit.node,
                d.join("log").display()
            );
                let api = management_status(management_port)
                    .map_err(|e| format!("management API on port {management_port}: {e}"))?;
                if api != "200" {
                    return Err(format!("management API answered {api}"));
                }
                if !speaks_amqp(amqp_port) {
                    return Err(format!("no AMQP greeting on port {amqp_port}"));
                }
                Ok(())
            },
        );
        rabbit
    }
}

impl Rabbitmq {
    /// The Erlang node name (`didban<port>@localhost`), as `rabbitmqctl -n` and
    /// `GET /api/overview` name it.
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// The HTTP status of `GET /api/overview` as `guest` (plain HTTP/1.0 over a socket: the test
/// may be inside a tokio runtime, where a blocking HTTP client cannot run).
fn management_status(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    // "guest:guest" in base64.
    s.write_all(
        b"GET /api/overview HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\r\n",
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    // "HTTP/1.1 200"
    Ok(String::from_utf8_lossy(&head[9..12]).into_owned())
}

/// True when the server on `port` answers the AMQP 0-9-1 protocol header with a method frame
/// (`connection.start`).
fn speaks_amqp(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"AMQP\x00\x00\x09\x01").is_err() {
        return false;
    }
    let mut frame_type = [0u8; 1];
    matches!(s.read(&mut frame_type), Ok(1) if frame_type[0] == 1)
}

impl Drop for Rabbitmq {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "stop"])
            .output();
    }
}
