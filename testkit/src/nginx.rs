//! A private nginx per test (Debian package `nginx`): its own prefix, config, pid file,
//! temp directories and logs in a temp dir, listening on a reserved loopback port with
//! `stub_status` at `/stub_status`, a few fixed answers (`/` 200, `/missing` 404,
//! `/denied` 403, `/broken` 500) and a `combined` access log. Ready once `/stub_status`
//! answers; stopped on drop (the master told to end its worker first).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::reserve;
use crate::process::Proc;
use crate::wait::HANG;

/// How many ports to try when another process takes the reserved one in between.
const ATTEMPTS: usize = 5;

/// A running nginx; stopped when dropped.
pub struct Nginx {
    /// The HTTP port on 127.0.0.1.
    pub port: u16,
    /// The temp dir holding the config, pid file and logs.
    pub dir: tempfile::TempDir,
    master: Proc,
}

fn config(dir: &std::path::Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\n\
         error_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
           access_log {d}/access.log combined;\n\
           client_body_temp_path {d}/body;\n\
           proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n\
           scgi_temp_path {d}/scgi;\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             location = /stub_status {{ stub_status; }}\n\
             location = /missing {{ return 404; }}\n\
             location = /denied {{ return 403; }}\n\
             location = /broken {{ return 500; }}\n\
             location / {{ return 200 \"ok\\n\"; }}\n\
           }}\n\
         }}\n"
    )
}

impl Nginx {
    /// Starts nginx in the foreground (`daemon off`) with one worker.
    pub fn start() -> Nginx {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Nginx::try_start() {
                Ok(n) => return n,
                Err(why) => failures.push(why),
            }
        }
        panic!("nginx did not start in {ATTEMPTS} attempts: {failures:?}");
    }

    fn try_start() -> Result<Nginx, String> {
        let dir = tempfile::Builder::new().prefix("didban-nginx").tempdir().unwrap();
        let reserved = reserve();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), reserved.port())).unwrap();
        let pid = dir.path().join("nginx.pid");
        let port = reserved.release();
        let mut proc = Proc(
            Command::new("nginx")
                .arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .arg("-c")
                .arg(&conf)
                .arg("-g")
                .arg(format!("daemon off; pid {};", pid.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx must be installed (apt-get install nginx)"),
        );
        let deadline = Instant::now() + HANG;
        loop {
            if proc.exited() {
                let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                return Err(format!("nginx exited at start on port {port}: {log}"));
            }
            if get(port, "/stub_status").is_some_and(|b| b.contains("Active connections")) {
                return Ok(Nginx {
                    port,
                    dir,
                    master: proc,
                });
            }
            if Instant::now() > deadline {
                return Err(format!("nginx on port {port} did not answer within {HANG:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `stub_status` URL.
    pub fn status_url(&self) -> String {
        format!("http://127.0.0.1:{}/stub_status", self.port)
    }

    /// The access log (`combined` format).
    pub fn access_log(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }

    /// One GET over a fresh connection; the status code and body, `None` when nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let text = get(self.port, path)?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((code, body))
    }
}

/// Stops nginx as its own `stop` does: `SIGTERM` to the master, which ends its worker
/// before it exits. (`Proc`'s drop alone sends `SIGKILL`, and a killed master leaves its
/// worker running, orphaned, after the test.) The master is then waited for, briefly; the
/// `Proc` drop after this one reaps it, or kills it if it hangs.
impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.master.id().to_string();
        let asked = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        if !asked {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.master.exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The whole HTTP/1.0 response to `GET path`, or `None` when nothing answers.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: didban-test\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}
