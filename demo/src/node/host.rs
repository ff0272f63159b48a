//! The evolving values of one simulated host.
//!
//! Counters grow by what the elapsed time, the busy share and the load factor imply, with
//! noise from the caller's random generator; gauges are recomputed at every step. Values
//! are kept unrounded (so rounding does not swallow small increments) and rounded to the
//! catalogue's step when they are read.

use super::catalog::{
    Metric, CPU_MODES, CPU_SECONDS, DISK, DISK_IO_NOW, FILESYSTEM, GROUP_CPU, GROUP_MEMORY, GROUP_PROCS,
    HTTP_DURATION, HTTP_HANDLERS, HTTP_METHODS, HTTP_STATUSES, KERNEL, LATENCY_BOUNDS, LOAD, MEMORY, NETWORK,
    SYSTEM,
};
use super::family::{round_to, Family};
use super::spec::{Spec, GIB, MIB};
use crate::rng::Rng;

/// Where a walk over a host's series goes.
enum Walk<'a> {
    /// The families and their label sets.
    Layout(&'a mut Vec<Family>),
    /// The rounded values.
    Values(&'a mut Vec<f64>),
}

impl Walk<'_> {
    /// One instrument of `m` with the label values `labels` (in `m.labels` order) and its
    /// values (one, or a histogram's buckets, `+Inf`, sum and count).
    fn put(&mut self, m: &Metric, labels: &[&str], values: &[f64]) {
        match self {
            Walk::Layout(families) => {
                let mut set = Vec::with_capacity(labels.len());
                for (name, value) in m.labels.iter().zip(labels) {
                    set.push((*name, (*value).to_string()));
                }
                match families.last_mut() {
                    Some(f) if f.metric.name == m.name => f.label_sets.push(set),
                    _ => {
                        debug_assert!(
                            families.iter().all(|f| f.metric.name != m.name),
                            "{} is walked in two places",
                            m.name
                        );
                        families.push(Family {
                            metric: *m,
                            label_sets: vec![set],
                        });
                    }
                }
            }
            Walk::Values(out) => {
                for v in values {
                    out.push(round_to(*v, m.round));
                }
            }
        }
    }
}

/// Adds `by` to `counters`, element by element.
fn grow(counters: &mut [f64], by: &[f64]) {
    for (c, b) in counters.iter_mut().zip(by) {
        *c += b;
    }
}

/// One host: its [`Spec`] and the current value of every series.
#[derive(Debug, Clone)]
pub struct Node {
    spec: Spec,
    cpu_names: Vec<String>,
    boot_s: f64,
    /// Per core, seconds per mode in [`CPU_MODES`] order.
    cpu: Vec<[f64; 8]>,
    load: [f64; 3],
    mem: [f64; 12],
    /// Per mount, the used share.
    used: Vec<f64>,
    /// Per mount, the values of [`FILESYSTEM`].
    fs: Vec<[f64; 7]>,
    /// Per disk, the values of [`DISK`], and of [`DISK_IO_NOW`].
    disk: Vec<[f64; 8]>,
    io_now: Vec<f64>,
    /// Per interface, the values of [`NETWORK`].
    net: Vec<[f64; 8]>,
    /// The values of [`KERNEL`] and [`SYSTEM`].
    kernel: [f64; 3],
    system: [f64; 4],
    /// The process group's CPU seconds (user, system) and memory (resident, virtual).
    group: [f64; 4],
    /// Per label set of [`HTTP_DURATION`]: buckets, `+Inf`, sum, count.
    http: Vec<Vec<f64>>,
}

impl Node {
    /// A host at `start_ms` that booted a few days before (drawn from `rng`), its counters
    /// grown over that uptime.
    pub fn new(spec: Spec, rng: &mut Rng, start_ms: i64) -> Node {
        let mut node = Node::zero(spec);
        for u in node.used.iter_mut() {
            *u *= rng.range(0.8, 1.2);
        }
        let uptime = rng.range(3.0, 9.0) * 86_400.0;
        node.boot_s = (start_ms as f64 / 1000.0 - uptime).round();
        node.step(rng, uptime, 1.0, start_ms);
        node
    }

    /// A host with every counter at zero, before any step.
    fn zero(spec: Spec) -> Node {
        let mounts = spec.mounts.len();
        let disks = spec.disks.len();
        let mut cpu_names = Vec::with_capacity(spec.cpus);
        for c in 0..spec.cpus {
            cpu_names.push(c.to_string());
        }
        let mut used = Vec::with_capacity(mounts);
        for m in &spec.mounts {
            used.push(m.used);
        }
        let sets = if spec.http_rps.is_some() {
            HTTP_HANDLERS.len() * HTTP_METHODS.len() * HTTP_STATUSES.len()
        } else {
            0
        };
        Node {
            cpu: vec![[0.0; 8]; spec.cpus],
            cpu_names,
            boot_s: 0.0,
            load: [spec.busy * spec.cpus as f64; 3],
            mem: [0.0; 12],
            used,
            fs: vec![[0.0; 7]; mounts],
            disk: vec![[0.0; 8]; disks],
            io_now: vec![0.0; disks],
            net: vec![[0.0; 8]; spec.nics.len()],
            kernel: [0.0; 3],
            system: [0.0; 4],
            group: [0.0; 4],
            http: vec![vec![0.0; LATENCY_BOUNDS.len() + 3]; sets],
            spec,
        }
    }

    /// The families of a host of `spec`, in value order (no random numbers drawn).
    pub fn families_of(spec: &Spec) -> Vec<Family> {
        Node::zero(spec.clone()).families()
    }

    /// This host's families, in value order.
    pub fn families(&self) -> Vec<Family> {
        let mut out = Vec::new();
        self.walk(&mut Walk::Layout(&mut out));
        out
    }

    /// Replaces `out` with the current values, rounded, in the order of [`Node::families`].
    pub fn values(&self, out: &mut Vec<f64>) {
        out.clear();
        self.walk(&mut Walk::Values(out));
    }

    /// Boot time (Unix seconds).
    pub fn boot_s(&self) -> f64 {
        self.boot_s
    }

    /// Sets the used share of the filesystem mounted at `mountpoint` (one that something
    /// else fills, such as a database's data volume).
    pub fn set_used(&mut self, mountpoint: &str, share: f64) {
        for (m, u) in self.spec.mounts.iter().zip(self.used.iter_mut()) {
            if m.mountpoint == mountpoint {
                *u = share.clamp(0.0, 1.0);
            }
        }
    }

    /// Advances the host by `dt` seconds under `load` (1 = usual; the busy share, memory,
    /// disk, network and HTTP traffic follow it), ending at `t_ms`.
    pub fn step(&mut self, rng: &mut Rng, dt: f64, load: f64, t_ms: i64) {
        let target = (self.spec.busy + self.spec.traffic_share * (load - 1.0) + rng.range(-0.03, 0.03))
            .clamp(0.02, 0.97);
        let busy_sum = self.cpu_step(rng, dt, target);
        let running = busy_sum + rng.range(0.0, 0.4);
        // Damped like the kernel's averages over 1, 5 and 15 minutes (5 s ticks).
        let alphas = [0.08, 0.0165, 0.0055];
        for (l, a) in self.load.iter_mut().zip(alphas) {
            *l += (running - *l) * (1.0 - (1.0f64 - a).powf(dt / 5.0));
        }
        self.memory(rng, load);
        self.filesystems(dt);
        self.disks(rng, dt, load);
        self.network(rng, dt, load);
        let cpus = self.spec.cpus as f64;
        self.kernel[0] += dt * (1500.0 + 4000.0 * target) * cpus;
        self.kernel[1] += dt * (1200.0 + 2000.0 * target) * cpus;
        self.kernel[2] += dt * rng.range(1.0, 5.0);
        self.system = [
            (running.round() + 1.0).max(1.0),
            rng.poisson(0.05) as f64,
            self.boot_s,
            t_ms as f64 / 1000.0,
        ];
        if let Some(g) = &self.spec.process_group {
            let group_busy = dt * busy_sum * 0.7;
            self.group[0] += group_busy * 0.8;
            self.group[1] += group_busy * 0.2;
            self.group[2] = g.procs * g.rss_mib * MIB * rng.range(0.97, 1.03);
            self.group[3] = self.group[2] * 3.2;
        }
        if let Some(rps) = self.spec.http_rps {
            self.http_step(rng, dt, rps * load);
        }
    }

    /// CPU seconds of every core; returns the sum of the cores' busy shares.
    fn cpu_step(&mut self, rng: &mut Rng, dt: f64, target: f64) -> f64 {
        let mut busy_sum = 0.0;
        for counters in self.cpu.iter_mut() {
            let busy = (target * rng.range(0.8, 1.2)).clamp(0.01, 0.99);
            busy_sum += busy;
            let user = dt * busy * 0.71;
            let nice = dt * busy * 0.01;
            let system = dt * busy * 0.2;
            let iowait = dt * self.spec.iowait;
            let irq = dt * busy * 0.01;
            let softirq = dt * busy * 0.05;
            let idle = (dt - user - nice - system - iowait - irq - softirq).max(0.0);
            let add = [user, nice, system, idle, iowait, irq, softirq, 0.0];
            grow(counters, &add);
        }
        busy_sum
    }

    fn memory(&mut self, rng: &mut Rng, load: f64) {
        let s = &self.spec;
        let total = s.mem_bytes;
        let used = s.mem_used + 0.05 * (load - 1.0) + rng.range(-0.01, 0.01);
        let cached = total * s.mem_cached;
        let buffers = total * 0.02;
        let free = (total * (1.0 - used) - cached - buffers).max(total * 0.02);
        self.mem = [
            total,
            free,
            free + cached * 0.9 + buffers,
            buffers,
            cached,
            total * used * 0.7 + cached * 0.4,
            cached * 0.5,
            rng.range(1.0, 40.0) * MIB,
            s.shmem_bytes,
            0.6 * GIB,
            2.0 * GIB,
            1.96 * GIB,
        ];
    }

    fn filesystems(&mut self, dt: f64) {
        let parts = self
            .spec
            .mounts
            .iter()
            .zip(self.used.iter_mut())
            .zip(self.fs.iter_mut());
        for ((m, used), fs) in parts {
            // Growth stops at 95 % (what is set fuller by [`Node::set_used`] stays so).
            if *used < 0.95 {
                *used = (*used + m.growth_per_s * dt).min(0.95);
            }
            let free = m.size_bytes * (1.0 - *used);
            // One inode per 16 KiB, as mkfs.ext4 makes them.
            let files = (m.size_bytes / 16_384.0).round();
            *fs = [
                m.size_bytes,
                free,
                (free - m.size_bytes * 0.05).max(0.0),
                files,
                files * (1.0 - *used * 0.3),
                0.0,
                0.0,
            ];
        }
    }

    fn disks(&mut self, rng: &mut Rng, dt: f64, load: f64) {
        let parts = self
            .spec
            .disks
            .iter()
            .zip(self.disk.iter_mut())
            .zip(self.io_now.iter_mut());
        for ((d, counters), now) in parts {
            let intensity = d.intensity * load;
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
            grow(counters, &add);
            *now = rng.poisson(0.3 * intensity) as f64;
        }
    }

    fn network(&mut self, rng: &mut Rng, dt: f64, load: f64) {
        for (nic, counters) in self.spec.nics.iter().zip(self.net.iter_mut()) {
            let rx = dt * load * nic.rx_bytes_per_s * rng.range(0.75, 1.25);
            let tx = rx * rng.range(1.4, 2.2);
            let add = [
                rx,
                rx / 900.0,
                rng.poisson(dt * 0.0001) as f64,
                rng.poisson(dt * 0.002) as f64,
                tx,
                tx / 1100.0,
                rng.poisson(dt * 0.0001) as f64,
                rng.poisson(dt * 0.0005) as f64,
            ];
            grow(counters, &add);
        }
    }

    /// Requests of `dt` seconds, `rps` for the busiest handler; latency about exponential
    /// with a mean per label set.
    fn http_step(&mut self, rng: &mut Rng, dt: f64, rps: f64) {
        let nb = LATENCY_BOUNDS.len();
        let mut i = 0;
        for hi in 0..HTTP_HANDLERS.len() {
            for _method in HTTP_METHODS {
                for (si, _status) in HTTP_STATUSES.iter().enumerate() {
                    let share = if si == 0 { 1.0 } else { 0.01 };
                    let n = (rps / (1 + hi) as f64 * share * dt * rng.range(0.8, 1.2)).round();
                    let mean = 0.05 + 0.02 * (i % 7) as f64;
                    let h = &mut self.http[i];
                    for (j, b) in LATENCY_BOUNDS.iter().enumerate() {
                        h[j] += (n * (1.0 - (-b / mean).exp())).floor();
                    }
                    h[nb] += n;
                    h[nb + 1] += n * mean * rng.range(0.9, 1.1);
                    h[nb + 2] += n;
                    i += 1;
                }
            }
        }
    }

    /// Every series in one fixed order, family by family.
    fn walk(&self, out: &mut Walk) {
        for (cpu, counters) in self.cpu_names.iter().zip(&self.cpu) {
            for (mode, v) in CPU_MODES.iter().zip(counters) {
                out.put(&CPU_SECONDS, &[cpu, mode], &[*v]);
            }
        }
        for (m, v) in LOAD.iter().zip(self.load) {
            out.put(m, &[], &[v]);
        }
        for (m, v) in MEMORY.iter().zip(self.mem) {
            out.put(m, &[], &[v]);
        }
        for (k, metric) in FILESYSTEM.iter().enumerate() {
            for (m, fs) in self.spec.mounts.iter().zip(&self.fs) {
                out.put(metric, &[m.device, m.fstype, m.mountpoint], &[fs[k]]);
            }
        }
        for (k, metric) in DISK.iter().enumerate() {
            for (d, counters) in self.spec.disks.iter().zip(&self.disk) {
                out.put(metric, &[d.device], &[counters[k]]);
            }
        }
        for (d, v) in self.spec.disks.iter().zip(&self.io_now) {
            out.put(&DISK_IO_NOW, &[d.device], &[*v]);
        }
        for (k, metric) in NETWORK.iter().enumerate() {
            for (nic, counters) in self.spec.nics.iter().zip(&self.net) {
                out.put(metric, &[nic.device], &[counters[k]]);
            }
        }
        for (m, v) in KERNEL.iter().zip(self.kernel) {
            out.put(m, &[], &[v]);
        }
        for (m, v) in SYSTEM.iter().zip(self.system) {
            out.put(m, &[], &[v]);
        }
        if let Some(g) = &self.spec.process_group {
            out.put(&GROUP_PROCS, &[g.name], &[g.procs]);
            out.put(&GROUP_CPU, &[g.name, "user"], &[self.group[0]]);
            out.put(&GROUP_CPU, &[g.name, "system"], &[self.group[1]]);
            out.put(&GROUP_MEMORY, &[g.name, "resident"], &[self.group[2]]);
            out.put(&GROUP_MEMORY, &[g.name, "virtual"], &[self.group[3]]);
        }
        let mut sets = self.http.iter();
        for handler in HTTP_HANDLERS {
            for method in HTTP_METHODS {
                for status in HTTP_STATUSES {
                    if let Some(h) = sets.next() {
                        out.put(&HTTP_DURATION, &[handler, method, status], h);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{dataset, series, ProcessGroup};

    /// Non-idle CPU seconds of every core after `steps` steps of 10 s under `load`.
    fn busy_seconds(spec: &Spec, load: f64, steps: usize) -> f64 {
        let mut rng = Rng::new(9);
        let mut node = Node::new(spec.clone(), &mut rng, 0);
        let mut v = Vec::new();
        node.values(&mut v);
        let before = v.clone();
        for k in 1..=steps {
            node.step(&mut rng, 10.0, load, k as i64 * 10_000);
        }
        node.values(&mut v);
        let mut busy = 0.0;
        for (i, (a, b)) in before.iter().zip(&v).take(spec.cpus * 8).enumerate() {
            if CPU_MODES[i % 8] != "idle" {
                busy += b - a;
            }
        }
        busy
    }

    #[test]
    fn values_line_up_with_families_and_come_rounded() {
        let mut spec = dataset::spec(2);
        spec.process_group = Some(ProcessGroup {
            name: "gunicorn",
            procs: 4.0,
            rss_mib: 100.0,
        });
        let mut rng = Rng::new(1);
        let mut node = Node::new(spec.clone(), &mut rng, 0);
        node.step(&mut rng, 10.0, 1.3, 10_000);
        let families = node.families();
        assert_eq!(families.len(), Node::families_of(&spec).len());
        let mut v = Vec::new();
        node.values(&mut v);
        let names = series(&families);
        assert_eq!(names.len(), v.len());
        for (s, value) in names.iter().zip(&v) {
            if s.name == "node_cpu_seconds_total" {
                assert_eq!((value * 100.0).round() / 100.0, *value, "{s:?}");
            }
            if s.name == "node_memory_MemFree_bytes" {
                assert_eq!(value % 1024.0, 0.0);
            }
            if s.name == "namedprocess_namegroup_num_procs" {
                assert_eq!(*value, 4.0);
            }
        }
    }

    #[test]
    fn busy_time_follows_the_load() {
        let spec = dataset::spec(4);
        let usual = busy_seconds(&spec, 1.0, 30);
        let busy = busy_seconds(&spec, 2.0, 30);
        assert!(busy > usual * 1.5, "busy {busy} vs usual {usual}");
    }
}
