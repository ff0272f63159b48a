//! Node-exporter-like data: the series of N hosts and their values at a fixed interval.
//!
//! Every host exposes the same families (CPU, memory, load, network, filesystem, disk, a few
//! kernel counters and an HTTP latency histogram). Values are deterministic for a given host
//! index, so Didban and Prometheus receive byte-identical data. Counters grow by realistic,
//! slightly noisy increments and are rounded the way the real exporters round them (CPU
//! seconds to 1/100 s, bytes and packets to integers); gauges wobble around a base value.

use crate::rng::Rng;

/// The OTLP/Prometheus kind of one metric family.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Monotonic cumulative counter (Prometheus name ends in `_total`).
    Counter,
    /// Gauge.
    Gauge,
    /// Classic histogram with these upper bounds (without `+Inf`).
    Histogram(Vec<f64>),
}

/// One metric family of a host: a name and its label sets.
#[derive(Debug, Clone)]
pub struct Family {
    /// Prometheus name (for histograms, the base name without `_bucket`).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// One entry per instrument (for histograms: per label set, before `le`).
    pub label_sets: Vec<Vec<(&'static str, String)>>,
    /// Per label set: base rate (counters, per second), base value (gauges), or request rate
    /// (histograms, requests per second).
    pub bases: Vec<f64>,
    /// Per label set: rounding step of the value (0 = none).
    pub round: f64,
}

impl Family {
    /// Number of Prometheus series this family yields.
    pub fn series_count(&self) -> usize {
        match &self.kind {
            Kind::Histogram(b) => self.label_sets.len() * (b.len() + 3),
            _ => self.label_sets.len(),
        }
    }
}

/// Shape of the generated data set.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Number of hosts (`instance` label values).
    pub hosts: usize,
    /// CPUs per host (`node_cpu_seconds_total` has `8 × cpus` series per host).
    pub cpus: usize,
    /// Scrape interval in milliseconds.
    pub interval_ms: i64,
    /// Timestamp of the first sample (ms since the epoch).
    pub start_ms: i64,
    /// Number of samples per series.
    pub steps: usize,
}

impl Shape {
    /// Timestamp of step `k`.
    pub fn ts(&self, k: usize) -> i64 {
        self.start_ms + k as i64 * self.interval_ms
    }
}

const MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];
const MODE_SHARE: [f64; 8] = [0.80, 0.01, 0.002, 0.003, 0.01, 0.002, 0.05, 0.123];
const LATENCY_BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn ls(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// The families every host exposes, in a fixed order.
pub fn families(cpus: usize) -> Vec<Family> {
    let mut f = Vec::new();
    let mut cpu_sets = Vec::new();
    let mut cpu_bases = Vec::new();
    for c in 0..cpus {
        for (m, share) in MODES.iter().zip(MODE_SHARE) {
            cpu_sets.push(ls(&[("cpu", &c.to_string()), ("mode", m)]));
            cpu_bases.push(share);
        }
    }
    f.push(Family {
        name: "node_cpu_seconds_total",
        kind: Kind::Counter,
        label_sets: cpu_sets,
        bases: cpu_bases,
        round: 0.01,
    });
    let mem = [
        ("node_memory_MemTotal_bytes", 16.0e9),
        ("node_memory_MemFree_bytes", 2.1e9),
        ("node_memory_MemAvailable_bytes", 9.3e9),
        ("node_memory_Buffers_bytes", 0.4e9),
        ("node_memory_Cached_bytes", 6.2e9),
        ("node_memory_SwapTotal_bytes", 2.0e9),
        ("node_memory_SwapFree_bytes", 1.9e9),
        ("node_memory_Active_bytes", 7.1e9),
        ("node_memory_Inactive_bytes", 4.4e9),
        ("node_memory_Dirty_bytes", 2.0e6),
        ("node_memory_Slab_bytes", 0.5e9),
        ("node_memory_Shmem_bytes", 0.2e9),
    ];
    for (name, base) in mem {
        f.push(Family {
            name,
            kind: Kind::Gauge,
            label_sets: vec![vec![]],
            bases: vec![base],
            round: 4096.0,
        });
    }
    for (name, base) in [("node_load1", 0.8), ("node_load5", 0.7), ("node_load15", 0.6)] {
        f.push(Family {
            name,
            kind: Kind::Gauge,
            label_sets: vec![vec![]],
            bases: vec![base],
            round: 0.01,
        });
    }
    let devices = ["eth0", "eth1", "lo", "docker0"];
    let net = [
        ("node_network_receive_bytes_total", 250_000.0),
        ("node_network_transmit_bytes_total", 180_000.0),
        ("node_network_receive_packets_total", 400.0),
        ("node_network_transmit_packets_total", 350.0),
        ("node_network_receive_errs_total", 0.001),
        ("node_network_transmit_errs_total", 0.001),
        ("node_network_receive_drop_total", 0.01),
        ("node_network_transmit_drop_total", 0.005),
    ];
    for (name, rate) in net {
        let sets = devices.iter().map(|d| ls(&[("device", d)])).collect();
        let bases = (0..devices.len()).map(|i| rate / (1 + i) as f64).collect();
        f.push(Family {
            name,
            kind: Kind::Counter,
            label_sets: sets,
            bases,
            round: 1.0,
        });
    }
    let mounts = [
        ("/dev/sda1", "/", "ext4"),
        ("/dev/sda2", "/boot", "ext4"),
        ("/dev/sdb1", "/var/lib/postgresql", "xfs"),
        ("tmpfs", "/run", "tmpfs"),
        ("tmpfs", "/dev/shm", "tmpfs"),
    ];
    let fs = [
        ("node_filesystem_size_bytes", 100.0e9, 4096.0),
        ("node_filesystem_free_bytes", 40.0e9, 4096.0),
        ("node_filesystem_avail_bytes", 35.0e9, 4096.0),
        ("node_filesystem_files", 6.5e6, 1.0),
        ("node_filesystem_files_free", 5.9e6, 1.0),
    ];
    for (name, base, round) in fs {
        let sets = mounts
            .iter()
            .map(|(d, m, t)| ls(&[("device", d), ("fstype", t), ("mountpoint", m)]))
            .collect();
        let bases = (0..mounts.len()).map(|i| base / (1 + i) as f64).collect();
        f.push(Family {
            name,
            kind: Kind::Gauge,
            label_sets: sets,
            bases,
            round,
        });
    }
    let disks = ["sda", "sdb", "nvme0n1"];
    let disk = [
        ("node_disk_reads_completed_total", 20.0, 1.0),
        ("node_disk_writes_completed_total", 45.0, 1.0),
        ("node_disk_read_bytes_total", 300_000.0, 512.0),
        ("node_disk_written_bytes_total", 900_000.0, 512.0),
        ("node_disk_io_time_seconds_total", 0.05, 0.001),
    ];
    for (name, rate, round) in disk {
        let sets = disks.iter().map(|d| ls(&[("device", d)])).collect();
        let bases = (0..disks.len()).map(|i| rate / (1 + i) as f64).collect();
        f.push(Family {
            name,
            kind: Kind::Counter,
            label_sets: sets,
            bases,
            round,
        });
    }
    for (name, rate) in [
        ("node_context_switches_total", 3000.0),
        ("node_intr_total", 1500.0),
        ("node_forks_total", 5.0),
    ] {
        f.push(Family {
            name,
            kind: Kind::Counter,
            label_sets: vec![vec![]],
            bases: vec![rate],
            round: 1.0,
        });
    }
    for (name, base) in [("node_procs_running", 3.0), ("node_procs_blocked", 0.2)] {
        f.push(Family {
            name,
            kind: Kind::Gauge,
            label_sets: vec![vec![]],
            bases: vec![base],
            round: 1.0,
        });
    }
    let mut sets = Vec::new();
    let mut bases = Vec::new();
    for (hi, handler) in [
        "/",
        "/api/orders",
        "/api/users",
        "/api/search",
        "/login",
        "/static",
    ]
    .iter()
    .enumerate()
    {
        for method in ["GET", "POST"] {
            for status in ["200", "500"] {
                sets.push(ls(&[
                    ("handler", handler),
                    ("method", method),
                    ("status", status),
                ]));
                let err = if status == "500" { 0.01 } else { 1.0 };
                bases.push(20.0 / (1 + hi) as f64 * err);
            }
        }
    }
    f.push(Family {
        name: "http_request_duration_seconds",
        kind: Kind::Histogram(LATENCY_BOUNDS.to_vec()),
        label_sets: sets,
        bases,
        round: 0.0,
    });
    f
}

fn round_to(v: f64, step: f64) -> f64 {
    if step > 0.0 {
        (v / step).round() * step
    } else {
        v
    }
}

/// The evolving values of one host: call [`HostState::step`] once per interval.
#[derive(Debug, Clone)]
pub struct HostState {
    rng: Rng,
    /// Current value of every series of the host, in [`Dataset::host_series`] order.
    pub values: Vec<f64>,
    /// Unrounded counter state (so rounding does not swallow small increments).
    raw: Vec<f64>,
    phase: f64,
}

/// The complete description of the data: hosts × families.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Shape of the data (hosts, interval, time span).
    pub shape: Shape,
    /// The families every host exposes.
    pub families: Vec<Family>,
    /// Series per host.
    pub per_host: usize,
}

impl Dataset {
    /// The data set for `shape`.
    pub fn new(shape: Shape) -> Self {
        let families = families(shape.cpus);
        let per_host = families.iter().map(Family::series_count).sum();
        Dataset {
            shape,
            families,
            per_host,
        }
    }

    /// Total number of series.
    pub fn series(&self) -> usize {
        self.per_host * self.shape.hosts
    }

    /// Total number of (Prometheus) samples.
    pub fn samples(&self) -> u64 {
        self.series() as u64 * self.shape.steps as u64
    }

    /// Name of host `h` (the `instance` label).
    pub fn instance(h: usize) -> String {
        format!("host-{h:04}:9100")
    }

    /// Label sets of the series of host `h`, sorted by name within each series, in the order
    /// of [`HostState::values`]. `__name__` comes first.
    pub fn host_series(&self, h: usize) -> Vec<Vec<(String, String)>> {
        let instance = Self::instance(h);
        let mut out = Vec::with_capacity(self.per_host);
        let mut push = |name: String, extra: &[(&'static str, String)], le: Option<String>| {
            let mut l: Vec<(String, String)> = vec![
                ("__name__".into(), name),
                ("instance".into(), instance.clone()),
                ("job".into(), "node".into()),
            ];
            l.extend(extra.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
            if let Some(le) = le {
                l.push(("le".into(), le));
            }
            l[1..].sort();
            out.push(l);
        };
        for f in &self.families {
            for set in &f.label_sets {
                match &f.kind {
                    Kind::Histogram(bounds) => {
                        for b in bounds {
                            push(format!("{}_bucket", f.name), set, Some(format_le(*b)));
                        }
                        push(format!("{}_bucket", f.name), set, Some("+Inf".into()));
                        push(format!("{}_sum", f.name), set, None);
                        push(format!("{}_count", f.name), set, None);
                    }
                    _ => push(f.name.to_string(), set, None),
                }
            }
        }
        out
    }

    /// The state of host `h` before its first sample.
    pub fn host_state(&self, h: usize) -> HostState {
        let mut rng = Rng::new(h as u64 + 1);
        let mut values = Vec::with_capacity(self.per_host);
        for f in &self.families {
            for base in &f.bases {
                match &f.kind {
                    // Counters start at a host-specific uptime's worth of increments.
                    Kind::Counter => values.push(round_to(base * (1.0e5 + rng.f64() * 1.0e6), f.round)),
                    Kind::Gauge => values.push(round_to(*base, f.round)),
                    Kind::Histogram(bounds) => values.extend(std::iter::repeat_n(0.0, bounds.len() + 3)),
                }
            }
        }
        let raw = values.clone();
        HostState {
            rng,
            values,
            raw,
            phase: h as f64 * 0.37,
        }
    }

    /// Advances `state` by one interval (step number `k`).
    pub fn step(&self, state: &mut HostState, k: usize) {
        let dt = self.shape.interval_ms as f64 / 1000.0;
        let t = k as f64 * dt;
        let mut i = 0;
        for f in &self.families {
            for base in &f.bases {
                match &f.kind {
                    Kind::Counter => {
                        let inc = base * dt * (0.7 + 0.6 * state.rng.f64());
                        state.raw[i] += inc;
                        state.values[i] = round_to(state.raw[i], f.round);
                        i += 1;
                    }
                    Kind::Gauge if is_constant(f.name) => {
                        i += 1;
                    }
                    Kind::Gauge => {
                        let wobble = 0.05 * (t / 3600.0 * std::f64::consts::TAU + state.phase).sin()
                            + 0.01 * (state.rng.f64() - 0.5);
                        state.values[i] = round_to(base * (1.0 + wobble), f.round);
                        i += 1;
                    }
                    Kind::Histogram(bounds) => {
                        // Requests in this interval, latency ~ exponential with a per-set mean.
                        let n = (base * dt * (0.8 + 0.4 * state.rng.f64())).round();
                        let mean = 0.05 + 0.02 * (i % 7) as f64;
                        for (j, b) in bounds.iter().enumerate() {
                            let cdf = 1.0 - (-b / mean).exp();
                            state.values[i + j] += (n * cdf).floor();
                        }
                        state.values[i + bounds.len()] += n;
                        state.values[i + bounds.len() + 1] = round_to(
                            state.values[i + bounds.len() + 1] + n * mean * (0.9 + 0.2 * state.rng.f64()),
                            0.001,
                        );
                        state.values[i + bounds.len() + 2] += n;
                        i += bounds.len() + 3;
                    }
                }
            }
        }
    }
}

/// Gauges that do not change on a real host (capacities), kept at their base value.
fn is_constant(name: &str) -> bool {
    matches!(
        name,
        "node_memory_MemTotal_bytes"
            | "node_memory_SwapTotal_bytes"
            | "node_filesystem_size_bytes"
            | "node_filesystem_files"
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counters_grow() {
        let d = Dataset::new(Shape {
            hosts: 2,
            cpus: 2,
            interval_ms: 15_000,
            start_ms: 0,
            steps: 10,
        });
        let series = d.host_series(1);
        assert_eq!(series.len(), d.per_host);
        let mut s = d.host_state(1);
        let before = s.values.clone();
        for k in 0..10 {
            d.step(&mut s, k);
        }
        let first = series
            .iter()
            .position(|l| l[0].1 == "http_request_duration_seconds_bucket");
        let Some(first) = first else {
            panic!("no bucket series")
        };
        for j in 0..11 {
            assert!(s.values[first + j] <= s.values[first + j + 1]);
        }
        assert!(s.values[0] > before[0]);
    }
}
