//! One generator of node_exporter-like host metrics, for `didban demo`'s hosts and for the
//! benchmark's data set.
//!
//! - [`catalog`]: the families (names, label names, kinds, rounding);
//! - [`Spec`]: what differs between hosts (CPUs, memory, interfaces, filesystems, disks,
//!   the usual busy share, a process group, an HTTP histogram);
//! - [`Node`] (in `host.rs`): the evolving values of one host, advanced by
//!   [`Node::step`] with an elapsed time, a load factor (the demo's traffic; 1 in the
//!   benchmark) and the caller's random generator;
//! - [`dataset`]: the benchmark's N identical hosts, deterministic per host index.
//!
//! A host's values come in one fixed order, the order of [`Node::families`] (and of
//! [`series`], which spells histograms out as Prometheus series).

pub mod catalog;
pub mod dataset;
mod host;

pub use catalog::{Kind, Metric};
pub use host::Node;

/// One mebibyte.
pub const MIB: f64 = 1024.0 * 1024.0;
/// One gibibyte.
pub const GIB: f64 = 1024.0 * MIB;

/// A network interface.
#[derive(Debug, Clone)]
pub struct Nic {
    /// Interface name (`device` label).
    pub device: &'static str,
    /// Bytes received per second at load 1 (it sends about 1.8 times that).
    pub rx_bytes_per_s: f64,
}

/// A mounted filesystem.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Block device (`device` label).
    pub device: &'static str,
    /// Mount point (`mountpoint` label).
    pub mountpoint: &'static str,
    /// Filesystem type (`fstype` label).
    pub fstype: &'static str,
    /// Size in bytes.
    pub size_bytes: f64,
    /// Share used at the start (each host draws ±20 % around it).
    pub used: f64,
    /// Growth of the used share per second.
    pub growth_per_s: f64,
}

/// A block device.
#[derive(Debug, Clone)]
pub struct Disk {
    /// Device name (`device` label).
    pub device: &'static str,
    /// I/O intensity: 1 is about 4 reads and 14 writes a second at load 1.
    pub intensity: f64,
}

/// The process group (process-exporter's `groupname`) of the host's main service.
#[derive(Debug, Clone)]
pub struct ProcessGroup {
    /// Group name.
    pub name: &'static str,
    /// Number of processes.
    pub procs: f64,
    /// Resident memory per process in MiB.
    pub rss_mib: f64,
}

/// What a simulated host is: its hardware, its usual load and what runs on it.
#[derive(Debug, Clone)]
pub struct Spec {
    /// CPU cores.
    pub cpus: usize,
    /// Busy share of a core (0..1) at load 1.
    pub busy: f64,
    /// How much the busy share follows the load: `busy + traffic_share × (load − 1)`.
    pub traffic_share: f64,
    /// Share of a core's time spent waiting for I/O.
    pub iowait: f64,
    /// Memory in bytes.
    pub mem_bytes: f64,
    /// Share of memory used by processes at load 1.
    pub mem_used: f64,
    /// Share of memory holding the page cache.
    pub mem_cached: f64,
    /// Shared memory in bytes.
    pub shmem_bytes: f64,
    /// Network interfaces.
    pub nics: Vec<Nic>,
    /// Mounted filesystems.
    pub mounts: Vec<Mount>,
    /// Block devices.
    pub disks: Vec<Disk>,
    /// The process group of the host's main service, if it has one.
    pub process_group: Option<ProcessGroup>,
    /// Requests per second of the busiest handler of [`catalog::HTTP_DURATION`] at load 1;
    /// None: the host has no HTTP histogram.
    pub http_rps: Option<f64>,
}

/// One family of a host with its label sets, in value order.
#[derive(Debug, Clone)]
pub struct Family {
    /// The catalogue entry.
    pub metric: Metric,
    /// Label name and value pairs of each instrument (histograms: before `le`), in the
    /// order of [`Metric::labels`].
    pub label_sets: Vec<Vec<(&'static str, String)>>,
}

impl Family {
    /// Values per label set: 1, or for a histogram its buckets, `+Inf`, sum and count.
    pub fn width(&self) -> usize {
        match self.metric.kind {
            Kind::Histogram(bounds) => bounds.len() + 3,
            _ => 1,
        }
    }

    /// Number of Prometheus series (and values) this family yields.
    pub fn series_count(&self) -> usize {
        self.label_sets.len() * self.width()
    }
}

/// One Prometheus series of a host.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name (histograms: with `_bucket`, `_sum` or `_count`).
    pub name: String,
    /// Labels besides the host's own (`instance`, `job`), `le` last.
    pub labels: Vec<(&'static str, String)>,
    /// Whether the value only goes up.
    pub counter: bool,
}

/// The Prometheus series of `families`, in value order.
pub fn series(families: &[Family]) -> Vec<Series> {
    let mut out = Vec::new();
    for f in families {
        for set in &f.label_sets {
            match f.metric.kind {
                Kind::Histogram(bounds) => {
                    let bucket = format!("{}_bucket", f.metric.name);
                    for b in bounds {
                        out.push(histogram_series(&bucket, set, Some(format_le(*b))));
                    }
                    out.push(histogram_series(&bucket, set, Some("+Inf".to_string())));
                    out.push(histogram_series(&format!("{}_sum", f.metric.name), set, None));
                    out.push(histogram_series(&format!("{}_count", f.metric.name), set, None));
                }
                kind => out.push(Series {
                    name: f.metric.name.to_string(),
                    labels: set.clone(),
                    counter: kind == Kind::Counter,
                }),
            }
        }
    }
    out
}

fn histogram_series(name: &str, set: &[(&'static str, String)], le: Option<String>) -> Series {
    let mut labels = set.to_vec();
    if let Some(le) = le {
        labels.push(("le", le));
    }
    Series {
        name: name.to_string(),
        labels,
        counter: true,
    }
}

/// `le` label value as client libraries print it.
pub fn format_le(b: f64) -> String {
    let s = format!("{b}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// `v` rounded to a multiple of `step` (unchanged when `step` is 0). A step below 1 is
/// taken as a fraction 1/n, so 0.01 gives what an exporter prints for ticks of 1/100 s
/// (`12.34`, not `12.340000000000002`).
pub fn round_to(v: f64, step: f64) -> f64 {
    if step <= 0.0 {
        v
    } else if step < 1.0 {
        let per_unit = (1.0 / step).round();
        (v * per_unit).round() / per_unit
    } else {
        (v / step).round() * step
    }
}
