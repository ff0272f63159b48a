//! The benchmark's data set: N alike hosts (`instance="host-0000:9100"`, …, `job="node"`)
//! sampled at a fixed interval, at load 1. Every host draws from its own generator seeded by
//! its index, so its values depend on nothing else and every receiver gets the same data.

use super::family::{series, Family};
use super::host::Node;
use super::spec::{Disk, Mount, Nic, Spec, GIB};
use crate::rng::Rng;

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

/// A benchmark host with `cpus` cores: 16 GiB of memory, four interfaces, five filesystems,
/// three disks and an HTTP server; no process group.
pub fn spec(cpus: usize) -> Spec {
    let mount = |device, mountpoint, fstype, size_gib: f64, used| Mount {
        device,
        mountpoint,
        fstype,
        size_bytes: size_gib * GIB,
        used,
        growth_per_s: if fstype == "tmpfs" { 0.0 } else { 2.0e-8 },
    };
    Spec {
        cpus,
        busy: 0.2,
        traffic_share: 0.3,
        iowait: 0.005,
        mem_bytes: 16.0 * GIB,
        mem_used: 0.45,
        mem_cached: 0.35,
        shmem_bytes: 0.2 * GIB,
        nics: vec![
            Nic {
                device: "eth0",
                rx_bytes_per_s: 250_000.0,
            },
            Nic {
                device: "eth1",
                rx_bytes_per_s: 125_000.0,
            },
            Nic {
                device: "lo",
                rx_bytes_per_s: 80_000.0,
            },
            Nic {
                device: "docker0",
                rx_bytes_per_s: 60_000.0,
            },
        ],
        mounts: vec![
            mount("/dev/sda1", "/", "ext4", 100.0, 0.4),
            mount("/dev/sda2", "/boot", "ext4", 1.0, 0.3),
            mount("/dev/sdb1", "/var/lib/postgresql", "xfs", 500.0, 0.55),
            mount("tmpfs", "/run", "tmpfs", 1.6, 0.001),
            mount("tmpfs", "/dev/shm", "tmpfs", 8.0, 0.01),
        ],
        disks: vec![
            Disk {
                device: "sda",
                intensity: 1.0,
            },
            Disk {
                device: "sdb",
                intensity: 0.5,
            },
            Disk {
                device: "nvme0n1",
                intensity: 0.33,
            },
        ],
        process_group: None,
        http_rps: Some(20.0),
    }
}

/// The evolving values of one host: call [`Dataset::step`] once per interval.
#[derive(Debug, Clone)]
pub struct HostState {
    rng: Rng,
    node: Node,
    /// Current value of every series of the host, in [`Dataset::host_series`] order.
    pub values: Vec<f64>,
}

/// The complete description of the data: hosts × families.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Shape of the data (hosts, interval, time span).
    pub shape: Shape,
    /// What every host is.
    pub spec: Spec,
    /// The families every host exposes, in value order.
    pub families: Vec<Family>,
    /// Series per host.
    pub per_host: usize,
}

impl Dataset {
    /// The data set for `shape`.
    pub fn new(shape: Shape) -> Self {
        let spec = spec(shape.cpus);
        let families = Node::families_of(&spec);
        let per_host = families.iter().map(Family::series_count).sum();
        Dataset {
            shape,
            spec,
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
        for s in series(&self.families) {
            let mut l: Vec<(String, String)> = Vec::with_capacity(s.labels.len() + 3);
            l.push(("__name__".into(), s.name));
            l.push(("instance".into(), instance.clone()));
            l.push(("job".into(), "node".into()));
            for (k, v) in s.labels {
                l.push((k.to_string(), v));
            }
            l[1..].sort();
            out.push(l);
        }
        out
    }

    /// The state of host `h` before its first sample (booted days before, from its own
    /// generator).
    pub fn host_state(&self, h: usize) -> HostState {
        let mut rng = Rng::new(h as u64 + 1);
        let node = Node::new(
            self.spec.clone(),
            &mut rng,
            self.shape.ts(0) - self.shape.interval_ms,
        );
        let mut values = Vec::with_capacity(self.per_host);
        node.values(&mut values);
        HostState { rng, node, values }
    }

    /// Advances `state` by one interval, to step number `k`.
    pub fn step(&self, state: &mut HostState, k: usize) {
        let dt = self.shape.interval_ms as f64 / 1000.0;
        state.node.step(&mut state.rng, dt, 1.0, self.shape.ts(k));
        state.node.values(&mut state.values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Dataset {
        Dataset::new(Shape {
            hosts: 2,
            cpus: 2,
            interval_ms: 15_000,
            start_ms: 0,
            steps: 10,
        })
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_counters_grow() {
        let d = small();
        let series = d.host_series(1);
        assert_eq!(series.len(), d.per_host);
        let mut s = d.host_state(1);
        assert_eq!(s.values.len(), d.per_host);
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
        assert!(series[first + 11].contains(&("le".to_string(), "+Inf".to_string())));
        assert_eq!(s.values[first + 11], s.values[first + 13], "+Inf bucket = count");
        assert_eq!(series[0][0].1, "node_cpu_seconds_total");
        assert!(s.values[0] > before[0]);
    }

    #[test]
    fn a_host_is_the_same_whatever_else_is_generated() {
        let d = small();
        let mut alone = d.host_state(1);
        let mut other = d.host_state(0);
        let mut again = d.host_state(1);
        for k in 0..5 {
            d.step(&mut alone, k);
            d.step(&mut other, k);
            d.step(&mut again, k);
        }
        assert_eq!(alone.values, again.values);
        assert_ne!(alone.values, other.values);
    }
}
