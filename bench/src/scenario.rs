//! The default scenario: generate the data, run each system through its phases, collect the
//! figures into a [`Report`]. A failing phase becomes "n/a (error)" for its figures; the
//! run goes on.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::load::{self, Plan};
use crate::measure::{self, Latency, RangeQuery, RssSampler};
use crate::remote_write::Batching;
use crate::report::{Better, Figure, Machine, Report, Row};
use crate::targets::{self, Running};
use crate::{otlp, remote_write, Args, TargetArg};
use didban_demo::node::dataset::{Dataset, Shape};

/// Ingest figures of one system and protocol.
#[derive(Debug, Clone)]
struct Ingest {
    samples_per_s: Figure,
    cpu_per_m: Figure,
    peak_rss_mib: Figure,
}

impl Ingest {
    fn na(why: &str) -> Self {
        Ingest {
            samples_per_s: Figure::na(why),
            cpu_per_m: Figure::na(why),
            peak_rss_mib: Figure::na(why),
        }
    }
}

/// Everything measured on one system.
#[derive(Debug, Clone)]
struct Results {
    rw: Ingest,
    otlp: Ingest,
    bytes_blocks: Figure,
    bytes_all: Figure,
    queries: Vec<Result<Latency, String>>,
    /// How much of the data the measured blocks cover.
    block_note: Option<String>,
}

impl Results {
    fn na(why: &str, queries: usize) -> Self {
        Results {
            rw: Ingest::na(why),
            otlp: Ingest::na(why),
            bytes_blocks: Figure::na(why),
            bytes_all: Figure::na(why),
            queries: vec![Err(why.to_string()); queries],
            block_note: None,
        }
    }
}

/// The dashboard queries, sized by the data set.
fn queries() -> Vec<RangeQuery> {
    vec![
        RangeQuery {
            name: "Q1 sum(rate) 6h@15s".into(),
            expr: "sum by (mode) (rate(node_cpu_seconds_total[5m]))".into(),
            range_s: 6 * 3600,
            step_s: 15,
        },
        RangeQuery {
            name: "Q2 histogram_quantile 24h@60s".into(),
            expr: "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))"
                .into(),
            range_s: 24 * 3600,
            step_s: 60,
        },
    ]
}

/// The data set with its last sample at the current time (rounded down to the interval).
fn dataset_now(args: &Args) -> Dataset {
    let interval_ms = args.interval.as_millis().max(1) as i64;
    let steps = (args.span.as_millis() as i64 / interval_ms).max(1) as usize;
    let end_ms = didban_base::now_ms() / interval_ms * interval_ms;
    Dataset::new(Shape {
        hosts: args.hosts,
        cpus: args.cpus,
        interval_ms,
        start_ms: end_ms - (steps as i64 - 1) * interval_ms,
        steps,
    })
}

/// End of the data in seconds (the end of every query window).
fn end_s(d: &Dataset) -> i64 {
    d.shape.ts(d.shape.steps.saturating_sub(1)) / 1000
}

fn batching(args: &Args) -> Batching {
    Batching {
        hosts_per_request: args.batch_hosts,
        samples_per_series: args.batch_samples,
    }
}

/// Encodes `d` as remote_write requests (before the target starts, so it costs it nothing).
fn encode_rw(d: &Dataset, args: &Args) -> anyhow::Result<Arc<Plan>> {
    let t = Instant::now();
    let plan = Arc::new(remote_write::build_plan(d, batching(args))?);
    println!(
        "  remote_write requests: {} ({:.1} MiB snappy) encoded in {:.1} s",
        plan.len(),
        plan.bytes() as f64 / 1_048_576.0,
        t.elapsed().as_secs_f64()
    );
    Ok(plan)
}

/// Sends `plan` to `url` while measuring the target's CPU time and RSS.
async fn ingest(
    client: &reqwest::Client,
    r: &Running,
    url: String,
    headers: Vec<(&'static str, &'static str)>,
    plan: Arc<Plan>,
    args: &Args,
    tck: f64,
) -> Ingest {
    let sampler = RssSampler::start(r.pid);
    let cpu0 = measure::cpu_seconds(r.pid, tck);
    let target = load::Target { url, headers };
    let res = load::run(
        client,
        &target,
        plan.clone(),
        args.concurrency,
        args.sync,
        args.ingest_timeout,
    )
    .await;
    let cpu1 = measure::cpu_seconds(r.pid, tck);
    let peak = sampler
        .finish()
        .await
        .max(measure::vm_bytes(r.pid, "VmHWM").unwrap_or(0));
    println!(
        "  {}: {} requests ok, {} failed, {} retries, {} of {} samples in {:.1} s",
        r.system.name(),
        res.requests_ok,
        res.requests_failed,
        res.retries,
        res.samples_ok,
        plan.samples(),
        res.wall.as_secs_f64()
    );
    if res.requests_failed > 0 || res.samples_ok == 0 {
        let why = format!(
            "{} of {} requests failed: {}",
            res.requests_failed,
            plan.len(),
            res.first_error.unwrap_or_else(|| "no request succeeded".into())
        );
        println!("  {why}");
        return Ingest::na(&why);
    }
    let secs = res.wall.as_secs_f64();
    let cpu = match (cpu0, cpu1) {
        (Ok(a), Ok(b)) => Figure::ok((b - a) / (res.samples_ok as f64 / 1e6)),
        (Err(e), _) | (_, Err(e)) => Figure::na(format!("/proc: {e}")),
    };
    Ingest {
        samples_per_s: Figure::ok(res.samples_ok as f64 / secs),
        cpu_per_m: cpu,
        peak_rss_mib: Figure::ok(peak as f64 / 1_048_576.0),
    }
}

async fn run_queries(
    client: &reqwest::Client,
    r: &Running,
    args: &Args,
    end_s: i64,
) -> Vec<Result<Latency, String>> {
    let mut out = Vec::new();
    for q in queries() {
        if args.skip_queries {
            out.push(Err("skipped (--skip-queries)".into()));
            continue;
        }
        let res = measure::query_latency(
            client,
            &r.base,
            &q,
            end_s,
            args.query_warmup,
            args.query_runs,
            args.query_budget,
        )
        .await
        .map_err(|e| format!("{e:#}"));
        match &res {
            Ok(l) => println!(
                "  {} {}: p50 {:.1} ms, p99 {:.1} ms over {} runs ({} series, {} points)",
                r.system.name(),
                q.name,
                l.p50_ms,
                l.p99_ms,
                l.runs,
                l.result_series,
                l.result_points
            ),
            Err(e) => println!("  {} {}: {e}", r.system.name(), q.name),
        }
        out.push(res);
    }
    out
}

/// Bytes per sample of the blocks under `dir` (size ÷ the samples their meta.json states),
/// and a note saying how much of the data set they cover.
fn blocks_figure(system: &str, dir: &Path, total: u64) -> (Figure, String) {
    let u = measure::block_usage(dir);
    if u.samples == 0 {
        return (
            Figure::na(format!("no blocks in {}", dir.display())),
            format!("{system}: no blocks"),
        );
    }
    let note = format!(
        "{system}: {} blocks hold {} of {} samples ({:.0} %), {:.1} MiB",
        u.blocks,
        u.samples,
        total,
        u.samples as f64 * 100.0 / total as f64,
        u.bytes as f64 / 1_048_576.0
    );
    println!("  {note}");
    (Figure::ok(u.bytes as f64 / u.samples as f64), note)
}

fn per_sample(bytes: u64, samples: u64) -> Figure {
    if bytes == 0 {
        Figure::na("no such files")
    } else {
        Figure::ok(bytes as f64 / samples as f64)
    }
}

/// Prometheus: remote_write ingest, queries, snapshot (head written as a block), disk.
async fn run_prometheus(
    client: &reqwest::Client,
    args: &Args,
    dir: &Path,
    tck: f64,
) -> anyhow::Result<Results> {
    let d = dataset_now(args);
    let (samples, end_s) = (d.samples(), end_s(&d));
    let plan = encode_rw(&d, args)?;
    let mut p = targets::start_prometheus(
        client,
        &args.prometheus_bin,
        dir,
        args.prometheus_ooo_window.as_deref(),
        &args.prometheus_arg,
    )
    .await?;
    println!("Prometheus (pid {}) on {}", p.pid, p.base);
    let url = format!("{}/api/v1/write", p.base);
    let rw = ingest(client, &p, url, remote_write::headers(), plan, args, tck).await;
    let queries = run_queries(client, &p, args, end_s).await;
    let t = Instant::now();
    let mut block_note = None;
    let (bytes_blocks, bytes_all) = match targets::prometheus_snapshot(client, &p).await {
        Ok(snap) => {
            println!(
                "  snapshot in {:.1} s: {}",
                t.elapsed().as_secs_f64(),
                snap.display()
            );
            let (fig, note) = blocks_figure("Prometheus", &snap, samples);
            block_note = Some(note);
            (
                fig,
                per_sample(measure::dir_size(&p.data_dir, &["snapshots"]), samples),
            )
        }
        Err(e) => (Figure::na(format!("{e:#}")), Figure::na(format!("{e:#}"))),
    };
    p.stop(Duration::from_secs(60)).await?;
    Ok(Results {
        rw,
        otlp: Ingest::na("Prometheus 2.42 has no OTLP receiver"),
        bytes_blocks,
        bytes_all,
        queries,
        block_note,
    })
}

/// Didban: remote_write ingest, queries, graceful stop, disk; then OTLP ingest on a fresh
/// instance.
#[allow(clippy::too_many_arguments)]
async fn run_didban(client: &reqwest::Client, args: &Args, dir: &Path, tck: f64) -> anyhow::Result<Results> {
    let bin = args.didban_bin.clone().unwrap_or_default();
    let mut r = Results::na("not run", queries().len());
    if !bin.exists() {
        let why = format!(
            "Didban binary {} not found (cargo build --release -p didban-cli, or --didban-bin)",
            bin.display()
        );
        println!("  {why}");
        return Ok(Results::na(&why, queries().len()));
    }
    // Didban refuses samples older than storage.max_sample_age (6 h by default) behind the
    // newest sample it has seen; its own self-monitoring samples are "now", so the oldest
    // samples of a 6 h data set would be refused within seconds. The config raises the limit
    // to the span + 1 h. The query answers are compared point by point with Prometheus 2.42's,
    // so Didban answers with Prometheus 2.x semantics (closed windows); nothing else differs
    // from the defaults.
    let config = dir.join("didban.toml");
    std::fs::write(
        &config,
        format!(
            "# Written by didban-bench.\n[storage]\nmax_sample_age = \"{}s\"\n[query]\npromql_compat = \"v2\"\n",
            args.span.as_secs() + 3600
        ),
    )?;
    let mut extra = vec!["--config".to_string(), config.display().to_string()];
    extra.extend(args.didban_arg.iter().cloned());
    let rw_dir = dir.join("remote_write");
    std::fs::create_dir_all(&rw_dir)?;
    let d = dataset_now(args);
    let (samples, end_s) = (d.samples(), end_s(&d));
    let plan = encode_rw(&d, args)?;
    match targets::start_didban(client, &bin, &rw_dir, &extra).await {
        Ok(mut s) => {
            println!("Didban (pid {}) on {}", s.pid, s.base);
            let url = format!("{}/api/v1/write", s.base);
            r.rw = ingest(client, &s, url, remote_write::headers(), plan, args, tck).await;
            r.queries = run_queries(client, &s, args, end_s).await;
            // Like the Prometheus snapshot: the head written as a block before measuring disk.
            let flush = client
                .post(format!("{}/api/v1/admin/tsdb/flush", s.base))
                .send()
                .await;
            if let Err(e) = flush.and_then(|r| r.error_for_status()) {
                println!("  Didban head flush failed: {e}");
            }
            let clean = s.stop(Duration::from_secs(120)).await?;
            if !clean {
                println!("  Didban did not exit within 120 s of SIGTERM; killed");
            }
            let (fig, note) = blocks_figure("Didban", &s.data_dir.join("metrics").join("blocks"), samples);
            r.bytes_blocks = fig;
            r.block_note = Some(note);
            r.bytes_all = per_sample(measure::dir_size(&s.data_dir, &[]), samples);
        }
        Err(e) => {
            println!("  Didban did not start: {e:#}");
            r = Results::na(&format!("{e:#}"), queries().len());
        }
    }
    if args.skip_otlp {
        r.otlp = Ingest::na("skipped (--skip-otlp)");
        return Ok(r);
    }
    let t = Instant::now();
    let d = dataset_now(args);
    let oplan = Arc::new(otlp::build_plan(&d, batching(args))?);
    println!(
        "OTLP requests: {} ({:.1} MiB) encoded in {:.1} s",
        oplan.len(),
        oplan.bytes() as f64 / 1_048_576.0,
        t.elapsed().as_secs_f64()
    );
    let otlp_dir = dir.join("otlp");
    std::fs::create_dir_all(&otlp_dir)?;
    match targets::start_didban(client, &bin, &otlp_dir, &extra).await {
        Ok(mut s) => {
            println!("Didban for OTLP (pid {}) on {:?}", s.pid, s.otlp_base);
            let url = format!("{}/v1/metrics", s.otlp_base.clone().unwrap_or_default());
            r.otlp = ingest(client, &s, url, otlp::headers(), oplan, args, tck).await;
            s.stop(Duration::from_secs(120)).await?;
        }
        Err(e) => {
            println!("  Didban (OTLP) did not start: {e:#}");
            r.otlp = Ingest::na(&format!("{e:#}"));
        }
    }
    Ok(r)
}

/// Runs the whole benchmark and returns the report.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let machine = Machine::detect(&args.prometheus_bin);
    println!(
        "Machine: {} | {} cores | {} GiB RAM | rev {}",
        machine.cpu, machine.cores, machine.ram_gib, machine.git_revision
    );
    let d = dataset_now(args);
    let samples = d.samples();
    println!(
        "Data: {} hosts × {} series = {} series × {} samples ({} s interval) = {} samples per system, ending when each system's ingest starts",
        args.hosts,
        d.per_host,
        d.series(),
        d.shape.steps,
        d.shape.interval_ms / 1000,
        samples
    );
    let tmp = match &args.work_dir {
        Some(p) => {
            std::fs::create_dir_all(p)?;
            tempfile::Builder::new().prefix("didban-bench-").tempdir_in(p)?
        }
        None => tempfile::Builder::new().prefix("didban-bench-").tempdir()?,
    };
    println!("Work dir: {}", tmp.path().display());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1) * 2)
        .build()
        .context("building the HTTP client")?;
    let tck = measure::clk_tck();
    let nq = queries().len();
    let mut notes = Vec::new();
    let prom = if args.targets.contains(&TargetArg::Prometheus) {
        let dir = tmp.path().join("prometheus");
        std::fs::create_dir_all(&dir)?;
        match run_prometheus(&client, args, &dir, tck).await {
            Ok(r) => r,
            Err(e) => {
                notes.push(format!("Prometheus phase failed: {e:#}"));
                Results::na(&format!("{e:#}"), nq)
            }
        }
    } else {
        Results::na("not selected", nq)
    };
    let didban = if args.targets.contains(&TargetArg::Didban) {
        let dir = tmp.path().join("didban");
        std::fs::create_dir_all(&dir)?;
        match run_didban(&client, args, &dir, tck).await {
            Ok(r) => r,
            Err(e) => {
                notes.push(format!("Didban phase failed: {e:#}"));
                Results::na(&format!("{e:#}"), nq)
            }
        }
    } else {
        Results::na("not selected", nq)
    };
    let (h, l) = (Better::Higher, Better::Lower);
    let (db, p) = (&didban, &prom);
    let mut rows = vec![
        Row::new(
            "ingest remote_write",
            "samples/s",
            h,
            Some(2.0),
            &db.rw.samples_per_s,
            &p.rw.samples_per_s,
        ),
        Row::new(
            "  CPU per 1M samples",
            "CPU-s",
            l,
            Some(1.0),
            &db.rw.cpu_per_m,
            &p.rw.cpu_per_m,
        ),
        Row::new(
            "  peak RSS during ingest",
            "MiB",
            l,
            None,
            &db.rw.peak_rss_mib,
            &p.rw.peak_rss_mib,
        ),
        Row::new(
            "ingest OTLP (Prom: its RW)",
            "samples/s",
            h,
            Some(2.0),
            &db.otlp.samples_per_s,
            &p.rw.samples_per_s,
        ),
        Row::new(
            "  CPU per 1M samples",
            "CPU-s",
            l,
            Some(1.0),
            &db.otlp.cpu_per_m,
            &p.rw.cpu_per_m,
        ),
        Row::new(
            "  peak RSS during ingest",
            "MiB",
            l,
            None,
            &db.otlp.peak_rss_mib,
            &p.rw.peak_rss_mib,
        ),
        Row::new(
            "disk, blocks only",
            "bytes/sample",
            l,
            Some(1.0),
            &db.bytes_blocks,
            &p.bytes_blocks,
        ),
        Row::new(
            "disk, whole data dir",
            "bytes/sample",
            l,
            None,
            &db.bytes_all,
            &p.bytes_all,
        ),
    ];
    for (i, q) in queries().iter().enumerate() {
        let fig = |r: &Results, p99: bool| match &r.queries[i] {
            Ok(l) => Figure::ok(if p99 { l.p99_ms } else { l.p50_ms }),
            Err(e) => Figure::na(e.clone()),
        };
        let name = |s: &str| format!("{} {s}", q.name);
        rows.push(Row::new(
            &name("p50"),
            "ms",
            l,
            Some(1.0),
            &fig(db, false),
            &fig(p, false),
        ));
        rows.push(Row::new(
            &name("p99"),
            "ms",
            l,
            Some(1.0),
            &fig(db, true),
            &fig(p, true),
        ));
        if let (Ok(a), Ok(b)) = (&didban.queries[i], &prom.queries[i]) {
            notes.push(format!("{}: {}", q.name, measure::compare(&a.answer, &b.answer)));
        }
    }
    notes.extend(prom.block_note.iter().chain(didban.block_note.iter()).cloned());
    for q in queries() {
        notes.push(format!(
            "{}: {} over {} h at {} s step",
            q.name,
            q.expr,
            q.range_s / 3600,
            q.step_s
        ));
    }
    notes.push("OTLP rows compare Didban's OTLP ingest with Prometheus' remote_write ingest: Prometheus 2.42 has no OTLP receiver.".into());
    notes.push("Disk: 'blocks only' = size of the blocks ÷ the samples their meta.json states (Prometheus: its snapshot, i.e. blocks + head written as a block; Didban: metrics/blocks after POST /api/v1/admin/tsdb/flush wrote the head as a block); 'whole data dir' = every file incl. WAL ÷ all samples.".into());
    let scenario = vec![
        ("hosts".into(), args.hosts.to_string()),
        ("series".into(), d.series().to_string()),
        ("span".into(), format!("{}s", args.span.as_secs())),
        ("interval".into(), format!("{}s", args.interval.as_secs())),
        ("samples".into(), samples.to_string()),
        (
            "batch".into(),
            format!(
                "{} hosts × {} samples/series",
                args.batch_hosts, args.batch_samples
            ),
        ),
        ("concurrency".into(), args.concurrency.to_string()),
        ("query_runs".into(), args.query_runs.to_string()),
    ];
    if args.keep {
        let kept = tmp.keep();
        notes.push(format!("data dirs and logs kept in {}", kept.display()));
    }
    Ok(Report {
        machine,
        scenario,
        rows,
        notes,
    })
}
