//! The catalogue: every family a simulated host exposes, with node_exporter's (and
//! process-exporter's) names, label names, kinds and the step the real exporter's values
//! come in (CPU seconds in 1/100 s from `USER_HZ`, memory in KiB from `/proc/meminfo`,
//! filesystem bytes in 4 KiB blocks, disk bytes in 512-byte sectors, disk times in ms,
//! load averages with two decimals, everything counted in whole units).
//!
//! The order of the arrays is the order of the values [`super::Node`] keeps for them.

/// How a family's values behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Monotonic cumulative counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Classic histogram with these upper bounds (without `+Inf`).
    Histogram(&'static [f64]),
}

/// One metric family of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// Prometheus name (for histograms the base name, without `_bucket`).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Label names, in the order a series gives their values (histograms: without `le`).
    pub labels: &'static [&'static str],
    /// Values are multiples of this (0: not rounded).
    pub round: f64,
}

const fn counter(name: &'static str, labels: &'static [&'static str], round: f64) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        labels,
        round,
    }
}

const fn gauge(name: &'static str, labels: &'static [&'static str], round: f64) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        labels,
        round,
    }
}

/// KiB: `/proc/meminfo` reports kB.
const KIB: f64 = 1024.0;
/// Filesystem block size.
const BLOCK: f64 = 4096.0;
/// Disk sector size.
const SECTOR: f64 = 512.0;
/// Memory page size (process-exporter counts resident pages).
const PAGE: f64 = 4096.0;

/// CPU modes in `/proc/stat` order (the `mode` label of [`CPU_SECONDS`]).
pub const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// CPU time per core and mode.
pub const CPU_SECONDS: Metric = counter("node_cpu_seconds_total", &["cpu", "mode"], 0.01);

/// Load averages over 1, 5 and 15 minutes.
pub const LOAD: [Metric; 3] = [
    gauge("node_load1", &[], 0.01),
    gauge("node_load5", &[], 0.01),
    gauge("node_load15", &[], 0.01),
];

/// `/proc/meminfo` fields.
pub const MEMORY: [Metric; 12] = [
    gauge("node_memory_MemTotal_bytes", &[], KIB),
    gauge("node_memory_MemFree_bytes", &[], KIB),
    gauge("node_memory_MemAvailable_bytes", &[], KIB),
    gauge("node_memory_Buffers_bytes", &[], KIB),
    gauge("node_memory_Cached_bytes", &[], KIB),
    gauge("node_memory_Active_bytes", &[], KIB),
    gauge("node_memory_Inactive_bytes", &[], KIB),
    gauge("node_memory_Dirty_bytes", &[], KIB),
    gauge("node_memory_Shmem_bytes", &[], KIB),
    gauge("node_memory_Slab_bytes", &[], KIB),
    gauge("node_memory_SwapTotal_bytes", &[], KIB),
    gauge("node_memory_SwapFree_bytes", &[], KIB),
];

const FS_LABELS: &[&str] = &["device", "fstype", "mountpoint"];

/// Per mounted filesystem (`statvfs`).
pub const FILESYSTEM: [Metric; 7] = [
    gauge("node_filesystem_size_bytes", FS_LABELS, BLOCK),
    gauge("node_filesystem_free_bytes", FS_LABELS, BLOCK),
    gauge("node_filesystem_avail_bytes", FS_LABELS, BLOCK),
    gauge("node_filesystem_files", FS_LABELS, 1.0),
    gauge("node_filesystem_files_free", FS_LABELS, 1.0),
    gauge("node_filesystem_readonly", FS_LABELS, 1.0),
    gauge("node_filesystem_device_error", FS_LABELS, 1.0),
];

const DEVICE: &[&str] = &["device"];

/// Per block device (`/proc/diskstats`), counters.
pub const DISK: [Metric; 8] = [
    counter("node_disk_read_bytes_total", DEVICE, SECTOR),
    counter("node_disk_written_bytes_total", DEVICE, SECTOR),
    counter("node_disk_reads_completed_total", DEVICE, 1.0),
    counter("node_disk_writes_completed_total", DEVICE, 1.0),
    counter("node_disk_read_time_seconds_total", DEVICE, 0.001),
    counter("node_disk_write_time_seconds_total", DEVICE, 0.001),
    counter("node_disk_io_time_seconds_total", DEVICE, 0.001),
    counter("node_disk_io_time_weighted_seconds_total", DEVICE, 0.001),
];

/// Per block device: I/Os in progress.
pub const DISK_IO_NOW: Metric = gauge("node_disk_io_now", DEVICE, 1.0);

/// Per network interface (`/proc/net/dev`).
pub const NETWORK: [Metric; 8] = [
    counter("node_network_receive_bytes_total", DEVICE, 1.0),
    counter("node_network_receive_packets_total", DEVICE, 1.0),
    counter("node_network_receive_errs_total", DEVICE, 1.0),
    counter("node_network_receive_drop_total", DEVICE, 1.0),
    counter("node_network_transmit_bytes_total", DEVICE, 1.0),
    counter("node_network_transmit_packets_total", DEVICE, 1.0),
    counter("node_network_transmit_errs_total", DEVICE, 1.0),
    counter("node_network_transmit_drop_total", DEVICE, 1.0),
];

/// Kernel counters (`/proc/stat`): context switches, interrupts, forks.
pub const KERNEL: [Metric; 3] = [
    counter("node_context_switches_total", &[], 1.0),
    counter("node_intr_total", &[], 1.0),
    counter("node_forks_total", &[], 1.0),
];

/// Processes running and blocked, boot time and the host's clock.
pub const SYSTEM: [Metric; 4] = [
    gauge("node_procs_running", &[], 1.0),
    gauge("node_procs_blocked", &[], 1.0),
    gauge("node_boot_time_seconds", &[], 1.0),
    gauge("node_time_seconds", &[], 0.001),
];

/// A process group's process count.
pub const GROUP_PROCS: Metric = gauge("namedprocess_namegroup_num_procs", &["groupname"], 1.0);
/// A process group's CPU time by mode (`user`, `system`).
pub const GROUP_CPU: Metric = counter(
    "namedprocess_namegroup_cpu_seconds_total",
    &["groupname", "mode"],
    0.01,
);
/// A process group's memory by type (`resident`, `virtual`).
pub const GROUP_MEMORY: Metric = gauge(
    "namedprocess_namegroup_memory_bytes",
    &["groupname", "memtype"],
    PAGE,
);

/// Upper bounds of the HTTP latency histogram (the Prometheus client libraries' defaults
/// plus 10 s).
pub const LATENCY_BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The one application family: an HTTP server's request latency (the benchmark's
/// `histogram_quantile` query reads it).
pub const HTTP_DURATION: Metric = Metric {
    name: "http_request_duration_seconds",
    kind: Kind::Histogram(&LATENCY_BOUNDS),
    labels: &["handler", "method", "status"],
    round: 0.001,
};

/// Handlers of [`HTTP_DURATION`], busiest first.
pub const HTTP_HANDLERS: [&str; 6] = [
    "/",
    "/api/orders",
    "/api/users",
    "/api/search",
    "/login",
    "/static",
];
/// Methods of [`HTTP_DURATION`].
pub const HTTP_METHODS: [&str; 2] = ["GET", "POST"];
/// Statuses of [`HTTP_DURATION`]; the second is the error one.
pub const HTTP_STATUSES: [&str; 2] = ["200", "500"];
