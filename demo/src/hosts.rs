//! node_exporter-named host metrics of the demo's hosts, as `didban-agent` sends them:
//! CPU time per core and mode, load, memory, filesystems, disks, network, processes.
//! Busy time follows the web traffic; counters only go up.

use didban_agent::model::Sample;

use super::catalog::{Host, DB_HOST, DB_REPLICA, HOSTS};
use super::rng::Rng;

/// One GiB.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const CPU_MODES: &[&str] = &[
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// Per-host counter state.
struct HostState {
    cpu: Vec<[f64; 8]>,
    load: [f64; 3],
    disk: Vec<[f64; 8]>,
    net: [f64; 8],
    ctxt: f64,
    intr: f64,
    forks: f64,
    root_used: f64,
    data_used: f64,
    /// CPU seconds (user, system) of the host's main process group.
    group_cpu: [f64; 2],
}

/// The process group (`[[host.process_groups]]`) of a host's main service, its process
/// count and resident memory in MiB.
fn process_group(host: &str) -> (&'static str, f64, f64) {
    match host {
        "web-1" | "web-2" => ("gunicorn", 9.0, 310.0),
        "worker-1" => ("celery", 5.0, 240.0),
        _ => ("postgres", 46.0, 95.0),
    }
}

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

/// The hosts' counters.
pub struct Hosts {
    states: Vec<HostState>,
    /// Boot time of every host (Unix seconds).
    pub boot_s: f64,
}

impl Hosts {
    /// Hosts booted a few days before `start_ms`, with counters to match.
    pub fn new(rng: &mut Rng, start_ms: f64) -> Hosts {
        let mut hosts = Vec::new();
        for h in HOSTS {
            let uptime = rng.range(3.0, 9.0) * 86_400.0;
            let mut cpu = Vec::new();
            for _ in 0..h.cpus {
                let mut c = [0.0; 8];
                c[0] = uptime * h.busy * 0.7;
                c[2] = uptime * h.busy * 0.2;
                c[3] = uptime * (1.0 - h.busy);
                c[4] = uptime * 0.004;
                c[6] = uptime * h.busy * 0.05;
                cpu.push(c);
            }
            let disks = if h.data_volume { 2 } else { 1 };
            hosts.push(HostState {
                cpu,
                load: [h.busy * h.cpus as f64; 3],
                disk: vec![
                    [
                        uptime * 50.0,
                        uptime * 120_000.0,
                        uptime * 4.0,
                        uptime * 9.0,
                        uptime * 0.01,
                        uptime * 0.03,
                        uptime * 0.02,
                        uptime * 0.05
                    ];
                    disks
                ],
                net: [
                    uptime * 400_000.0,
                    uptime * 900.0,
                    0.0,
                    3.0,
                    uptime * 650_000.0,
                    uptime * 1100.0,
                    0.0,
                    0.0,
                ],
                ctxt: uptime * 2500.0,
                intr: uptime * 1800.0,
                forks: uptime * 3.0,
                root_used: rng.range(0.35, 0.55),
                data_used: 0.58,
                group_cpu: [uptime * h.busy * 0.5, uptime * h.busy * 0.1],
            });
        }
        Hosts {
            states: hosts,
            boot_s: start_ms / 1000.0 - 5.0 * 86_400.0,
        }
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
        for (i, h) in HOSTS.iter().enumerate() {
            self.host(rng, i, h, dt, load, db_size, t, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn host(
        &mut self,
        rng: &mut Rng,
        i: usize,
        h: &Host,
        dt: f64,
        load: f64,
        db_size: f64,
        t: i64,
        out: &mut Vec<Sample>,
    ) {
        let name = h.name;
        let boot = self.boot_s;
        let Some(st) = self.states.get_mut(i) else {
            return;
        };
        let busy_target =
            (h.busy + h.traffic_share * (load - 1.0) + rng.range(-0.03, 0.03)).clamp(0.02, 0.97);
        let mut busy_sum = 0.0;
        for (c, counters) in st.cpu.iter_mut().enumerate() {
            let busy = (busy_target * rng.range(0.8, 1.2)).clamp(0.01, 0.99);
            busy_sum += busy;
            let iowait = if h.data_volume { 0.01 } else { 0.003 } * dt;
            let user = dt * busy * 0.72;
            let system = dt * busy * 0.2;
            let softirq = dt * busy * 0.05;
            let irq = dt * busy * 0.01;
            let idle = (dt - user - system - softirq - irq - iowait).max(0.0);
            let add = [user, 0.0, system, idle, iowait, irq, softirq, 0.0];
            for m in 0..8 {
                counters[m] += add[m];
                let cpu = c.to_string();
                out.push(sample(
                    name,
                    "node_cpu_seconds_total",
                    &[("cpu", &cpu), ("mode", CPU_MODES[m])],
                    counters[m],
                    t,
                    true,
                ));
            }
        }
        let running = busy_sum + rng.range(0.0, 0.4);
        let alphas = [0.08, 0.0165, 0.0055];
        for (k, a) in alphas.iter().enumerate() {
            st.load[k] += (running - st.load[k]) * (1.0 - (1.0f64 - a).powf(dt / 5.0));
        }
        out.push(sample(name, "node_load1", &[], st.load[0], t, false));
        out.push(sample(name, "node_load5", &[], st.load[1], t, false));
        out.push(sample(name, "node_load15", &[], st.load[2], t, false));

        let total = h.mem_gib * GIB;
        let used_share = if name == DB_HOST || name == DB_REPLICA {
            0.35
        } else {
            0.45
        } + 0.05 * (load - 1.0)
            + rng.range(-0.01, 0.01);
        let cached = total * if name.starts_with("db") { 0.48 } else { 0.3 };
        let buffers = total * 0.02;
        let free = (total * (1.0 - used_share) - cached - buffers).max(total * 0.02);
        let available = free + cached * 0.9 + buffers;
        for (field, v) in [
            ("MemTotal", total),
            ("MemFree", free),
            ("MemAvailable", available),
            ("Buffers", buffers),
            ("Cached", cached),
            ("Active", total * used_share * 0.7 + cached * 0.4),
            ("Inactive", cached * 0.5),
            ("Dirty", rng.range(1.0, 40.0) * 1024.0 * 1024.0),
            (
                "Shmem",
                if name.starts_with("db") {
                    8.0 * GIB
                } else {
                    0.2 * GIB
                },
            ),
            ("Slab", 0.6 * GIB),
            ("SwapTotal", 2.0 * GIB),
            ("SwapFree", 1.96 * GIB),
        ] {
            out.push(sample(
                name,
                &format!("node_memory_{field}_bytes"),
                &[],
                v,
                t,
                false,
            ));
        }

        st.root_used = (st.root_used + dt * 2.0e-8).min(0.95);
        let mut filesystems = vec![("/dev/nvme0n1p1", "/", "ext4", 100.0 * GIB, st.root_used)];
        if h.data_volume {
            st.data_used = (db_size / (500.0 * GIB) + 0.5).min(0.97);
            filesystems.push((
                "/dev/nvme1n1",
                "/var/lib/postgresql",
                "xfs",
                500.0 * GIB,
                st.data_used,
            ));
        }
        filesystems.push(("tmpfs", "/run", "tmpfs", 1.6 * GIB, 0.001));
        for (device, mount, fstype, size, used) in filesystems {
            let labels = [("device", device), ("mountpoint", mount), ("fstype", fstype)];
            let free = size * (1.0 - used);
            out.push(sample(
                name,
                "node_filesystem_size_bytes",
                &labels,
                size,
                t,
                false,
            ));
            out.push(sample(
                name,
                "node_filesystem_free_bytes",
                &labels,
                free,
                t,
                false,
            ));
            out.push(sample(
                name,
                "node_filesystem_avail_bytes",
                &labels,
                (free - size * 0.05).max(0.0),
                t,
                false,
            ));
            out.push(sample(
                name,
                "node_filesystem_files",
                &labels,
                6_553_600.0,
                t,
                false,
            ));
            out.push(sample(
                name,
                "node_filesystem_files_free",
                &labels,
                6_553_600.0 * (1.0 - used * 0.3),
                t,
                false,
            ));
            out.push(sample(name, "node_filesystem_readonly", &labels, 0.0, t, false));
            out.push(sample(
                name,
                "node_filesystem_device_error",
                &labels,
                0.0,
                t,
                false,
            ));
        }

        let intensity = if h.data_volume { 3.0 } else { 1.0 } * load;
        for (d, counters) in st.disk.iter_mut().enumerate() {
            let device = if d == 0 { "nvme0n1" } else { "nvme1n1" };
            let reads = dt * intensity * rng.range(2.0, 6.0);
            let writes = dt * intensity * rng.range(8.0, 20.0);
            let add = [
                reads * 16_384.0,
                writes * 12_288.0,
                reads,
                writes,
                reads * 0.0002,
                writes * 0.0004,
                (reads + writes) * 0.00025,
                (reads + writes) * 0.0005,
            ];
            for (total, a) in counters.iter_mut().zip(add) {
                *total += a;
            }
            let names = [
                "node_disk_read_bytes_total",
                "node_disk_written_bytes_total",
                "node_disk_reads_completed_total",
                "node_disk_writes_completed_total",
                "node_disk_read_time_seconds_total",
                "node_disk_write_time_seconds_total",
                "node_disk_io_time_seconds_total",
                "node_disk_io_time_weighted_seconds_total",
            ];
            for (metric, v) in names.iter().zip(counters.iter()) {
                out.push(sample(name, metric, &[("device", device)], *v, t, true));
            }
            out.push(sample(
                name,
                "node_disk_io_now",
                &[("device", device)],
                rng.poisson(0.3 * intensity) as f64,
                t,
                false,
            ));
        }

        let rx =
            dt * load * rng.range(300_000.0, 500_000.0) * if name.starts_with("web") { 2.0 } else { 1.0 };
        let tx = rx * rng.range(1.4, 2.2);
        let add = [
            rx,
            rx / 900.0,
            0.0,
            if rng.chance(0.02) { 1.0 } else { 0.0 },
            tx,
            tx / 1100.0,
            0.0,
            0.0,
        ];
        for (total, a) in st.net.iter_mut().zip(add) {
            *total += a;
        }
        let names = [
            "node_network_receive_bytes_total",
            "node_network_receive_packets_total",
            "node_network_receive_errs_total",
            "node_network_receive_drop_total",
            "node_network_transmit_bytes_total",
            "node_network_transmit_packets_total",
            "node_network_transmit_errs_total",
            "node_network_transmit_drop_total",
        ];
        for (metric, v) in names.iter().zip(st.net) {
            out.push(sample(name, metric, &[("device", "eth0")], v, t, true));
        }

        st.ctxt += dt * (1500.0 + 4000.0 * busy_target) * h.cpus as f64;
        st.intr += dt * (1200.0 + 2000.0 * busy_target) * h.cpus as f64;
        st.forks += dt * rng.range(1.0, 5.0);
        out.push(sample(name, "node_context_switches_total", &[], st.ctxt, t, true));
        out.push(sample(name, "node_intr_total", &[], st.intr, t, true));
        out.push(sample(name, "node_forks_total", &[], st.forks, t, true));
        out.push(sample(
            name,
            "node_procs_running",
            &[],
            (running.round() + 1.0).max(1.0),
            t,
            false,
        ));
        out.push(sample(
            name,
            "node_procs_blocked",
            &[],
            rng.poisson(0.05) as f64,
            t,
            false,
        ));
        out.push(sample(
            name,
            "node_boot_time_seconds",
            &[],
            boot.round(),
            t,
            false,
        ));
        out.push(sample(
            name,
            "node_time_seconds",
            &[],
            t as f64 / 1000.0,
            t,
            false,
        ));
        let (group, procs, rss_mib) = process_group(name);
        let group_busy = dt * busy_sum * 0.7;
        st.group_cpu[0] += group_busy * 0.8;
        st.group_cpu[1] += group_busy * 0.2;
        let g = [("groupname", group)];
        out.push(sample(
            name,
            "namedprocess_namegroup_num_procs",
            &g,
            procs,
            t,
            false,
        ));
        for (mode, v) in [("user", st.group_cpu[0]), ("system", st.group_cpu[1])] {
            let labels = [("groupname", group), ("mode", mode)];
            out.push(sample(
                name,
                "namedprocess_namegroup_cpu_seconds_total",
                &labels,
                v,
                t,
                true,
            ));
        }
        let rss = procs * rss_mib * 1024.0 * 1024.0 * rng.range(0.97, 1.03);
        for (memtype, v) in [("resident", rss), ("virtual", rss * 3.2)] {
            let labels = [("groupname", group), ("memtype", memtype)];
            out.push(sample(
                name,
                "namedprocess_namegroup_memory_bytes",
                &labels,
                v.round(),
                t,
                false,
            ));
        }
    }
}
