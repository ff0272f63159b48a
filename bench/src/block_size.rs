//! `--mode block-size`: bytes per sample of Didban's metric blocks, per file and per column.
//!
//! In-process, no HTTP and no other system: the bench's data set (`--hosts` hosts, `--span`
//! at `--interval`, ending now) is appended to a fresh database in a temp dir (WAL fsync
//! off), host by host, every series in time order; the head is then written as one block
//! (`Db::flush_head`, the writer a head cut uses), and the block's files are measured: bytes
//! per sample of the whole block directory, and the compressed bytes of every column chunk
//! of `samples.parquet` and `series.parquet` as their footers state them. The figure to
//! compare with VictoriaMetrics is the whole directory ÷ samples (docs/benchmarks.md, "Block
//! size"); the ratio hardly depends on the number of hosts, so a few hosts give a quick
//! figure and 207 hosts (≈ 100k series) the acceptance one. `--keep` leaves the block in the
//! work dir for outside readers.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use didban_store::{Db, DbOptions, FsyncMode, Labels, Sample, SeriesLimits, SeriesSamples};
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::report::Machine;
use crate::scenario;
use crate::Args;

/// Consecutive samples of every series of a host appended in one call.
const STEPS_PER_APPEND: usize = 40;

/// Runs the block-size mode and prints its table.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let machine = Machine::detect(&args.prometheus_bin, &args.victoriametrics_bin);
    let d = scenario::dataset_ending_now(
        args,
        (args.span.as_millis() / args.interval.as_millis().max(1)) as usize,
    );
    println!(
        "block-size: {} hosts × {} series = {} series × {} samples = {} samples",
        args.hosts,
        d.per_host,
        d.series(),
        d.shape.steps,
        d.samples()
    );
    println!(
        "machine: {} ({} CPUs, {} GiB), revision {}",
        machine.cpu, machine.cores, machine.ram_gib, machine.git_revision
    );
    let tmp = scenario::work_dir(args)?;
    let data_dir = tmp.path().join("didban");
    let mut options = DbOptions::new(&data_dir);
    options.fsync = FsyncMode::Off;
    options.head_memory_bytes = 0;
    // One block for the whole span, however it falls on the clock.
    options.block_duration = args.span.saturating_mul(4);
    options.limits = SeriesLimits {
        max_series: 0,
        max_series_per_metric: 0,
        ..SeriesLimits::default()
    };
    let db = Db::open(options).context("opening the database")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let mut accepted = 0u64;
    for h in 0..args.hosts {
        let labels: Vec<Labels> = d.host_series(h).into_iter().map(Labels::from_pairs).collect();
        let mut state = d.host_state(h);
        let mut k0 = 0;
        while k0 < d.shape.steps {
            let k1 = (k0 + STEPS_PER_APPEND).min(d.shape.steps);
            let mut series: Vec<Vec<Sample>> = vec![Vec::with_capacity(k1 - k0); labels.len()];
            for k in k0..k1 {
                d.step(&mut state, k);
                let t = d.shape.ts(k);
                for (out, v) in series.iter_mut().zip(&state.values) {
                    out.push(Sample::new(t, *v));
                }
            }
            let batch: Vec<SeriesSamples> = labels
                .iter()
                .zip(series)
                .map(|(l, samples)| SeriesSamples {
                    labels: l.clone(),
                    samples,
                    histograms: Vec::new(),
                })
                .collect();
            let report = runtime.block_on(db.append(batch))?;
            anyhow::ensure!(report.rejected_total() == 0, "samples refused: {report:?}");
            accepted += report.accepted;
            k0 = k1;
        }
    }
    println!(
        "  appended {accepted} samples in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let stats = db.stats();
    println!(
        "  head before the flush: {} bytes = {:.2} B/sample, {:.0} B/series (as the head accounts its memory)",
        stats.head_bytes,
        stats.head_bytes as f64 / accepted.max(1) as f64,
        stats.head_bytes as f64 / stats.head_series.max(1) as f64
    );
    let start = Instant::now();
    db.flush_head().context("writing the head as a block")?;
    println!("  block written in {:.1} s", start.elapsed().as_secs_f64());
    runtime.block_on(db.close())?;
    let blocks = data_dir.join("metrics").join("blocks");
    for dir in block_dirs(&blocks)? {
        print_block(&dir)?;
    }
    if args.keep {
        println!("kept: {}", tmp.keep().display());
    }
    Ok(())
}

/// The block directories under `blocks` (not the temporary ones).
fn block_dirs(blocks: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(blocks).with_context(|| format!("listing {}", blocks.display()))? {
        let path = entry?.path();
        if path.join("meta.json").is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Prints bytes per sample of the block in `dir`, per file and per column.
fn print_block(dir: &Path) -> anyhow::Result<()> {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("meta.json"))
            .with_context(|| format!("reading {}/meta.json", dir.display()))?,
    )?;
    let samples = meta["samples"].as_u64().unwrap_or(0).max(1) as f64;
    let mut total = 0u64;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let len = entry.metadata()?.len();
        total += len;
        files.push((entry.file_name().to_string_lossy().into_owned(), len));
    }
    files.sort();
    println!(
        "\nblock {} (format {}): {} series, {} samples, {} bytes = {:.3} B/sample",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        meta["format_version"],
        meta["series"],
        meta["samples"],
        total,
        total as f64 / samples
    );
    println!("\n| file / column | bytes | B/sample | encodings |");
    println!("|---|---|---|---|");
    for (name, len) in &files {
        println!("| {name} | {len} | {:.3} | |", *len as f64 / samples);
        if name.ends_with(".parquet") {
            for (column, (bytes, encodings)) in column_bytes(&dir.join(name))? {
                println!(
                    "| &nbsp; {column} | {bytes} | {:.3} | {encodings} |",
                    bytes as f64 / samples
                );
            }
        }
    }
    Ok(())
}

/// Compressed bytes (pages and dictionary, as the footer states) and encodings of every
/// column of the Parquet file at `path`, summed over its row groups.
fn column_bytes(path: &Path) -> anyhow::Result<BTreeMap<String, (i64, String)>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = SerializedFileReader::new(file).with_context(|| format!("reading {}", path.display()))?;
    let mut out: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for rg in reader.metadata().row_groups() {
        for c in rg.columns() {
            let entry = out.entry(c.column_path().string()).or_default();
            entry.0 += c.compressed_size();
            let encodings: Vec<String> = c.encodings().map(|e| format!("{e:?}")).collect();
            entry.1 = encodings.join(" ");
        }
    }
    Ok(out)
}
