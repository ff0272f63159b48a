//! `--mode series-memory`: what one active series costs in memory.
//!
//! Each system is started fresh, its idle RSS read once it is ready, then it ingests
//! `--hosts` hosts' series (~484 each) with `--series-samples` samples per series through
//! remote_write (the same requests for every system). Memory per active series is the growth
//! of RSS over the idle process divided by the number of series: right after the last write
//! is acknowledged, and at the peak during ingest. With a few samples per series the samples
//! themselves are a small share, so the figure is mostly the index, the per-series head state
//! and what the allocator or garbage collector keeps around it.

use std::time::Duration;

use crate::measure;
use crate::remote_write;
use crate::report::{Better, Figure, Goals, Machine, Report, Row, Values};
use crate::scenario::{self, Ingest};
use crate::targets::{self, System};
use crate::Args;

/// The memory figures of one system.
#[derive(Debug, Clone)]
struct Memory {
    idle_mib: Figure,
    after_kib: Figure,
    peak_kib: Figure,
}

impl Memory {
    fn na(why: &str) -> Self {
        Memory {
            idle_mib: Figure::na(why),
            after_kib: Figure::na(why),
            peak_kib: Figure::na(why),
        }
    }
}

/// Runs the series-memory mode for every selected system and returns the report.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let machine = Machine::detect(&args.prometheus_bin, &args.victoriametrics_bin);
    let d = scenario::dataset_ending_now(args, args.series_samples);
    println!(
        "Series memory: {} hosts × {} series = {} series × {} samples",
        args.hosts,
        d.per_host,
        d.series(),
        d.shape.steps
    );
    let tmp = scenario::work_dir(args)?;
    let client = scenario::http_client(args)?;
    let tck = measure::clk_tck();
    let mut notes = Vec::new();
    let mut results = Vec::new();
    for system in [System::Prometheus, System::VictoriaMetrics, System::Didban] {
        if !args.targets.contains(&system) {
            results.push(Memory::na("not selected"));
            continue;
        }
        let dir = tmp.path().join(system.name().to_lowercase());
        std::fs::create_dir_all(&dir)?;
        let load = scenario::load_average();
        notes.push(format!(
            "load average (1, 5, 15 min) before {}: {load}",
            system.name()
        ));
        let m = match measure_one(&client, args, system, &dir, tck).await {
            Ok(m) => m,
            Err(e) => {
                notes.push(format!("{} failed: {e:#}", system.name()));
                Memory::na(&format!("{e:#}"))
            }
        };
        results.push(m);
    }
    let (p, v, db) = match results.as_slice() {
        [p, v, db] => (p, v, db),
        _ => anyhow::bail!("expected three systems' results"),
    };
    let row = |name: &str, unit: &str, f: fn(&Memory) -> &Figure| {
        let values = Values {
            didban: f(db),
            prometheus: f(p),
            victoriametrics: f(v),
        };
        Row::new(name, unit, Better::Lower, Goals::default(), values)
    };
    let rows = vec![
        row("RSS idle after start", "MiB", |m| &m.idle_mib),
        row("per active series, after ingest", "KiB", |m| &m.after_kib),
        row("per active series, peak", "KiB", |m| &m.peak_kib),
    ];
    notes.push("Per active series = (RSS − idle RSS) ÷ series; 'after ingest' reads VmRSS right after the last write was acknowledged, 'peak' the largest RSS during ingest (sampled every 100 ms and VmHWM).".into());
    let mut scenario_facts = scenario::scenario_facts(args, &d);
    scenario_facts.insert(0, ("mode".into(), "series-memory".into()));
    if args.keep {
        let kept = tmp.keep();
        notes.push(format!("data dirs and logs kept in {}", kept.display()));
    }
    Ok(Report {
        machine,
        scenario: scenario_facts,
        rows,
        notes,
    })
}

async fn measure_one(
    client: &reqwest::Client,
    args: &Args,
    system: System,
    dir: &std::path::Path,
    tck: f64,
) -> anyhow::Result<Memory> {
    let d = scenario::dataset_ending_now(args, args.series_samples);
    let series = d.series() as f64;
    let plan = scenario::encode_rw(&d, args)?;
    let mut s = targets::start(client, &scenario::launch(args, system), dir).await?;
    println!("{} (pid {}) on {}", system.name(), s.pid, s.base);
    let idle = measure::vm_bytes(s.pid, "VmRSS")?;
    let url = format!("{}/api/v1/write", s.base);
    let ing: Ingest = scenario::ingest(client, &s, url, remote_write::headers(), plan, args, tck).await;
    let after = measure::vm_bytes(s.pid, "VmRSS");
    s.stop(Duration::from_secs(120)).await?;
    let after = after?;
    let Some(peak_mib) = ing.peak_rss_mib.value else {
        let why = ing.peak_rss_mib.error.unwrap_or_else(|| "ingest failed".into());
        return Ok(Memory::na(&why));
    };
    let per_series_kib = |bytes: f64| Figure::ok((bytes - idle as f64) / series / 1024.0);
    let m = Memory {
        idle_mib: Figure::ok(idle as f64 / 1_048_576.0),
        after_kib: per_series_kib(after as f64),
        peak_kib: per_series_kib(peak_mib * 1_048_576.0),
    };
    println!(
        "  idle {:.1} MiB, after ingest {:.1} MiB, peak {:.1} MiB",
        idle as f64 / 1_048_576.0,
        after as f64 / 1_048_576.0,
        peak_mib
    );
    Ok(m)
}
