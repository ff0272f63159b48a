//! The demo's hosts ([`HOSTS`]) as `didban-agent` sends their host metrics: the shared
//! generator ([`crate::node`]) with one [`Spec`] per host, busy time following the web
//! traffic and the database hosts' data volume filling with the database.

use didban_agent::model::Sample;

use crate::catalog::{Host, HOSTS};
use crate::node::{series, Disk, Mount, Nic, Node, ProcessGroup, Series, Spec, GIB};
use crate::rng::Rng;

/// Where the database hosts mount their data volume.
const DATA_MOUNT: &str = "/var/lib/postgresql";
/// Size of the data volume.
const DATA_VOLUME_BYTES: f64 = 500.0 * GIB;

/// A sample of `host` (its `instance` label, which the sender turns into the agent's
/// resource).
pub fn sample(host: &str, name: &str, labels: &[(&str, &str)], v: f64, t: i64, counter: bool) -> Sample {
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
    all.push(("instance", host));
    all.extend_from_slice(labels);
    if counter {
        Sample::counter(name, &all, v, t)
    } else {
        Sample::gauge(name, &all, v, t)
    }
}

/// What the demo's host `h` is: an NVMe root disk, `eth0`, `/run`, and on the database
/// hosts a data volume, more disk I/O and a larger page cache; its service's process group.
fn spec(h: &Host) -> Spec {
    let db = h.data_volume;
    let mut mounts = vec![Mount {
        device: "/dev/nvme0n1p1",
        mountpoint: "/",
        fstype: "ext4",
        size_bytes: 100.0 * GIB,
        used: 0.45,
        growth_per_s: 2.0e-8,
    }];
    let mut disks = vec![Disk {
        device: "nvme0n1",
        intensity: if db { 3.0 } else { 1.0 },
    }];
    if db {
        mounts.push(Mount {
            device: "/dev/nvme1n1",
            mountpoint: DATA_MOUNT,
            fstype: "xfs",
            size_bytes: DATA_VOLUME_BYTES,
            used: 0.58,
            growth_per_s: 0.0,
        });
        disks.push(Disk {
            device: "nvme1n1",
            intensity: 3.0,
        });
    }
    mounts.push(Mount {
        device: "tmpfs",
        mountpoint: "/run",
        fstype: "tmpfs",
        size_bytes: 1.6 * GIB,
        used: 0.001,
        growth_per_s: 0.0,
    });
    let web = h.name.starts_with("web");
    Spec {
        cpus: h.cpus,
        busy: h.busy,
        traffic_share: h.traffic_share,
        iowait: if db { 0.01 } else { 0.003 },
        mem_bytes: h.mem_gib * GIB,
        mem_used: if db { 0.35 } else { 0.45 },
        mem_cached: if db { 0.48 } else { 0.3 },
        shmem_bytes: if db { 8.0 * GIB } else { 0.2 * GIB },
        nics: vec![Nic {
            device: "eth0",
            rx_bytes_per_s: if web { 800_000.0 } else { 400_000.0 },
        }],
        mounts,
        disks,
        process_group: Some(process_group(h.name)),
        http_rps: None,
    }
}

/// The process group (`[[host.process_groups]]`) of a host's main service.
fn process_group(host: &str) -> ProcessGroup {
    let (name, procs, rss_mib) = match host {
        "web-1" | "web-2" => ("gunicorn", 9.0, 310.0),
        "worker-1" => ("celery", 5.0, 240.0),
        _ => ("postgres", 46.0, 95.0),
    };
    ProcessGroup { name, procs, rss_mib }
}

/// One demo host: its name, generator and series.
struct DemoHost {
    host: &'static Host,
    node: Node,
    series: Vec<Series>,
}

/// The demo's hosts.
pub struct Hosts {
    hosts: Vec<DemoHost>,
    values: Vec<f64>,
}

impl Hosts {
    /// Hosts booted a few days before `start_ms`, with counters to match.
    pub fn new(rng: &mut Rng, start_ms: f64) -> Hosts {
        let mut hosts = Vec::with_capacity(HOSTS.len());
        for host in HOSTS {
            let node = Node::new(spec(host), rng, start_ms as i64);
            let series = series(&node.families());
            hosts.push(DemoHost { host, node, series });
        }
        Hosts {
            hosts,
            values: Vec::new(),
        }
    }

    /// Boot time of `host` (Unix seconds; 0 for a host that is not one of the demo's).
    pub fn boot_s(&self, host: &str) -> f64 {
        for h in &self.hosts {
            if h.host.name == host {
                return h.node.boot_s();
            }
        }
        0.0
    }

    /// Every host's samples at `t` after `dt` seconds; `load` is the traffic (≈1) and
    /// `db_size` fills the database hosts' data volume.
    pub fn collect(
        &mut self,
        rng: &mut Rng,
        dt: f64,
        load: f64,
        db_size: f64,
        t: i64,
        out: &mut Vec<Sample>,
    ) {
        for h in &mut self.hosts {
            if h.host.data_volume {
                let used = (db_size / DATA_VOLUME_BYTES + 0.5).min(0.97);
                h.node.set_used(DATA_MOUNT, used);
            }
            h.node.step(rng, dt, load, t);
            h.node.values(&mut self.values);
            for (s, v) in h.series.iter().zip(&self.values) {
                let mut labels: Vec<(&str, &str)> = Vec::with_capacity(s.labels.len());
                for (k, l) in &s.labels {
                    labels.push((k, l.as_str()));
                }
                out.push(sample(h.host.name, &s.name, &labels, *v, t, s.counter));
            }
        }
    }
}
