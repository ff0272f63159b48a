//! The default scenario: generate the data, run each system through the same phases, collect
//! the figures into a [`Report`]. A failing phase becomes "n/a (error)" for its figures; the
//! run goes on.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::disk::{self, Disk};
use crate::load::{self, Plan};
use crate::measure::{self, Latency, RangeQuery, RssSampler};
use crate::remote_write::Batching;
use crate::report::{Better, Figure, Goals, Machine, Report, Row, Values};
use crate::targets::{self, Launch, Running, System};
use crate::{otlp, remote_write, Args};
use didban_demo::node::dataset::{Dataset, Shape};

/// Ingest figures of one system and protocol.
#[derive(Debug, Clone)]
pub(crate) struct Ingest {
    /// Samples acknowledged per second of wall time.
    pub samples_per_s: Figure,
    /// CPU seconds of the target per million samples.
    pub cpu_per_m: Figure,
    /// Largest RSS during ingest, MiB.
    pub peak_rss_mib: Figure,
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
    disk: Disk,
    queries: Vec<Result<Latency, String>>,
}

impl Results {
    fn na(why: &str, queries: usize) -> Self {
        Results {
            rw: Ingest::na(why),
            otlp: Ingest::na(why),
            disk: Disk::na(why),
            queries: vec![Err(why.to_string()); queries],
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
        // The two queries issue 15 found slower than VictoriaMetrics: an aggregation of a
        // rate over a regex of 10 metric names (38 series per host), and a topk of a range
        // function over a gauge.
        RangeQuery {
            name: "Q3 sum of 10 rates by instance 6h@60s".into(),
            expr: q3_expr(),
            range_s: 6 * 3600,
            step_s: 60,
        },
        RangeQuery {
            name: "Q4 topk(avg_over_time) 6h@60s".into(),
            expr: "topk(5, avg_over_time(node_load1[10m]))".into(),
            range_s: 6 * 3600,
            step_s: 60,
        },
    ]
}

/// The ten counters Q3 adds up per instance (38 series per host).
const Q3_METRICS: [&str; 10] = [
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_packets_total",
    "node_network_transmit_packets_total",
    "node_network_receive_errs_total",
    "node_network_transmit_errs_total",
    "node_network_receive_drop_total",
    "node_network_transmit_drop_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
];

/// Q3: the per-instance sum of the rates of ten counters, one term per metric. The form
/// with one regex selector, `sum by (instance) (rate({__name__=~"…"}[5m]))`, is not valid
/// PromQL on this data: `rate` drops `__name__`, and the receive and transmit series of a
/// device then have the same labels, which Prometheus (2 and 3 without the experimental
/// delayed name removal) and Didban refuse.
fn q3_expr() -> String {
    let mut terms = Vec::with_capacity(Q3_METRICS.len());
    for m in Q3_METRICS {
        terms.push(format!("sum by (instance) (rate({m}[5m]))"));
    }
    terms.join(" + ")
}

/// The data set with its last sample at the current time (rounded down to the interval).
pub(crate) fn dataset_now(args: &Args) -> Dataset {
    let interval_ms = args.interval.as_millis().max(1) as i64;
    let steps = (args.span.as_millis() as i64 / interval_ms).max(1) as usize;
    dataset_ending_now(args, steps)
}

/// `--hosts` hosts with `steps` samples per series, the last one at the current time.
pub(crate) fn dataset_ending_now(args: &Args, steps: usize) -> Dataset {
    let interval_ms = args.interval.as_millis().max(1) as i64;
    let steps = steps.max(1);
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
pub(crate) fn encode_rw(d: &Dataset, args: &Args) -> anyhow::Result<Arc<Plan>> {
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
pub(crate) async fn ingest(
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
    let target = load::Target {
        urls: vec![url],
        headers,
    };
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

/// How the bench starts `system`: the user's binary and flags for it.
pub(crate) fn launch(args: &Args, system: System) -> Launch {
    let (bin, extra) = match system {
        System::Didban => (args.didban_bin.clone().unwrap_or_default(), &args.didban_arg),
        System::Prometheus => (args.prometheus_bin.clone(), &args.prometheus_arg),
        System::VictoriaMetrics => (args.victoriametrics_bin.clone(), &args.victoriametrics_arg),
    };
    Launch {
        system,
        bin,
        extra: extra.clone(),
        // Didban refuses samples older than storage.max_sample_age (6 h by default) behind the
        // newest sample it has seen; its own self-monitoring samples are "now", so the oldest
        // samples of a 6 h data set would be refused within seconds: span + 1 h.
        max_sample_age_s: args.span.as_secs() + 3600,
        ooo_window: args.prometheus_ooo_window.clone(),
        config_extra: String::new(),
    }
}

/// One system: remote_write ingest, queries, disk (see [`disk`]), stop; for Didban then OTLP
/// ingest of the same data on a fresh instance (Prometheus 2.42 and VictoriaMetrics 1.79
/// have no OTLP receiver).
async fn run_system(
    client: &reqwest::Client,
    args: &Args,
    system: System,
    dir: &Path,
    tck: f64,
) -> anyhow::Result<Results> {
    let nq = queries().len();
    let launch = launch(args, system);
    let mut r = Results::na("not run", nq);
    let d = dataset_now(args);
    let (samples, end_s) = (d.samples(), end_s(&d));
    let plan = encode_rw(&d, args)?;
    let rw_dir = dir.join("remote_write");
    std::fs::create_dir_all(&rw_dir)?;
    match targets::start(client, &launch, &rw_dir).await {
        Ok(mut s) => {
            println!("{} (pid {}) on {}", system.name(), s.pid, s.base);
            let url = format!("{}/api/v1/write", s.base);
            r.rw = ingest(client, &s, url, remote_write::headers(), plan, args, tck).await;
            if args.queries_on_blocks && !args.skip_queries {
                if let Err(e) = disk::settle_for_queries(client, &s).await {
                    println!("  {}: could not settle before the queries: {e:#}", system.name());
                }
            }
            r.queries = run_queries(client, &s, args, end_s).await;
            r.disk = disk::compact_and_measure(client, &mut s, samples).await;
            s.stop(Duration::from_secs(120)).await?;
        }
        Err(e) => {
            println!("  {} did not start: {e:#}", system.name());
            r = Results::na(&format!("{e:#}"), nq);
        }
    }
    if system != System::Didban {
        r.otlp = Ingest::na(&format!("{} has no OTLP receiver in this version", system.name()));
        return Ok(r);
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
    match targets::start(client, &launch, &otlp_dir).await {
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
    let machine = Machine::detect(&args.prometheus_bin, &args.victoriametrics_bin);
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
    let tmp = work_dir(args)?;
    println!("Work dir: {}", tmp.path().display());
    let client = http_client(args)?;
    let tck = measure::clk_tck();
    let nq = queries().len();
    let mut notes = Vec::new();
    // Always in this order, whatever the order of --targets: Prometheus first as before.
    let mut results = Vec::new();
    for system in [System::Prometheus, System::VictoriaMetrics, System::Didban] {
        let r = if args.targets.contains(&system) {
            let load = load_average();
            println!("{}: load average before the phase: {load}", system.name());
            notes.push(format!(
                "load average (1, 5, 15 min) before the {} phase: {load}",
                system.name()
            ));
            let dir = tmp.path().join(system.name().to_lowercase());
            std::fs::create_dir_all(&dir)?;
            match run_system(&client, args, system, &dir, tck).await {
                Ok(r) => r,
                Err(e) => {
                    notes.push(format!("{} phase failed: {e:#}", system.name()));
                    Results::na(&format!("{e:#}"), nq)
                }
            }
        } else {
            Results::na("not selected", nq)
        };
        results.push(r);
    }
    let didban = results.pop().unwrap_or_else(|| Results::na("not run", nq));
    let vm = results.pop().unwrap_or_else(|| Results::na("not run", nq));
    let prom = results.pop().unwrap_or_else(|| Results::na("not run", nq));
    let rows = rows(&didban, &prom, &vm);
    for (i, q) in queries().iter().enumerate() {
        for (other, r) in [("Prometheus", &prom), ("VictoriaMetrics", &vm)] {
            if let (Ok(a), Ok(b)) = (&didban.queries[i], &r.queries[i]) {
                let verdict = measure::compare(&a.answer, &b.answer);
                notes.push(format!("{} Didban vs {other}: {verdict}", q.name));
            }
        }
    }
    for r in [&prom, &vm, &didban] {
        notes.extend(r.disk.note.iter().cloned());
    }
    for q in queries() {
        notes.push(format!(
            "{}: {} over {} h at {} s step",
            q.name,
            q.expr,
            q.range_s / 3600,
            q.step_s
        ));
    }
    notes.push("OTLP rows compare Didban's OTLP ingest with the others' remote_write ingest: Prometheus 2.42 and VictoriaMetrics 1.79 have no OTLP receiver.".into());
    notes.push("Disk: 'blocks only' = Prometheus: its snapshot (blocks + head written as a block) ÷ the samples their meta.json state; Didban: metrics/blocks after POST /api/v1/admin/tsdb/flush wrote the head as a block, ditto; VictoriaMetrics: its data dir (data + indexdb) after /internal/force_flush and /internal/force_merge ÷ samples sent. 'Whole data dir' = every file incl. WAL ÷ all samples.".into());
    notes.push("Answers of VictoriaMetrics differ from Prometheus' by design where its MetricsQL does (rate() without extrapolation, using the sample before the window).".into());
    let mut scenario = scenario_facts(args, &d);
    scenario.push(("query_runs".into(), args.query_runs.to_string()));
    scenario.push(("load_average_at_end".into(), load_average()));
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

/// The temp dir holding every system's data dir and log.
pub(crate) fn work_dir(args: &Args) -> anyhow::Result<tempfile::TempDir> {
    Ok(match &args.work_dir {
        Some(p) => {
            std::fs::create_dir_all(p)?;
            tempfile::Builder::new().prefix("didban-bench-").tempdir_in(p)?
        }
        None => tempfile::Builder::new().prefix("didban-bench-").tempdir()?,
    })
}

/// The HTTP client of the load generator and the queries.
pub(crate) fn http_client(args: &Args) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1) * 2)
        .build()
        .context("building the HTTP client")
}

/// The data set and the load settings, as key/values for the report.
pub(crate) fn scenario_facts(args: &Args, d: &Dataset) -> Vec<(String, String)> {
    vec![
        ("hosts".into(), args.hosts.to_string()),
        ("series".into(), d.series().to_string()),
        ("span".into(), format!("{}s", args.span.as_secs())),
        ("samples_per_series".into(), d.shape.steps.to_string()),
        ("interval".into(), format!("{}s", args.interval.as_secs())),
        ("samples".into(), d.samples().to_string()),
        (
            "batch".into(),
            format!(
                "{} hosts × {} samples/series",
                args.batch_hosts, args.batch_samples
            ),
        ),
        ("concurrency".into(), args.concurrency.to_string()),
    ]
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg: how busy the machine was (the
/// figures depend on how much of the cores the systems got).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The three values of one row, in the order of the table's columns.
fn vals<'a>(didban: &'a Figure, prometheus: &'a Figure, victoriametrics: &'a Figure) -> Values<'a> {
    Values {
        didban,
        prometheus,
        victoriametrics,
    }
}

/// The table: every figure for the three systems with the issues' goals.
fn rows(db: &Results, p: &Results, v: &Results) -> Vec<Row> {
    let (h, l) = (Better::Higher, Better::Lower);
    let goals = |prometheus, victoriametrics| Goals {
        prometheus,
        victoriametrics,
    };
    let mut rows = vec![
        Row::new(
            "ingest remote_write",
            "samples/s",
            h,
            goals(Some(2.0), Some(1.5)),
            vals(&db.rw.samples_per_s, &p.rw.samples_per_s, &v.rw.samples_per_s),
        ),
        Row::new(
            "  CPU per 1M samples",
            "CPU-s",
            l,
            goals(Some(1.0), None),
            vals(&db.rw.cpu_per_m, &p.rw.cpu_per_m, &v.rw.cpu_per_m),
        ),
        Row::new(
            "  peak RSS during ingest",
            "MiB",
            l,
            goals(None, Some(1.0)),
            vals(&db.rw.peak_rss_mib, &p.rw.peak_rss_mib, &v.rw.peak_rss_mib),
        ),
        Row::new(
            "ingest OTLP (others: RW)",
            "samples/s",
            h,
            goals(Some(2.0), None),
            vals(&db.otlp.samples_per_s, &p.rw.samples_per_s, &v.rw.samples_per_s),
        ),
        Row::new(
            "  CPU per 1M samples",
            "CPU-s",
            l,
            goals(Some(1.0), None),
            vals(&db.otlp.cpu_per_m, &p.rw.cpu_per_m, &v.rw.cpu_per_m),
        ),
        Row::new(
            "  peak RSS during ingest",
            "MiB",
            l,
            goals(None, None),
            vals(&db.otlp.peak_rss_mib, &p.rw.peak_rss_mib, &v.rw.peak_rss_mib),
        ),
        Row::new(
            "disk, blocks only",
            "bytes/sample",
            l,
            goals(Some(1.0), Some(1.0)),
            vals(&db.disk.blocks, &p.disk.blocks, &v.disk.blocks),
        ),
        Row::new(
            "disk, whole data dir",
            "bytes/sample",
            l,
            goals(None, None),
            vals(&db.disk.all, &p.disk.all, &v.disk.all),
        ),
    ];
    for (i, q) in queries().iter().enumerate() {
        let fig = |r: &Results, p99: bool| match &r.queries[i] {
            Ok(l) => Figure::ok(if p99 { l.p99_ms } else { l.p50_ms }),
            Err(e) => Figure::na(e.clone()),
        };
        for (label, p99) in [("p50", false), ("p99", true)] {
            let (a, b, c) = (fig(db, p99), fig(p, p99), fig(v, p99));
            rows.push(Row::new(
                &format!("{} {label}", q.name),
                "ms",
                l,
                goals(Some(1.0), Some(1.0)),
                vals(&a, &b, &c),
            ));
        }
    }
    rows
}
