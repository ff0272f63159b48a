//! Bytes per sample on disk: each system's data brought into its most compact state the way
//! the systems themselves offer, then measured.
//!
//! - Prometheus: `POST /api/v1/admin/tsdb/snapshot` hard-links its blocks and writes the head
//!   as one more block; the snapshot's blocks are measured against their `meta.json` counts.
//! - Didban: `POST /api/v1/admin/tsdb/flush` writes the head as a block, then SIGTERM; the
//!   blocks under `metrics/blocks` are measured against their `meta.json` counts.
//! - VictoriaMetrics: `/internal/force_flush` (in-memory rows to parts), `/internal/force_merge`
//!   (every partition merged as far as it goes), wait until no merge runs; then its whole data
//!   dir (data parts and `indexdb`, without `snapshots/` and `cache/`) against the samples sent.
//!   It has no per-part sample counts on disk; `vm_rows` from `/metrics` is reported beside.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::measure;
use crate::report::Figure;
use crate::targets::{Running, System};

/// The two disk figures of one system.
#[derive(Debug, Clone)]
pub struct Disk {
    /// Compacted storage only (blocks, or VictoriaMetrics' merged data dir) ÷ samples held.
    pub blocks: Figure,
    /// Everything in the data dir (WAL included) ÷ samples sent.
    pub all: Figure,
    /// How much of the data the measured files hold, for the notes.
    pub note: Option<String>,
}

impl Disk {
    /// No figures, and why.
    pub fn na(why: &str) -> Self {
        Disk {
            blocks: Figure::na(why),
            all: Figure::na(why),
            note: None,
        }
    }
}

/// Brings `r`'s data into its measured state and measures it; `samples` is what was sent.
/// Didban is stopped on the way (its blocks are measured after shutdown); the others keep
/// running and are stopped by the caller.
pub async fn compact_and_measure(client: &reqwest::Client, r: &mut Running, samples: u64) -> Disk {
    let res = match r.system {
        System::Prometheus => prometheus(client, r, samples).await,
        System::Didban => didban(client, r, samples).await,
        System::VictoriaMetrics => victoriametrics(client, r, samples).await,
    };
    res.unwrap_or_else(|e| Disk::na(&format!("{e:#}")))
}

async fn prometheus(client: &reqwest::Client, p: &Running, samples: u64) -> anyhow::Result<Disk> {
    let t = Instant::now();
    let url = format!("{}/api/v1/admin/tsdb/snapshot", p.base);
    let resp = client.post(&url).timeout(Duration::from_secs(600)).send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("snapshot answer is not JSON")?;
    let Some(name) = body.pointer("/data/name").and_then(|v| v.as_str()) else {
        bail!("snapshot failed: HTTP {status}: {body}");
    };
    let snap = p.data_dir.join("snapshots").join(name);
    println!(
        "  snapshot in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        snap.display()
    );
    let (blocks, note) = blocks_figure("Prometheus", &snap, samples);
    Ok(Disk {
        blocks,
        all: per_sample(measure::dir_size(&p.data_dir, &["snapshots"]), samples),
        note: Some(note),
    })
}

async fn didban(client: &reqwest::Client, s: &mut Running, samples: u64) -> anyhow::Result<Disk> {
    // Like the Prometheus snapshot: the head written as a block before measuring disk.
    let flush = client
        .post(format!("{}/api/v1/admin/tsdb/flush", s.base))
        .timeout(Duration::from_secs(600))
        .send()
        .await;
    if let Err(e) = flush.and_then(|r| r.error_for_status()) {
        println!("  Didban head flush failed: {e}");
    }
    if !s.stop(Duration::from_secs(120)).await? {
        println!("  Didban did not exit within 120 s of SIGTERM; killed");
    }
    let (blocks, note) = blocks_figure("Didban", &s.data_dir.join("metrics").join("blocks"), samples);
    Ok(Disk {
        blocks,
        all: per_sample(measure::dir_size(&s.data_dir, &[]), samples),
        note: Some(note),
    })
}

/// How long VictoriaMetrics' merges may take before the disk figure is given up.
const MERGE_TIMEOUT: Duration = Duration::from_secs(900);

async fn victoriametrics(client: &reqwest::Client, v: &Running, samples: u64) -> anyhow::Result<Disk> {
    let t = Instant::now();
    let m = vm_merge(client, v).await?;
    let rows =
        metric_sum(&m, "vm_rows{type=\"storage/big\"}") + metric_sum(&m, "vm_rows{type=\"storage/small\"}");
    let bytes = measure::dir_size(&v.data_dir, &["snapshots", "cache"]);
    let data = measure::dir_size(&v.data_dir.join("data"), &[]);
    let index = measure::dir_size(&v.data_dir.join("indexdb"), &[]);
    let note = format!(
        "VictoriaMetrics: data dir after force_flush + force_merge ({:.1} s): {:.1} MiB (data {:.1}, indexdb {:.1}); vm_rows {} of {} samples sent",
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1_048_576.0,
        data as f64 / 1_048_576.0,
        index as f64 / 1_048_576.0,
        rows,
        samples
    );
    println!("  {note}");
    let fig = per_sample(bytes, samples);
    Ok(Disk {
        blocks: fig.clone(),
        all: fig,
        note: Some(note),
    })
}

/// `force_flush` and `force_merge`, then waits until no merge runs; returns the last
/// `/metrics` text.
async fn vm_merge(client: &reqwest::Client, v: &Running) -> anyhow::Result<String> {
    let t = Instant::now();
    for path in ["/internal/force_flush", "/internal/force_merge"] {
        client
            .get(format!("{}{path}", v.base))
            .timeout(Duration::from_secs(600))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("GET {path}"))?;
    }
    // force_merge answers at once and merges in the background: wait until two polls in a
    // row, the first a second after the request (the merge has registered itself by then),
    // see no merge running.
    let mut quiet = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let m = vm_metrics(client, v).await?;
        let active = metric_sum(&m, "vm_active_force_merges") + metric_sum(&m, "vm_active_merges");
        quiet = if active == 0.0 { quiet + 1 } else { 0 };
        if quiet >= 2 {
            return Ok(m);
        }
        if t.elapsed() > MERGE_TIMEOUT {
            bail!(
                "VictoriaMetrics still merging after {} s",
                MERGE_TIMEOUT.as_secs()
            );
        }
    }
}

/// With `--queries-on-blocks`: puts what was ingested where a system keeps old data before
/// the queries run — Didban's head written as a block (`/api/v1/admin/tsdb/flush`),
/// VictoriaMetrics' rows flushed into parts and merged; Prometheus is left as it is (its
/// head cannot be cut on demand).
pub async fn settle_for_queries(client: &reqwest::Client, r: &Running) -> anyhow::Result<()> {
    match r.system {
        System::Didban => {
            client
                .post(format!("{}/api/v1/admin/tsdb/flush", r.base))
                .timeout(Duration::from_secs(600))
                .send()
                .await?
                .error_for_status()
                .context("POST /api/v1/admin/tsdb/flush")?;
            println!("  Didban: head written as a block before the queries");
        }
        System::VictoriaMetrics => {
            vm_merge(client, r).await?;
            println!("  VictoriaMetrics: flushed and merged before the queries");
        }
        System::Prometheus => println!("  Prometheus: queried as it is (its head cannot be cut on demand)"),
    }
    Ok(())
}

async fn vm_metrics(client: &reqwest::Client, v: &Running) -> anyhow::Result<String> {
    let resp = client
        .get(format!("{}/metrics", v.base))
        .timeout(Duration::from_secs(30))
        .send()
        .await?
        .error_for_status()?;
    Ok(resp.text().await?)
}

/// Sum of the values of the Prometheus text-format lines whose series starts with `prefix`
/// (a metric name, or a name with its labels); unparsable values count as 0.
pub fn metric_sum(text: &str, prefix: &str) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(prefix) else {
            continue;
        };
        // The name must end where the prefix ends: `vm_rows` must not match `vm_rows_merged`.
        if !(rest.starts_with(' ') || rest.starts_with('{') || prefix.ends_with('}')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            sum += v;
        }
    }
    sum
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
    if bytes == 0 || samples == 0 {
        Figure::na("no such files")
    } else {
        Figure::ok(bytes as f64 / samples as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_match_whole_names() {
        let text = "# HELP vm_rows x\nvm_rows{type=\"storage/big\"} 40\nvm_rows{type=\"storage/small\"} 2\nvm_rows_merged_total{type=\"storage/big\"} 99\nvm_active_merges{type=\"indexdb\"} 1\nvm_active_merges{type=\"storage/big\"} 2\nvm_active_force_merges 0\n";
        assert_eq!(metric_sum(text, "vm_rows{type=\"storage/big\"}"), 40.0);
        assert_eq!(metric_sum(text, "vm_rows"), 42.0);
        assert_eq!(metric_sum(text, "vm_active_merges"), 3.0);
        assert_eq!(metric_sum(text, "vm_active_force_merges"), 0.0);
        assert_eq!(metric_sum(text, "vm_missing"), 0.0);
    }
}
