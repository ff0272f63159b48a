//! A private redis-server per test on a reserved loopback port in a temp dir, without
//! persistence, optionally with a password or accepting TLS only; ready once it answers
//! PING (over TLS with `redis-cli`), killed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::certs::Certs;
use crate::ports::reserve;
use crate::process::Proc;
use crate::wait::HANG;

/// How many ports to try when another process takes the reserved one in between.
const ATTEMPTS: usize = 5;

/// A running redis-server; killed when dropped.
pub struct Redis {
    /// The port on 127.0.0.1 (the TLS port for [`Redis::start_tls`]).
    pub port: u16,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

impl Redis {
    /// A server without TLS, requiring `password` (`requirepass`) when given.
    pub fn start(password: Option<&str>) -> Redis {
        Redis::start_with(password, None)
    }

    /// A server accepting only TLS, with the server certificate of `certs` (clients are not
    /// asked for certificates).
    pub fn start_tls(certs: &Certs) -> Redis {
        Redis::start_with(None, Some(certs))
    }

    fn start_with(password: Option<&str>, tls: Option<&Certs>) -> Redis {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Redis::try_start(password, tls) {
                Ok(r) => return r,
                Err(why) => failures.push(why),
            }
        }
        panic!("redis-server did not start in {ATTEMPTS} attempts: {failures:?}");
    }

    fn try_start(password: Option<&str>, tls: Option<&Certs>) -> Result<Redis, String> {
        let dir = tempfile::tempdir().unwrap();
        let reserved = reserve();
        let port = reserved.port().to_string();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        match tls {
            None => {
                cmd.args(["--port", &port]);
            }
            Some(c) => {
                cmd.args(["--port", "0", "--tls-port", &port, "--tls-auth-clients", "no"])
                    .arg("--tls-cert-file")
                    .arg(&c.cert)
                    .arg("--tls-key-file")
                    .arg(&c.key)
                    .arg("--tls-ca-cert-file")
                    .arg(&c.ca);
            }
        }
        let port = reserved.release();
        let mut proc = Proc(
            cmd.spawn()
                .expect("redis-server must be installed (apt-get install redis-server)"),
        );
        let deadline = Instant::now() + HANG;
        loop {
            if proc.exited() {
                return Err(format!("redis-server exited at start on port {port} (taken?)"));
            }
            let answers = match tls {
                None => answers_ping(port),
                Some(c) => answers_ping_tls(port, c),
            };
            if answers {
                return Ok(Redis {
                    port,
                    _dir: dir,
                    _proc: proc,
                });
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer PING within {HANG:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// True when a Redis on `port` answers PING (`+PONG`, or `-NOAUTH` with a password set).
fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"),
        _ => false,
    }
}

/// True when a TLS Redis on `port` answers PING, checked with `redis-cli` trusting `certs`.
fn answers_ping_tls(port: u16, certs: &Certs) -> bool {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls", "--cacert"])
        .arg(&certs.ca)
        .arg("PING")
        .output()
        .expect("redis-cli must be installed (apt-get install redis-tools)");
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "PONG"
}
