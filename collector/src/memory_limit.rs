//! How much memory the server may use, and how it is shared between the stores.
//!
//! By default the limit is 60% of what the process can have (like VictoriaMetrics'
//! `-memory.allowedPercent`): the cgroup's limit when it is in one (v2 `memory.max`, v1
//! `memory.limit_in_bytes`, the smallest along the cgroup's path), else the machine's RAM
//! (`MemTotal`). `storage.memory_limit` sets it as bytes or as a percentage instead. The
//! stores' budgets are fixed shares of it (see [`Budgets`]); the rest is for queries,
//! request buffers and the allocator's slack.

use std::path::{Path, PathBuf};

/// Share of the available memory the server uses when `storage.memory_limit` is `auto`.
pub const DEFAULT_PERCENT: u64 = 60;

/// Memory assumed when neither a cgroup limit nor `/proc/meminfo` can be read.
const FALLBACK_BYTES: u64 = 4 << 30;

/// A cgroup v1 limit at or above this means "no limit" (the kernel writes 2^63 rounded down
/// to a page).
const V1_UNLIMITED: u64 = 1 << 62;

/// Where the available memory figure came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemorySource {
    /// A cgroup v2 `memory.max` file.
    CgroupV2(PathBuf),
    /// A cgroup v1 `memory.limit_in_bytes` file.
    CgroupV1(PathBuf),
    /// The machine's RAM from `/proc/meminfo`.
    MemTotal,
    /// Nothing could be read; [`FALLBACK_BYTES`] assumed.
    Fallback,
}

impl std::fmt::Display for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemorySource::CgroupV2(p) | MemorySource::CgroupV1(p) => write!(f, "{}", p.display()),
            MemorySource::MemTotal => f.write_str("/proc/meminfo MemTotal"),
            MemorySource::Fallback => f.write_str("assumed (no cgroup limit or /proc/meminfo found)"),
        }
    }
}

/// The memory the process can have and where that figure came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    /// Bytes.
    pub bytes: u64,
    /// Where it was read.
    pub source: MemorySource,
}

/// Reads the available memory of this process from the real `/proc` and `/sys`.
pub fn detect() -> Available {
    detect_in(Path::new("/"))
}

/// [`detect`] with `/proc` and `/sys` under `root` (tests lay out a fake tree).
pub fn detect_in(root: &Path) -> Available {
    let total = mem_total(root);
    let cgroup = std::fs::read_to_string(root.join("proc/self/cgroup"))
        .ok()
        .and_then(|text| cgroup_limit(root, &text));
    match (cgroup, total) {
        (Some((bytes, source)), Some(total)) if bytes < total => Available { bytes, source },
        (Some((bytes, source)), None) => Available { bytes, source },
        (_, Some(total)) => Available {
            bytes: total,
            source: MemorySource::MemTotal,
        },
        (None, None) => Available {
            bytes: FALLBACK_BYTES,
            source: MemorySource::Fallback,
        },
    }
}

fn mem_total(root: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("MemTotal:") {
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            return kib.checked_mul(1024);
        }
    }
    None
}

/// The smallest cgroup memory limit along this process' cgroup path, v2 first.
fn cgroup_limit(root: &Path, proc_self_cgroup: &str) -> Option<(u64, MemorySource)> {
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            let base = root.join("sys/fs/cgroup");
            if let Some((bytes, file)) = smallest_along(&base, path, "memory.max", u64::MAX) {
                return Some((bytes, MemorySource::CgroupV2(file)));
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let base = root.join("sys/fs/cgroup/memory");
            let found = smallest_along(&base, path, "memory.limit_in_bytes", V1_UNLIMITED);
            if let Some((bytes, file)) = found {
                return Some((bytes, MemorySource::CgroupV1(file)));
            }
        }
    }
    None
}

/// Reads `file` in `base/path` and each parent up to `base` (inside a container the
/// cgroup's own directory is often mounted as `base`), keeping the smallest limit below
/// `unlimited`; "max" means no limit.
fn smallest_along(base: &Path, path: &str, file: &str, unlimited: u64) -> Option<(u64, PathBuf)> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut dir = base.join(path.trim_start_matches('/'));
    loop {
        let candidate = dir.join(file);
        if let Ok(text) = std::fs::read_to_string(&candidate) {
            if let Ok(bytes) = text.trim().parse::<u64>() {
                if bytes < unlimited && best.as_ref().is_none_or(|(b, _)| bytes < *b) {
                    best = Some((bytes, candidate));
                }
            }
        }
        if dir == base || !dir.starts_with(base) || !dir.pop() {
            break;
        }
    }
    best
}

/// Parses `storage.memory_limit`: `auto` (60% of the available memory), a percentage of
/// it (`"50%"`) or a size (`"4GiB"`); returns the limit in bytes.
pub fn parse_limit(value: &str, available: u64) -> anyhow::Result<u64> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("auto") {
        return Ok(default_limit(available));
    }
    if let Some(p) = v.strip_suffix('%') {
        let p: u64 = p
            .trim()
            .parse()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .ok_or_else(|| anyhow::anyhow!("{value:?} is not a percentage from 1% to 100%"))?;
        return Ok(percent_of(available, p));
    }
    let bytes = didban_base::parse_bytes(v)?;
    if bytes < 64 << 20 {
        anyhow::bail!("{value:?} is below the smallest memory limit of 64MiB");
    }
    Ok(bytes)
}

/// The memory limit when `storage.memory_limit` is not set: [`DEFAULT_PERCENT`] of `available`.
pub fn default_limit(available: u64) -> u64 {
    percent_of(available, DEFAULT_PERCENT)
}

fn percent_of(bytes: u64, percent: u64) -> u64 {
    (u128::from(bytes) * u128::from(percent) / 100) as u64
}

/// The stores' shares of the memory limit, used for every budget not set on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// `storage.head_memory_limit`: 25%. Under a cardinality burst the process' RSS
    /// peaked at about 2.9 times this budget (a frozen head being written beside a new one,
    /// the Parquet writer, the allocator keeping freed pages), see `docs/reliability.md`.
    pub metrics_head: u64,
    /// `storage.block_index_cache_size`: 5%. Series lists and postings of Parquet blocks
    /// kept across queries; before it was bounded, every opened block kept its own (6 GiB
    /// after a release-build burst with a 1 GiB limit).
    pub block_index_cache: u64,
    /// `traces.head_memory_limit`: 10%.
    pub traces_head: u64,
    /// `logs.max_pending_bytes`: 5%.
    pub logs_pending: u64,
    /// `logs.writer_memory`: 3%, between Tantivy's minimum of 16 MiB and 64 MiB.
    pub logs_writer: u64,
    /// `query.max_samples_total`: 20%, counted in samples of [`QUERY_BYTES_PER_SAMPLE`]
    /// (at least 1 million): the samples all running queries may hold together, beside
    /// each query's own `max_samples`.
    pub query_samples: u64,
}

/// Bytes a sample held by a query is counted at for `query.max_samples_total`: an estimate,
/// the 16 bytes of a timestamp and value doubled for the per-step vectors, labels and
/// series around them.
pub const QUERY_BYTES_PER_SAMPLE: u64 = 32;

impl Budgets {
    /// The shares of `limit` bytes.
    pub fn of(limit: u64) -> Budgets {
        Budgets {
            metrics_head: percent_of(limit, 25),
            block_index_cache: percent_of(limit, 5),
            traces_head: percent_of(limit, 10),
            logs_pending: percent_of(limit, 5).max(16 << 20),
            logs_writer: percent_of(limit, 3).clamp(16 << 20, 64 << 20),
            query_samples: (percent_of(limit, 20) / QUERY_BYTES_PER_SAMPLE).max(1_000_000),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    const MEMINFO: &str = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n";

    #[test]
    fn cgroup_v2_limit_wins_over_ram_and_is_the_smallest_along_the_path() {
        let root = tree(&[
            ("proc/meminfo", MEMINFO),
            ("proc/self/cgroup", "0::/system.slice/didban.service\n"),
            ("sys/fs/cgroup/system.slice/memory.max", "2147483648\n"),
            ("sys/fs/cgroup/system.slice/didban.service/memory.max", "max\n"),
        ]);
        let a = detect_in(root.path());
        assert_eq!(a.bytes, 2 << 30);
        assert!(matches!(a.source, MemorySource::CgroupV2(ref p) if p.ends_with("system.slice/memory.max")));
    }

    #[test]
    fn cgroup_v1_limit_and_its_unlimited_value() {
        let limited = tree(&[
            ("proc/meminfo", MEMINFO),
            ("proc/self/cgroup", "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n"),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n"),
        ]);
        let a = detect_in(limited.path());
        assert_eq!(
            a.bytes,
            512 << 20,
            "the container's own cgroup is mounted as the root"
        );
        assert!(matches!(a.source, MemorySource::CgroupV1(_)));

        let unlimited = tree(&[
            ("proc/meminfo", MEMINFO),
            ("proc/self/cgroup", "4:memory:/docker/abc\n"),
            (
                "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        let a = detect_in(unlimited.path());
        assert_eq!(a.bytes, 16_384_000 * 1024);
        assert_eq!(a.source, MemorySource::MemTotal);
    }

    #[test]
    fn a_cgroup_limit_above_the_ram_and_nothing_readable() {
        let root = tree(&[
            ("proc/meminfo", MEMINFO),
            ("proc/self/cgroup", "0::/\n"),
            ("sys/fs/cgroup/memory.max", "107374182400\n"),
        ]);
        assert_eq!(detect_in(root.path()).source, MemorySource::MemTotal);
        let empty = tree(&[]);
        assert_eq!(detect_in(empty.path()).bytes, FALLBACK_BYTES);
        assert!(detect().bytes > 0);
    }

    #[test]
    fn limit_values_and_budgets() {
        let avail = 10 << 30;
        assert_eq!(parse_limit("auto", avail).unwrap(), 6 << 30);
        assert_eq!(parse_limit("50%", avail).unwrap(), 5 << 30);
        assert_eq!(parse_limit("2GiB", avail).unwrap(), 2 << 30);
        for bad in ["0%", "150%", "ten", "1MiB"] {
            let err = parse_limit(bad, avail).unwrap_err();
            assert!(format!("{err:#}").contains(bad), "{err:#}");
        }
        let b = Budgets::of(1 << 30);
        assert_eq!(b.metrics_head, (1u64 << 30) / 4);
        assert_eq!(b.traces_head, (1u64 << 30) / 10);
        assert_eq!(b.block_index_cache, (1u64 << 30) / 20);
        assert_eq!(b.logs_writer, (1u64 << 30) * 3 / 100);
        assert_eq!(Budgets::of(100 << 30).logs_writer, 64 << 20);
        assert_eq!(Budgets::of(256 << 20).logs_writer, 16 << 20);
    }
}
