//! A private PostgreSQL cluster per test: `initdb` in a temp dir, `pg_ctl start` on a
//! reserved loopback port with `pg_stat_statements` preloaded (optionally accepting TLS
//! connections only), ready once `pg_isready` says it accepts connections over TCP, stopped
//! on drop. Tests run as root, which PostgreSQL refuses, so its tools run as `postgres`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::certs::Certs;
use crate::ports::reserve;
use crate::wait::{until, HANG};

/// How many ports to try when another process takes the reserved one in between.
const ATTEMPTS: usize = 3;

/// A running cluster; stopped (`pg_ctl -m immediate stop`) when dropped.
pub struct Postgres {
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The cluster's temp dir (data in `data/`, log in `log`, Unix socket here too).
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
pub fn pg_bin() -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server must be installed (apt-get install postgresql)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let v = versions.last().expect("no /usr/lib/postgresql/<version>");
    PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
    cmd
}

fn chown_postgres(paths: &[&Path]) {
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .args(paths)
        .status()
        .unwrap();
    assert!(status.success(), "chown postgres {paths:?}: {status}");
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Postgres {
    /// A cluster accepting plain connections (trust authentication for everyone).
    pub fn start() -> Postgres {
        Postgres::start_with(None, "")
    }

    /// A plain cluster started with extra server options (`-c max_connections=50 …`), for
    /// tests that tell several servers apart by their settings.
    pub fn start_with_options(options: &str) -> Postgres {
        Postgres::start_with(None, options)
    }

    /// A cluster accepting TCP connections over TLS only, with the server certificate of
    /// `certs`; plain TCP connections are rejected.
    pub fn start_tls(certs: &Certs) -> Postgres {
        Postgres::start_with(Some(certs), "")
    }

    fn start_with(tls: Option<&Certs>, extra: &str) -> Postgres {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Postgres::try_start(tls, extra) {
                Ok(pg) => return pg,
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "PostgreSQL did not start in {ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    fn try_start(tls: Option<&Certs>, extra: &str) -> Result<Postgres, String> {
        let bin = pg_bin();
        let dir = tempfile::Builder::new().prefix("didban-pg").tempdir().unwrap();
        chown_postgres(&[dir.path()]);
        let data = dir.path().join("data");
        let out = as_postgres(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", stderr_of(&out));
        let reserved = reserve();
        let port = reserved.port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements \
             -c fsync=off -c track_io_timing=on",
            dir.path().display()
        );
        if !extra.is_empty() {
            options.push(' ');
            options.push_str(extra);
        }
        if let Some(c) = tls {
            let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
            std::fs::copy(&c.cert, &cert).unwrap();
            std::fs::copy(&c.key, &key).unwrap();
            chown_postgres(&[&cert, &key]);
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            )
            .unwrap();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
        }
        reserved.release();
        let out = as_postgres(&bin, "pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(dir.path().join("log"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "start"])
            .output()
            .unwrap();
        let pg = Postgres { port, dir, bin };
        if !out.status.success() {
            // Most likely the port was taken between release and bind; the log says.
            let log = std::fs::read_to_string(pg.dir.path().join("log")).unwrap_or_default();
            return Err(format!("pg_ctl start on port {port}: {}\n{log}", stderr_of(&out)));
        }
        // pg_ctl -w waits on the Unix socket; the tests connect over TCP.
        until(
            &format!("PostgreSQL on 127.0.0.1:{port} to accept connections"),
            HANG,
            || {
                let out = Command::new(pg.bin.join("pg_isready"))
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                    .output()
                    .unwrap();
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stdout).into_owned())
                }
            },
        );
        Ok(pg)
    }

    /// A libpq-style DSN for user `postgres` on database `db` over TCP.
    pub fn dsn(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={db}", self.port)
    }

    /// `psql -Atc sql` as user `postgres` on database `db`, its output trimmed; panics
    /// with psql's error when the statement fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args(["-d", db, "-Atc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}
