//! Process control: start Didban or Prometheus as a child on free ports in a temp dir, wait
//! until it is ready, stop it gracefully, take Prometheus' snapshot.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Which system a child process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// `didban serve`.
    Didban,
    /// Debian's `prometheus` with the remote-write receiver enabled.
    Prometheus,
}

impl System {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            System::Didban => "Didban",
            System::Prometheus => "Prometheus",
        }
    }
}

/// A running target.
#[derive(Debug)]
pub struct Running {
    /// Which system this is.
    pub system: System,
    child: Child,
    /// Process id (for /proc figures).
    pub pid: u32,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Base URL of the HTTP API (`http://127.0.0.1:PORT`).
    pub base: String,
    /// Base URL of the OTLP/HTTP receiver (Didban only).
    pub otlp_base: Option<String>,
    /// File with the child's stdout and stderr.
    pub log: PathBuf,
}

/// A free TCP port on 127.0.0.1 (bound and released; a race with other programs is unlikely).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?)
}

fn log_files(dir: &Path) -> anyhow::Result<(PathBuf, Stdio, Stdio)> {
    let path = dir.join("output.log");
    let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let g = f.try_clone()?;
    Ok((path, Stdio::from(f), Stdio::from(g)))
}

/// Starts `didban serve` with its data in `dir/data`.
pub async fn start_didban(
    client: &reqwest::Client,
    bin: &Path,
    dir: &Path,
    extra: &[String],
) -> anyhow::Result<Running> {
    if !bin.exists() {
        bail!("Didban binary {} not found (build it with `cargo build --release -p didban-cli` or pass --didban-bin)", bin.display());
    }
    let data_dir = dir.join("data");
    let (http, grpc, otlp) = (free_addr()?, free_addr()?, free_addr()?);
    let (log, out, err) = log_files(dir)?;
    let child = Command::new(bin)
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--http-addr", &http.to_string()])
        .args(["--otlp-grpc-addr", &grpc.to_string()])
        .args(["--otlp-http-addr", &otlp.to_string()])
        .args(extra)
        .env("DIDBAN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut r = Running {
        system: System::Didban,
        pid: child.id(),
        child,
        data_dir,
        base: format!("http://{http}"),
        otlp_base: Some(format!("http://{otlp}")),
        log,
    };
    r.wait_ready(client).await?;
    Ok(r)
}

/// Starts Prometheus with an empty scrape configuration and its TSDB in `dir/data`.
pub async fn start_prometheus(
    client: &reqwest::Client,
    bin: &Path,
    dir: &Path,
    ooo_window: Option<&str>,
    extra: &[String],
) -> anyhow::Result<Running> {
    if !bin.exists() {
        bail!(
            "Prometheus binary {} not found (apt-get install prometheus or pass --prometheus-bin)",
            bin.display()
        );
    }
    let data_dir = dir.join("data");
    let config = dir.join("prometheus.yml");
    let mut yaml = String::from("# Written by didban-bench: no scrape targets, data arrives by remote_write.\nglobal:\n  scrape_interval: 15s\n");
    if let Some(w) = ooo_window {
        yaml.push_str(&format!("storage:\n  tsdb:\n    out_of_order_time_window: {w}\n"));
    }
    std::fs::write(&config, yaml).with_context(|| format!("writing {}", config.display()))?;
    let http = free_addr()?;
    let (log, out, err) = log_files(dir)?;
    let child = Command::new(bin)
        .arg("--web.enable-remote-write-receiver")
        .arg("--web.enable-admin-api")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data_dir.display()))
        .arg(format!("--web.listen-address={http}"))
        .arg("--storage.tsdb.retention.time=30d")
        .arg("--log.level=warn")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut r = Running {
        system: System::Prometheus,
        pid: child.id(),
        child,
        data_dir,
        base: format!("http://{http}"),
        otlp_base: None,
        log,
    };
    r.wait_ready(client).await?;
    Ok(r)
}

impl Running {
    /// Last lines of the child's output, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return "(no output)".into();
        }
        lines[lines.len().saturating_sub(8)..].join(" | ")
    }

    /// Polls `/-/ready` until it answers 200, for at most 60 s.
    async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let url = format!("{}/-/ready", self.base);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready: {}",
                    self.system.name(),
                    self.log_tail()
                );
            }
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!(
                    "{} was not ready after 60 s: {}",
                    self.system.name(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit, then kills it.
    /// Returns whether it exited by itself.
    pub async fn stop(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        if self.child.try_wait()?.is_some() {
            return Ok(true);
        }
        // std has no way to send a signal without unsafe code; kill(1) does it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(false)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asks Prometheus to write a snapshot (`POST /api/v1/admin/tsdb/snapshot`): its blocks
/// hard-linked and the head written as one more block. Returns the snapshot directory.
pub async fn prometheus_snapshot(client: &reqwest::Client, p: &Running) -> anyhow::Result<PathBuf> {
    let url = format!("{}/api/v1/admin/tsdb/snapshot", p.base);
    let resp = client.post(&url).timeout(Duration::from_secs(600)).send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("snapshot answer is not JSON")?;
    let name = body.pointer("/data/name").and_then(|v| v.as_str());
    match (status.is_success(), name) {
        (true, Some(name)) => Ok(p.data_dir.join("snapshots").join(name)),
        _ => bail!("snapshot failed: HTTP {status}: {body}"),
    }
}
