//! Process control: start Didban, Prometheus or VictoriaMetrics as a child on free ports in a
//! temp dir, wait until it is ready, stop it gracefully. What differs between the systems (the
//! command line, a config file, the readiness URL) is one `match` in [`start`]; everything
//! else (ports, log file, readiness loop, SIGTERM) is shared.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Which system a child process is (and a value of `--targets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// `didban serve`.
    Didban,
    /// Debian's `prometheus` with the remote-write receiver enabled.
    Prometheus,
    /// Debian's `victoria-metrics` (single-node), which takes remote_write on `/api/v1/write`.
    #[value(name = "victoriametrics")]
    VictoriaMetrics,
}

impl System {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            System::Didban => "Didban",
            System::Prometheus => "Prometheus",
            System::VictoriaMetrics => "VictoriaMetrics",
        }
    }

    /// Path that answers 200 once the system accepts writes and queries.
    fn ready_path(self) -> &'static str {
        match self {
            System::Didban | System::Prometheus => "/-/ready",
            System::VictoriaMetrics => "/health",
        }
    }

    /// What to tell the user when the binary is missing.
    fn install_hint(self) -> &'static str {
        match self {
            System::Didban => "cargo build --release -p didban-cli, or pass --didban-bin",
            System::Prometheus => "apt-get install prometheus, or pass --prometheus-bin",
            System::VictoriaMetrics => "apt-get install victoria-metrics, or pass --victoriametrics-bin",
        }
    }
}

/// How to start one system: everything the bench chooses for it besides ports and paths.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Which system.
    pub system: System,
    /// Its binary.
    pub bin: PathBuf,
    /// Extra command-line arguments from the user (`--didban-arg` and the like), appended last
    /// so they override the bench's own flags.
    pub extra: Vec<String>,
    /// Didban: `storage.max_sample_age` in seconds (it refuses older samples behind the newest
    /// it has seen, and the data set starts `span` in the past).
    pub max_sample_age_s: u64,
    /// Prometheus: `storage.tsdb.out_of_order_time_window`, if any.
    pub ooo_window: Option<String>,
    /// Didban: TOML appended to the bench's `didban.toml` (sections of its own, e.g.
    /// `[ingest_log]` in `--mode ingest-log`).
    pub config_extra: String,
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
fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?)
}

fn log_files(dir: &Path) -> anyhow::Result<(PathBuf, Stdio, Stdio)> {
    let path = dir.join("output.log");
    let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let g = f.try_clone()?;
    Ok((path, Stdio::from(f), Stdio::from(g)))
}

/// Starts `launch.system` with its data in `dir/data` and its output in `dir/output.log`, on
/// free ports, and waits until it is ready.
///
/// - Didban: `didban serve` with a `didban.toml` that sets `storage.max_sample_age`, the
///   series limits (`limits.max_series`, `max_series_per_metric`: 5 million) and
///   `query.promql_compat = "v2"` (the answers are compared with Prometheus 2.42's).
/// - Prometheus: a config file without scrape targets, the remote-write receiver and the admin
///   API on, 30 days of retention.
/// - VictoriaMetrics: 100 years of retention (nothing of the data set is ever outside it),
///   `-search.disableCache`, so repeated dashboard queries are computed every time like on the
///   other two systems instead of being served from its rollup result cache, and
///   `-search.latencyOffset=0s` so the last 30 s of the data are not hidden from queries.
pub async fn start(client: &reqwest::Client, launch: &Launch, dir: &Path) -> anyhow::Result<Running> {
    let system = launch.system;
    let bin = &launch.bin;
    if !bin.exists() {
        bail!(
            "{} binary {} not found ({})",
            system.name(),
            bin.display(),
            system.install_hint()
        );
    }
    let data_dir = dir.join("data");
    let http = free_addr()?;
    let mut cmd = Command::new(bin);
    let mut otlp_base = None;
    match system {
        System::Didban => {
            let config = dir.join("didban.toml");
            let toml = format!(
                // The cardinality limits are lifted to what the largest scenario needs (1M
                // series, 400k in one histogram): Prometheus and VictoriaMetrics have none by
                // default, and the benchmark measures storage, not the limits.
                "# Written by didban-bench.\n[storage]\nmax_sample_age = \"{}s\"\n[limits]\nmax_series = 5000000\nmax_series_per_metric = 5000000\n[query]\npromql_compat = \"v2\"\n",
                launch.max_sample_age_s
            ) + &launch.config_extra;
            std::fs::write(&config, toml).with_context(|| format!("writing {}", config.display()))?;
            let (grpc, otlp) = (free_addr()?, free_addr()?);
            cmd.arg("serve")
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--http-addr", &http.to_string()])
                .args(["--otlp-grpc-addr", &grpc.to_string()])
                .args(["--otlp-http-addr", &otlp.to_string()])
                .env("DIDBAN_LOG", "warn");
            otlp_base = Some(format!("http://{otlp}"));
        }
        System::Prometheus => {
            let config = dir.join("prometheus.yml");
            let mut yaml = String::from("# Written by didban-bench: no scrape targets, data arrives by remote_write.\nglobal:\n  scrape_interval: 15s\n");
            if let Some(w) = &launch.ooo_window {
                yaml.push_str(&format!("storage:\n  tsdb:\n    out_of_order_time_window: {w}\n"));
            }
            std::fs::write(&config, yaml).with_context(|| format!("writing {}", config.display()))?;
            cmd.arg("--web.enable-remote-write-receiver")
                .arg("--web.enable-admin-api")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data_dir.display()))
                .arg(format!("--web.listen-address={http}"))
                .arg("--storage.tsdb.retention.time=30d")
                .arg("--log.level=warn");
        }
        System::VictoriaMetrics => {
            cmd.arg(format!("-storageDataPath={}", data_dir.display()))
                .arg(format!("-httpListenAddr={http}"))
                .arg("-retentionPeriod=100y")
                .arg("-search.disableCache")
                // The data is complete when the queries run; by default VictoriaMetrics hides
                // the last 30 s before "now" (meant for samples still arriving from scrapers),
                // and the data set ends "now" at the start of ingest.
                .arg("-search.latencyOffset=0s")
                .arg("-loggerLevel=WARN");
        }
    }
    let (log, out, err) = log_files(dir)?;
    let child = cmd
        .args(&launch.extra)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut r = Running {
        system,
        pid: child.id(),
        child,
        data_dir,
        base: format!("http://{http}"),
        otlp_base,
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

    /// Polls the system's readiness URL until it answers 200, for at most 60 s.
    async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let url = format!("{}{}", self.base, self.system.ready_path());
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
