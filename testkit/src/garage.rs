//! A private Garage cluster per test: three `garage server` processes on loopback with
//! replication factor 3, each in its own temp dir on reserved ports, joined into one
//! layout; a bucket and an access key allowed on it are made before [`Garage::start`]
//! returns. Every node is killed on drop; [`Garage::stop_node`] kills one early, to test
//! that reads and writes go on with the two left (Garage's quorum is 2 of 3).
//!
//! The binary is `garage` from `~/.cargo/bin` (or `PATH`), which `scripts/test.sh`
//! installs with `cargo install garage` when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::ports::reserve;
use crate::process::Proc;
use crate::wait::{until, HANG};

/// The region the S3 API of the test cluster answers to.
pub const REGION: &str = "garage";

/// Nodes in the cluster (and the replication factor).
const NODES: usize = 3;

/// One `garage server` of the cluster.
struct Node {
    config: PathBuf,
    s3_port: u16,
    proc: Option<Proc>,
}

/// A running three-node Garage cluster with one bucket and one key that may read and
/// write it; every node is killed when dropped.
pub struct Garage {
    /// The bucket made for the test.
    pub bucket: String,
    /// The access key id allowed to read and write `bucket`.
    pub access_key_id: String,
    /// The secret of `access_key_id`.
    pub secret_access_key: String,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Garage {
    /// Starts the three nodes, joins them, assigns each a role in its own zone (so every
    /// object has a copy on each), applies the layout, and makes the bucket `didban` and a
    /// key with read, write and owner rights on it.
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let secret = random_hex(32);
        let mut reserved = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let s3 = reserve();
            let rpc = reserve();
            let node_dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let config = node_dir.join("garage.toml");
            std::fs::write(&config, node_config(&node_dir, &secret, s3.port(), rpc.port())).unwrap();
            nodes.push(Node {
                config,
                s3_port: s3.port(),
                proc: None,
            });
            reserved.push(s3);
            reserved.push(rpc);
        }
        for port in reserved {
            port.release();
        }
        for node in &mut nodes {
            node.proc = Some(spawn_server(&node.config));
        }
        for node in &nodes {
            until("a garage node to answer `garage status`", HANG, || {
                let out = garage(&node.config, &["status"]);
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).to_string())
                }
            });
        }
        let first = nodes[0].config.clone();
        let mut ids = Vec::new();
        for node in &nodes {
            let id = checked(&node.config, &["node", "id", "-q"]);
            ids.push(id.trim().to_string());
        }
        for id in ids.iter().skip(1) {
            checked(&first, &["node", "connect", id]);
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap_or(id);
            let zone = format!("z{i}");
            checked(&first, &["layout", "assign", "-z", &zone, "-c", "1G", short]);
        }
        checked(&first, &["layout", "apply", "--version", "1"]);
        let bucket = "didban".to_string();
        // The layout reaches every node in a moment; until it has, table writes fail.
        until("the new layout to accept a bucket", HANG, || {
            let out = garage(&first, &["bucket", "create", &bucket]);
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            // An attempt that timed out on the client may still have made it.
            if out.status.success() || err.contains("already exists") {
                Ok(())
            } else {
                Err(err)
            }
        });
        let key_info = checked(&first, &["key", "create", "didban-test"]);
        let access_key_id = field(&key_info, "Key ID:");
        let secret_access_key = field(&key_info, "Secret key:");
        checked(
            &first,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                &bucket,
                "--key",
                "didban-test",
            ],
        );
        Garage {
            bucket,
            access_key_id,
            secret_access_key,
            nodes,
            _dir: dir,
        }
    }

    /// The S3 endpoint of node `i` (`http://127.0.0.1:<port>`); any node serves every
    /// object.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    /// Kills node `i` (and waits for it to exit): the two others keep a quorum.
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i].proc = None;
    }

    /// Runs the `garage` command line against node `i` with `args` and returns its
    /// standard output; panics when it fails.
    pub fn cli(&self, i: usize, args: &[&str]) -> String {
        checked(&self.nodes[i].config, args)
    }
}

/// The configuration of one node: LMDB metadata and data under `dir`, RPC and S3 on the
/// given loopback ports, replication factor 3 with the cluster-wide `secret`.
fn node_config(dir: &Path, secret: &str, s3_port: u16, rpc_port: u16) -> String {
    format!(
        r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "lmdb"
replication_factor = {NODES}
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"
"#,
        dir = dir.display(),
    )
}

/// The `garage` binary: `~/.cargo/bin/garage` when there, else whatever `PATH` finds.
fn binary() -> PathBuf {
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cargo/bin/garage");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("garage")
}

/// Starts `garage server` with `config`, its log in `garage.log` beside the config.
fn spawn_server(config: &Path) -> Proc {
    let log_path = config.with_file_name("garage.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(binary())
        .arg("-c")
        .arg(config)
        .arg("server")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("garage must be installed (scripts/test.sh runs `cargo install garage`)");
    Proc(child)
}

/// Runs `garage -c <config> <args>`.
fn garage(config: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("-c")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("garage must be installed (scripts/test.sh runs `cargo install garage`)")
}

/// [`garage`], panicking with its error output when it fails; returns standard output.
fn checked(config: &Path, args: &[&str]) -> String {
    let out = garage(config, args);
    assert!(
        out.status.success(),
        "garage {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The value after `label` on its line of `garage key` output.
fn field(text: &str, label: &str) -> String {
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix(label) {
            return rest.trim().to_string();
        }
    }
    panic!("no {label:?} in garage output: {text}");
}

/// `bytes` random bytes as hex, from the kernel.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut f, &mut buf).unwrap();
    let mut s = String::with_capacity(bytes * 2);
    for b in buf {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
