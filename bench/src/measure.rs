//! Measurements of a target process: CPU time and memory from /proc, disk usage of its data
//! directory, and range-query latency through the Prometheus HTTP API.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 if unknown).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds the process has used so far.
pub fn cpu_seconds(pid: u32, tck: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces; fields after it are space-separated.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/<pid>/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: f64 = f.get(11).context("no utime")?.parse()?;
    let stime: f64 = f.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) / tck)
}

/// A `Vm*` line of /proc/<pid>/status in bytes (e.g. `VmHWM`, `VmRSS`).
pub fn vm_bytes(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix(key).and_then(|v| v.strip_prefix(':')) {
            let kb: u64 = v.trim().trim_end_matches("kB").trim().parse()?;
            return Ok(kb * 1024);
        }
    }
    bail!("{key} not in /proc/{pid}/status")
}

/// Samples VmRSS every 100 ms in the background and keeps the largest value.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Ok(rss) = vm_bytes(pid, "VmRSS") {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssSampler { peak, stop, task }
    }

    /// Stops sampling; returns the largest RSS seen, in bytes.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

/// Total size in bytes of the regular files under `path`, skipping top-level entries named
/// in `skip`. A missing path counts as 0.
pub fn dir_size(path: &Path, skip: &[&str]) -> u64 {
    fn walk(p: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if meta.is_file() {
            return meta.len();
        }
        if !meta.is_dir() {
            return 0;
        }
        let Ok(rd) = std::fs::read_dir(p) else { return 0 };
        rd.flatten().map(|e| walk(&e.path())).sum()
    }
    let Ok(rd) = std::fs::read_dir(path) else { return 0 };
    rd.flatten()
        .filter(|e| !skip.iter().any(|s| e.file_name() == *s))
        .map(|e| walk(&e.path()))
        .sum()
}

/// Size and sample count of the blocks in one directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockUsage {
    /// Blocks found (directories with a `meta.json`).
    pub blocks: usize,
    /// Bytes of all files in those blocks.
    pub bytes: u64,
    /// Samples the blocks hold, from their `meta.json`.
    pub samples: u64,
}

/// Sums the blocks directly under `dir`: every subdirectory with a `meta.json` that states its
/// sample count (Prometheus: `stats.numSamples`; Didban: `samples`). Temporary directories
/// (names starting with `.`) are skipped.
pub fn block_usage(dir: &Path) -> BlockUsage {
    let mut u = BlockUsage::default();
    let Ok(rd) = std::fs::read_dir(dir) else { return u };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path().join("meta.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let samples = v
            .pointer("/stats/numSamples")
            .or_else(|| v.get("samples"))
            .and_then(|n| n.as_u64());
        if let Some(n) = samples {
            u.blocks += 1;
            u.samples += n;
            u.bytes += dir_size(&e.path(), &[]);
        }
    }
    u
}

/// The `q`-quantile (0..=1) of `sorted` by nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One dashboard query over a window ending at the time it runs.
#[derive(Debug, Clone)]
pub struct RangeQuery {
    /// Short name for the report.
    pub name: String,
    /// PromQL expression.
    pub expr: String,
    /// Window length in seconds.
    pub range_s: i64,
    /// Resolution step in seconds.
    pub step_s: i64,
}

/// A matrix answer: per series its label set (as text, sorted) and its values, oldest first.
pub type Matrix = Vec<(String, Vec<f64>)>;

/// Latency figures of one query on one target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds (with 20 runs: the slowest run).
    pub p99_ms: f64,
    /// Timed runs.
    pub runs: usize,
    /// Series in the answer (to check both systems computed the same thing).
    pub result_series: usize,
    /// Points in the answer.
    pub result_points: usize,
    /// The last answer, to compare the systems' values.
    #[serde(skip)]
    pub answer: Matrix,
}

/// Runs one `query_range` call. Returns the time until the whole body was received (JSON
/// parsing is not timed) and the answer.
async fn query_once(
    client: &reqwest::Client,
    base: &str,
    q: &RangeQuery,
    end_s: i64,
) -> anyhow::Result<(Duration, Matrix)> {
    let url = format!("{base}/api/v1/query_range");
    let params = [
        ("query", q.expr.clone()),
        ("start", (end_s - q.range_s).to_string()),
        ("end", end_s.to_string()),
        ("step", q.step_s.to_string()),
    ];
    let t = Instant::now();
    let resp = client
        .get(&url)
        .query(&params)
        .timeout(Duration::from_secs(300))
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    let elapsed = t.elapsed();
    let head = |n: usize| text.chars().take(n).collect::<String>();
    if !status.is_success() {
        bail!("HTTP {status}: {}", head(200));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("answer is not JSON: {}", head(100)))?;
    if v.get("status").and_then(|s| s.as_str()) != Some("success") {
        bail!("status is not success: {}", head(200));
    }
    let result = v
        .pointer("/data/result")
        .and_then(|r| r.as_array())
        .context("no data.result array")?;
    let mut matrix = Vec::with_capacity(result.len());
    for s in result {
        let mut labels: Vec<String> = s
            .get("metric")
            .and_then(|m| m.as_object())
            .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
            .unwrap_or_default();
        labels.sort();
        let values = s
            .get("values")
            .and_then(|v| v.as_array())
            .map(|pts| {
                pts.iter()
                    .map(|p| {
                        p.get(1)
                            .and_then(|x| x.as_str())
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(f64::NAN)
                    })
                    .collect()
            })
            .unwrap_or_default();
        matrix.push((labels.join(","), values));
    }
    matrix.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((elapsed, matrix))
}

/// Runs `q` `warmup` times untimed, then `runs` times timed, sequentially, each with its
/// window ending at `end_s` (seconds since the epoch: the end of the data, the same for both
/// systems). Timed runs stop early once they have taken more than `budget` in total.
pub async fn query_latency(
    client: &reqwest::Client,
    base: &str,
    q: &RangeQuery,
    end_s: i64,
    warmup: usize,
    runs: usize,
    budget: Duration,
) -> anyhow::Result<Latency> {
    for _ in 0..warmup {
        query_once(client, base, q, end_s).await?;
    }
    let mut ms = Vec::with_capacity(runs);
    let mut answer = Vec::new();
    let started = Instant::now();
    for _ in 0..runs.max(1) {
        let (elapsed, a) = query_once(client, base, q, end_s).await?;
        ms.push(elapsed.as_secs_f64() * 1000.0);
        answer = a;
        // A very slow system gets fewer runs rather than an endless benchmark.
        if started.elapsed() > budget {
            break;
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok(Latency {
        p50_ms: percentile(&ms, 0.5).unwrap_or(f64::NAN),
        p99_ms: percentile(&ms, 0.99).unwrap_or(f64::NAN),
        runs: ms.len(),
        result_series: answer.len(),
        result_points: answer.iter().map(|(_, v)| v.len()).sum(),
        answer,
    })
}

/// Compares two answers series by series, point by point aligned at the end (both windows
/// end at the end of their data). Returns a one-line verdict.
pub fn compare(a: &Matrix, b: &Matrix) -> String {
    let keys = |m: &Matrix| m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    if keys(a) != keys(b) {
        return format!("answers DIFFER in their series: {} vs {}", a.len(), b.len());
    }
    let (mut points, mut differ, mut max_rel) = (0usize, 0usize, 0.0f64);
    let mut first = None;
    for ((key, va), (_, vb)) in a.iter().zip(b) {
        if va.len() != vb.len() {
            differ += va.len().abs_diff(vb.len());
        }
        for (i, (x, y)) in va.iter().rev().zip(vb.iter().rev()).enumerate() {
            points += 1;
            if x.is_nan() && y.is_nan() || x == y {
                continue;
            }
            let rel = (x - y).abs() / x.abs().max(y.abs()).max(1e-12);
            if rel.is_nan() || rel > 1e-6 {
                differ += 1;
                if first.is_none() {
                    let at = va.len() - 1 - i;
                    first = Some(format!("first: {{{key}}} point {at} of {}: {x} vs {y}", va.len()));
                }
            }
            if rel.is_finite() {
                max_rel = max_rel.max(rel);
            }
        }
    }
    if differ == 0 {
        format!("answers agree: {points} points, largest relative difference {max_rel:.1e}")
    } else {
        format!(
            "answers DIFFER at {differ} of {points} points (largest relative difference {max_rel:.1e}); {}",
            first.unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_usage_reads_both_meta_formats() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("01PROM");
        let d = dir.path().join("0-1-abc");
        let tmp = dir.path().join(".tmp-x");
        for x in [&p, &d, &tmp] {
            std::fs::create_dir_all(x)?;
        }
        std::fs::write(p.join("meta.json"), r#"{"stats":{"numSamples":10}}"#)?;
        std::fs::write(d.join("meta.json"), r#"{"samples":30}"#)?;
        std::fs::write(tmp.join("meta.json"), r#"{"samples":1000}"#)?;
        std::fs::write(d.join("samples.parquet"), [0u8; 100])?;
        let u = block_usage(dir.path());
        assert_eq!((u.blocks, u.samples), (2, 40));
        assert!(u.bytes >= 100);
        Ok(())
    }

    #[test]
    fn answers_compare_from_the_end() {
        let a: Matrix = vec![("mode=\"idle\"".into(), vec![1.0, 2.0, 3.0])];
        let b: Matrix = vec![("mode=\"idle\"".into(), vec![2.0, 3.0 + 1e-12])];
        let c: Matrix = vec![("mode=\"idle\"".into(), vec![1.0, 2.5, 3.0])];
        assert!(compare(&a, &b).starts_with("answers DIFFER at 1 of 2"));
        assert!(compare(&a, &a).starts_with("answers agree: 3 points"));
        assert!(compare(&a, &c).contains("DIFFER at 1 of 3"));
        assert!(compare(&a, &vec![]).contains("series"));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(10.0));
        assert_eq!(percentile(&v, 0.99), Some(20.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn own_process_figures_are_readable() -> anyhow::Result<()> {
        let pid = std::process::id();
        assert!(cpu_seconds(pid, clk_tck())? >= 0.0);
        assert!(vm_bytes(pid, "VmHWM")? > 0);
        Ok(())
    }
}
