//! Real servers for the tests: Python helper scripts, redis-server and PostgreSQL, each on a
//! free port in a temp dir, stopped on drop. A missing program or Python package fails the
//! test with a message saying what to install; nothing is skipped.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::otlp::free_port;

/// Path of a helper script in agent/tests/.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(name)
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a Python script and returns it with the first line it printed.
pub fn spawn_python(name: &str, args: &[&str]) -> (Proc, String) {
    let child = Command::new("python3")
        .arg(script(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed");
    let mut proc = Proc(child);
    let stdout = proc.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    if line.trim().is_empty() {
        let mut err = String::new();
        if let Some(mut e) = proc.0.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        panic!("{name} printed nothing; is `pip install -r tests/requirements.txt` done?\nstderr:\n{err}");
    }
    (proc, line.trim().to_string())
}

/// A redis-server in a temp dir.
pub struct Redis {
    pub port: u16,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

impl Redis {
    /// Starts redis-server, optionally with `requirepass`, and waits until it answers.
    pub fn start(password: Option<&str>) -> Redis {
        Redis::start_with(password, None)
    }

    /// Starts redis-server accepting only TLS (on `port`) with the given certificates.
    pub fn start_tls(certs: &Certs) -> Redis {
        Redis::start_with(None, Some(certs))
    }

    fn start_with(password: Option<&str>, tls: Option<&Certs>) -> Redis {
        // A port picked by binding :0 can be taken by another test before redis-server
        // binds it; then redis-server exits, or the port answers for someone else. Check
        // that our own process answers, and try again on a new port otherwise.
        for _ in 0..5 {
            if let Some(r) = Redis::try_start(password, tls) {
                return r;
            }
        }
        panic!("redis-server did not start after 5 attempts");
    }

    fn try_start(password: Option<&str>, tls: Option<&Certs>) -> Option<Redis> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        if let Some(c) = tls {
            cmd.args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(&c.cert)
            .arg("--tls-key-file")
            .arg(&c.key)
            .arg("--tls-ca-cert-file")
            .arg(&c.ca);
        }
        let mut proc = Proc(
            cmd.spawn()
                .expect("redis-server must be installed (apt-get install redis-server)"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if proc.0.try_wait().ok().flatten().is_some() {
                return None; // exited: most likely the port was taken
            }
            let ready = if tls.is_some() {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                answers_ping(port)
            };
            if ready {
                return Some(Redis {
                    port,
                    _dir: dir,
                    _proc: proc,
                });
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// True when a Redis on `port` answers PING (`+PONG`, or `-NOAUTH` with a password set).
fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
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

/// A PostgreSQL cluster made by initdb in a temp dir owned by the `postgres` user.
pub struct Postgres {
    pub port: u16,
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

/// The newest /usr/lib/postgresql/<v>/bin.
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
    // Tests run as root; PostgreSQL refuses to run as root, so run the tools as `postgres`.
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
    cmd
}

impl Postgres {
    /// initdb + pg_ctl start with pg_stat_statements preloaded; waits until it accepts.
    pub fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// Like [`Postgres::start`], accepting TCP connections over TLS only.
    pub fn start_tls(certs: &Certs) -> Postgres {
        Postgres::start_with(Some(certs))
    }

    fn start_with(tls: Option<&Certs>) -> Postgres {
        let bin = pg_bin();
        let dir = tempfile::Builder::new().prefix("didban-pg").tempdir().unwrap();
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let data = dir.path().join("data");
        let out = as_postgres(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements \
             -c fsync=off -c track_io_timing=on",
            dir.path().display()
        );
        if let Some(c) = tls {
            let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
            std::fs::copy(&c.cert, &cert).unwrap();
            std::fs::copy(&c.key, &key).unwrap();
            let owned = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cert)
                .arg(&key)
                .status()
                .unwrap();
            assert!(owned.success());
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
        let out = as_postgres(&bin, "pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(dir.path().join("log"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "start"])
            .output()
            .unwrap();
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres { port, dir, bin }
    }

    /// A DSN for user postgres on database `db`.
    pub fn dsn(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={db}", self.port)
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

/// A private RabbitMQ node (its own name, ports and directories) with the management plugin,
/// so the test neither depends on nor changes the machine's broker.
pub struct Rabbitmq {
    pub amqp_port: u16,
    pub management_port: u16,
    node: String,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

impl Rabbitmq {
    /// Starts the node and waits (up to 60 s) until the management API answers.
    pub fn start() -> Rabbitmq {
        let dir = tempfile::Builder::new().prefix("didban-rmq").tempdir().unwrap();
        let (amqp_port, management_port, dist_port) = (free_port(), free_port(), free_port());
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
        assert!(status.success());
        let d = dir.path();
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
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = std::net::TcpStream::connect(("127.0.0.1", management_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", amqp_port)).is_ok();
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "rabbitmq-server did not start");
            std::thread::sleep(Duration::from_millis(250));
        }
        Rabbitmq {
            amqp_port,
            management_port,
            node,
            _dir: dir,
            _proc: proc,
        }
    }
}

impl Drop for Rabbitmq {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "stop"])
            .output();
    }
}

/// A test CA and a server certificate it signed for `localhost` / `127.0.0.1`, made with the
/// openssl command line.
pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Runs the openssl command line in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn make_certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| openssl(d, args);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=didban test CA",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    Certs {
        ca: d.join("ca.pem"),
        cert: d.join("server.pem"),
        key: d.join("server.key"),
        dir,
    }
}

/// A chain root (10 days) → intermediate (1 day) → server certificate (3 days): the
/// intermediate expires first. `cert` holds the server certificate followed by the
/// intermediate, as a server sends them; `ca` is the root.
pub fn make_chain_certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| openssl(d, args);
    let key = |name: &str| {
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            name,
        ]);
    };
    key("root.key");
    key("int.key");
    key("server.key");
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "10",
        "-subj",
        "/CN=didban chain root",
    ]);
    std::fs::write(
        d.join("int.cnf"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    std::fs::write(
        d.join("server.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-new",
        "-key",
        "int.key",
        "-out",
        "int.csr",
        "-subj",
        "/CN=didban chain intermediate",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "int.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-out",
        "int.pem",
        "-days",
        "1",
        "-extfile",
        "int.cnf",
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "int.pem",
        "-CAkey",
        "int.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "3",
        "-extfile",
        "server.cnf",
    ]);
    let mut chain = std::fs::read(d.join("leaf.pem")).unwrap();
    chain.extend(std::fs::read(d.join("int.pem")).unwrap());
    std::fs::write(d.join("chain.pem"), chain).unwrap();
    Certs {
        ca: d.join("root.pem"),
        cert: d.join("chain.pem"),
        key: d.join("server.key"),
        dir,
    }
}
