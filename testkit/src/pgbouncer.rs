//! A private PgBouncer per test (Debian package `pgbouncer`) in front of a test
//! [`Postgres`]: ini, user list, log and pid file in a temp dir, a reserved loopback port,
//! `auth_type = trust` (the user must still be listed), transaction pooling, and `postgres`
//! as admin user of the `pgbouncer` admin console. One pooled database `app` points at the
//! cluster's `postgres` database with the pool size asked for. PgBouncer refuses to run as
//! root, so it runs as `postgres` like the cluster. Ready once the port accepts connections;
//! killed on drop.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::reserve;
use crate::postgres::Postgres;
use crate::process::Proc;
use crate::wait::HANG;

/// How many ports to try when another process takes the reserved one in between.
const ATTEMPTS: usize = 5;

/// A running PgBouncer; killed when dropped.
pub struct Pgbouncer {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The temp dir holding `pgbouncer.ini`, `userlist.txt` and `pgbouncer.log`.
    pub dir: tempfile::TempDir,
    _proc: Proc,
}

impl Pgbouncer {
    /// Starts PgBouncer pooling database `app` (the cluster's `postgres` database) with at
    /// most `pool_size` server connections.
    pub fn start(pg: &Postgres, pool_size: u32) -> Pgbouncer {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Pgbouncer::try_start(pg, pool_size) {
                Ok(b) => return b,
                Err(why) => failures.push(why),
            }
        }
        panic!("pgbouncer did not start in {ATTEMPTS} attempts: {failures:?}");
    }

    fn try_start(pg: &Postgres, pool_size: u32) -> Result<Pgbouncer, String> {
        let dir = tempfile::Builder::new().prefix("didban-pgb").tempdir().unwrap();
        let d = dir.path().display().to_string();
        let reserved = reserve();
        let port = reserved.port();
        let ini = format!(
            "[databases]\n\
             app = host=127.0.0.1 port={pg_port} dbname=postgres user=postgres pool_size={pool_size}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {d}/userlist.txt\n\
             admin_users = postgres\n\
             pool_mode = transaction\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 50\n\
             logfile = {d}/pgbouncer.log\n\
             pidfile = {d}/pgbouncer.pid\n",
            pg_port = pg.port
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).unwrap();
        std::fs::write(dir.path().join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
        let status = Command::new("chown")
            .arg("-R")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "chown postgres {d}: {status}");
        reserved.release();
        // Started directly as user postgres (not through runuser, which forks it and would
        // leave it running when the guard kills runuser).
        let (uid, gid) = postgres_ids();
        let mut proc = Proc(
            std::os::unix::process::CommandExt::gid(
                std::os::unix::process::CommandExt::uid(&mut Command::new("pgbouncer"), uid),
                gid,
            )
            .arg(dir.path().join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer must be installed (apt-get install pgbouncer)"),
        );
        let deadline = Instant::now() + HANG;
        loop {
            if proc.exited() {
                let log = std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default();
                return Err(format!("pgbouncer exited at start on port {port}: {log}"));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Pgbouncer {
                    port,
                    dir,
                    _proc: proc,
                });
            }
            if Instant::now() > deadline {
                return Err(format!("pgbouncer on port {port} did not listen within {HANG:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// URL of the admin console (database `pgbouncer`, user `postgres`).
    pub fn admin_dsn(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/pgbouncer", self.port)
    }

    /// libpq-style DSN of the pooled database `app` for user `postgres`.
    pub fn app_dsn(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=app", self.port)
    }
}

/// The uid and gid of user `postgres` (PgBouncer refuses to run as root).
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "postgres"]).output().unwrap();
        assert!(out.status.success(), "id {flag} postgres failed");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    (id("-u"), id("-g"))
}
