//! `--mode ingest-log`: what the NATS JetStream ingest log (`[ingest_log]`) costs, and what
//! several ingesters behind it do, on the bench's remote_write data.
//!
//! Three runs on fresh data directories, each fed the same pre-encoded requests:
//!
//! 1. `direct`: one `didban serve`, no ingest log (today's path);
//! 2. `jetstream ×1`: one process that publishes every batch to a private nats-server and
//!    consumes the single partition;
//! 3. `jetstream ×N` (`--ingesters`, default 3): N processes, N partitions; the senders are
//!    spread over the N processes (each receives, publishes, and stores its partition).
//!
//! For each: the throughput the clients saw (samples acknowledged ÷ time to the last
//! answer), the end-to-end throughput (until every acknowledged sample is stored, read from
//! `didban_ingest_log_consumed_total{kind="metrics"}`), and CPU seconds per million samples
//! of the Didban processes and of nats-server. The hop's cost is run 2 minus run 1. On one
//! machine every process shares the same cores: this measures overhead, not scale.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::load::{self, Plan};
use crate::measure;
use crate::remote_write;
use crate::scenario;
use crate::targets::{self, Running, System};
use crate::Args;

/// One run's figures.
struct Run {
    label: String,
    acked_per_s: f64,
    stored_per_s: f64,
    didban_cpu_per_m: f64,
    nats_cpu_per_m: f64,
    failed: u64,
}

/// Runs the three configurations and prints their table.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &Args) -> anyhow::Result<()> {
    let machine = crate::report::Machine::detect(&args.prometheus_bin, &args.victoriametrics_bin);
    println!(
        "Machine: {} | {} cores | {} GiB RAM | rev {}",
        machine.cpu, machine.cores, machine.ram_gib, machine.git_revision
    );
    let tmp = scenario::work_dir(args)?;
    let client = scenario::http_client(args)?;
    let tck = measure::clk_tck();
    let mut nats = Nats::start(&args.nats_bin, &tmp.path().join("nats"))?;
    println!("nats-server (pid {}) on {}", nats.child.id(), nats.url);
    let mut runs = Vec::new();
    let configs = [
        ("direct".to_string(), 0usize),
        ("jetstream ×1".to_string(), 1),
        (format!("jetstream ×{}", args.ingesters), args.ingesters.max(1)),
    ];
    for (i, (label, ingesters)) in configs.into_iter().enumerate() {
        println!("{label}: load average before: {}", scenario::load_average());
        let dir = tmp.path().join(format!("run{i}"));
        // Encoded afresh for each run, so each run's data ends "now" like the others'.
        let d = scenario::dataset_now(args);
        let plan = scenario::encode_rw(&d, args)?;
        let run = one_run(&client, args, &nats, &dir, &label, i, ingesters, plan, tck).await?;
        println!(
            "  {label}: {:.2} M samples/s acknowledged, {:.2} M/s stored, {:.3} CPU-s/1M (didban) + {:.3} (nats)",
            run.acked_per_s / 1e6,
            run.stored_per_s / 1e6,
            run.didban_cpu_per_m,
            run.nats_cpu_per_m
        );
        runs.push(run);
    }
    nats.stop();
    println!("\n| run | acknowledged, M samples/s | stored, M samples/s | CPU-s per 1M samples: didban | nats-server | failed requests |");
    println!("|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {:.2} | {:.2} | {:.3} | {:.3} | {} |",
            r.label,
            r.acked_per_s / 1e6,
            r.stored_per_s / 1e6,
            r.didban_cpu_per_m,
            r.nats_cpu_per_m,
            r.failed
        );
    }
    if let [direct, one, ..] = runs.as_slice() {
        let hop = one.didban_cpu_per_m + one.nats_cpu_per_m - direct.didban_cpu_per_m;
        println!(
            "\nJetStream hop: {:.3} CPU-s per 1M samples more ({:.0} ns of CPU per sample), end-to-end throughput ×{:.2}",
            hop,
            hop * 1000.0,
            one.stored_per_s / direct.stored_per_s.max(1.0)
        );
    }
    Ok(())
}

/// One configuration: `ingesters` processes (0 = one without the ingest log).
#[allow(clippy::too_many_arguments)]
async fn one_run(
    client: &reqwest::Client,
    args: &Args,
    nats: &Nats,
    dir: &Path,
    label: &str,
    index: usize,
    ingesters: usize,
    plan: std::sync::Arc<Plan>,
    tck: f64,
) -> anyhow::Result<Run> {
    let mut servers: Vec<Running> = Vec::new();
    let processes = ingesters.max(1);
    for p in 0..processes {
        let mut launch = scenario::launch(args, System::Didban);
        if ingesters > 0 {
            // A stream of its own per run, so no run reads another's messages.
            launch.config_extra = format!(
                "[ingest_log]\nurl = \"{}\"\nstream = \"BENCH{index}\"\nsubject_prefix = \"bench{index}\"\npartitions = {ingesters}\npartition = {p}\n",
                nats.url
            );
        }
        let pdir = dir.join(format!("p{p}"));
        std::fs::create_dir_all(&pdir)?;
        servers.push(targets::start(client, &launch, &pdir).await?);
    }
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("{}/api/v1/write", s.base))
        .collect();
    let target = load::Target {
        urls,
        headers: remote_write::headers(),
    };
    let cpu0 = cpu_of(&servers, tck);
    let nats0 = measure::cpu_seconds(nats.child.id(), tck).unwrap_or(0.0);
    let started = Instant::now();
    let res = load::run(
        client,
        &target,
        plan,
        args.concurrency,
        args.sync,
        args.ingest_timeout,
    )
    .await;
    let acked_wall = res.wall.as_secs_f64();
    // Every acknowledged sample stored (at once without the log).
    let deadline = Instant::now() + args.ingest_timeout;
    if ingesters > 0 {
        loop {
            let mut stored = 0.0;
            for s in &servers {
                stored += consumed_samples(client, s).await;
            }
            if stored >= res.samples_ok as f64 {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{label}: {stored} of {} acknowledged samples stored in time",
                    res.samples_ok
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let stored_wall = started.elapsed().as_secs_f64();
    let cpu1 = cpu_of(&servers, tck);
    let nats1 = measure::cpu_seconds(nats.child.id(), tck).unwrap_or(0.0);
    for s in &mut servers {
        s.stop(Duration::from_secs(120)).await?;
    }
    let millions = res.samples_ok as f64 / 1e6;
    Ok(Run {
        label: label.to_string(),
        acked_per_s: res.samples_ok as f64 / acked_wall.max(1e-9),
        stored_per_s: res.samples_ok as f64 / stored_wall.max(1e-9),
        didban_cpu_per_m: (cpu1 - cpu0) / millions.max(1e-9),
        nats_cpu_per_m: if ingesters > 0 {
            (nats1 - nats0) / millions.max(1e-9)
        } else {
            0.0
        },
        failed: res.requests_failed,
    })
}

/// CPU seconds used so far by all `servers`.
fn cpu_of(servers: &[Running], tck: f64) -> f64 {
    let mut total = 0.0;
    for s in servers {
        total += measure::cpu_seconds(s.pid, tck).unwrap_or(0.0);
    }
    total
}

/// `didban_ingest_log_consumed_total{kind="metrics"}` of one server (0 before its first).
async fn consumed_samples(client: &reqwest::Client, s: &Running) -> f64 {
    let Ok(resp) = client.get(format!("{}/metrics", s.base)).send().await else {
        return 0.0;
    };
    let text = resp.text().await.unwrap_or_default();
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with("didban_ingest_log_consumed_total{") && line.contains("kind=\"metrics\"") {
            if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                total += v;
            }
        }
    }
    total
}

/// A private nats-server with JetStream in `dir`.
struct Nats {
    child: Child,
    url: String,
}

impl Nats {
    fn start(bin: &Path, dir: &Path) -> anyhow::Result<Nats> {
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.join("nats.log"))?;
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .arg("-sd")
            .arg(dir)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {} (apt-get install nats-server)", bin.display()))?;
        let url = format!("nats://127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("nats-server did not listen on {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Nats { child, url })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
