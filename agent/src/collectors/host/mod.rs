//! The host collector: CPU, load, memory, filesystems, disks, network, processes, named like
//! node_exporter (`node_*`) and process-exporter (`namedprocess_namegroup_*`), so existing
//! dashboards and rule packs apply. Reads `/proc` like node_exporter does; sysinfo lists
//! processes and gives the host name.

pub mod process;
pub mod procfs;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use regex::Regex;
use sysinfo::System;

use crate::collectors::Collector;
use crate::config::HostConfig;
use crate::error::CollectError;
use crate::model::Sample;
use didban_base::now_ms;
use process::{collect_groups, compile_groups, CpuHistory, ProcessGroup};
use procfs::{CPU_MODES, NET_COLUMNS};

/// The system's host name (sysinfo), or `localhost` if it cannot be read.
pub fn system_host_name() -> String {
    match System::host_name() {
        Ok(name) if !name.is_empty() => name,
        _ => "localhost".to_string(),
    }
}

struct Inner {
    proc_path: PathBuf,
    exclude_fstypes: Regex,
    exclude_mountpoints: Regex,
    exclude_disks: Regex,
    exclude_net: Option<Regex>,
    groups: Vec<ProcessGroup>,
    system: Option<System>,
    history: CpuHistory,
    ticks_per_second: f64,
}

/// Collects host metrics from `/proc` (and statvfs for filesystem sizes).
pub struct HostCollector {
    inner: Arc<Mutex<Inner>>,
}

fn whole(pattern: &str) -> Result<Regex, CollectError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| CollectError::Target {
        target: "host".into(),
        why: e.to_string(),
    })
}

impl HostCollector {
    /// Builds the collector; fails only on an invalid regex in the config.
    pub fn new(config: &HostConfig) -> Result<HostCollector, CollectError> {
        let exclude_mountpoints =
            Regex::new(&config.filesystem_exclude_mountpoints).map_err(|e| CollectError::Target {
                target: "host".into(),
                why: e.to_string(),
            })?;
        let exclude_net = if config.network_exclude_devices.is_empty() {
            None
        } else {
            Some(whole(&config.network_exclude_devices)?)
        };
        let groups = compile_groups(&config.process_groups);
        let system = if groups.is_empty() {
            None
        } else {
            System::new().ok()
        };
        let ticks = rustix::param::clock_ticks_per_second();
        let inner = Inner {
            proc_path: config.proc_path.clone(),
            exclude_fstypes: whole(&config.filesystem_exclude_fstypes)?,
            exclude_mountpoints,
            exclude_disks: whole(&config.disk_exclude_devices)?,
            exclude_net,
            groups,
            system,
            history: CpuHistory::default(),
            ticks_per_second: if ticks == 0 { 100.0 } else { ticks as f64 },
        };
        Ok(HostCollector {
            inner: Arc::new(Mutex::new(inner)),
        })
    }
}

impl Collector for HostCollector {
    fn name(&self) -> String {
        "host".to_string()
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let joined = tokio::task::spawn_blocking(move || {
                let mut guard = match inner.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                guard.collect()
            })
            .await;
            match joined {
                Ok(r) => r,
                Err(e) => Err(CollectError::Target {
                    target: "host".into(),
                    why: e.to_string(),
                }),
            }
        })
    }
}

fn read(path: &Path) -> Result<String, CollectError> {
    std::fs::read_to_string(path).map_err(|e| CollectError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

impl Inner {
    fn collect(&mut self) -> Result<Vec<Sample>, CollectError> {
        let now = now_ms();
        let mut out = Vec::with_capacity(512);
        // /proc/stat is the one file every host has; its absence fails the collection.
        let stat = procfs::parse_stat(&read(&self.proc_path.join("stat"))?);
        for (cpu, ticks) in &stat.cpus {
            for (mode, t) in CPU_MODES.iter().zip(ticks.iter()) {
                let labels = [("cpu", cpu.as_str()), ("mode", *mode)];
                out.push(Sample::counter(
                    "node_cpu_seconds_total",
                    &labels,
                    *t as f64 / self.ticks_per_second,
                    now,
                ));
            }
        }
        let single = [
            ("node_context_switches_total", stat.context_switches, true),
            ("node_intr_total", stat.interrupts, true),
            ("node_forks_total", stat.forks, true),
            ("node_boot_time_seconds", stat.boot_time, false),
            ("node_procs_running", stat.procs_running, false),
            ("node_procs_blocked", stat.procs_blocked, false),
        ];
        for (name, value, counter) in single {
            if let Some(v) = value {
                if counter {
                    out.push(Sample::counter(name, &[], v as f64, now));
                } else {
                    out.push(Sample::gauge(name, &[], v as f64, now));
                }
            }
        }
        out.push(Sample::gauge("node_time_seconds", &[], now as f64 / 1000.0, now));
        self.collect_optional(now, &mut out);
        if let Some(system) = self.system.as_mut() {
            out.extend(collect_groups(
                &mut self.history,
                system,
                &self.groups,
                &self.proc_path,
                self.ticks_per_second,
                now,
            ));
        }
        Ok(out)
    }

    /// Sources that may be missing in a container; each is skipped quietly when unreadable.
    fn collect_optional(&self, now: i64, out: &mut Vec<Sample>) {
        if let Some([l1, l5, l15]) = read(&self.proc_path.join("loadavg"))
            .ok()
            .as_deref()
            .and_then(procfs::parse_loadavg)
        {
            out.push(Sample::gauge("node_load1", &[], l1, now));
            out.push(Sample::gauge("node_load5", &[], l5, now));
            out.push(Sample::gauge("node_load15", &[], l15, now));
        }
        if let Ok(text) = read(&self.proc_path.join("meminfo")) {
            for (name, value) in procfs::parse_meminfo(&text) {
                out.push(Sample::gauge(&name, &[], value, now));
            }
        }
        if let Ok(text) = read(&self.proc_path.join("diskstats")) {
            self.disks(&text, now, out);
        }
        if let Ok(text) = read(&self.proc_path.join("net/dev")) {
            for (device, values) in procfs::parse_net_dev(&text) {
                if self.exclude_net.as_ref().is_some_and(|r| r.is_match(&device)) {
                    continue;
                }
                for ((direction, field), v) in NET_COLUMNS.iter().zip(values.iter()) {
                    let name = format!("node_network_{direction}_{field}_total");
                    out.push(Sample::counter(&name, &[("device", &device)], *v as f64, now));
                }
            }
        }
        if let Ok(text) = read(&self.proc_path.join("self/mounts")) {
            self.filesystems(&text, now, out);
        }
    }

    fn disks(&self, text: &str, now: i64, out: &mut Vec<Sample>) {
        for d in procfs::parse_diskstats(text) {
            if self.exclude_disks.is_match(&d.device) {
                continue;
            }
            let labels = [("device", d.device.as_str())];
            let counters = [
                ("node_disk_reads_completed_total", d.reads_completed as f64),
                ("node_disk_reads_merged_total", d.reads_merged as f64),
                ("node_disk_read_bytes_total", d.sectors_read as f64 * 512.0),
                (
                    "node_disk_read_time_seconds_total",
                    d.read_time_ms as f64 / 1000.0,
                ),
                ("node_disk_writes_completed_total", d.writes_completed as f64),
                ("node_disk_writes_merged_total", d.writes_merged as f64),
                ("node_disk_written_bytes_total", d.sectors_written as f64 * 512.0),
                (
                    "node_disk_write_time_seconds_total",
                    d.write_time_ms as f64 / 1000.0,
                ),
                ("node_disk_io_time_seconds_total", d.io_time_ms as f64 / 1000.0),
                (
                    "node_disk_io_time_weighted_seconds_total",
                    d.io_weighted_ms as f64 / 1000.0,
                ),
            ];
            for (name, v) in counters {
                out.push(Sample::counter(name, &labels, v, now));
            }
            out.push(Sample::gauge(
                "node_disk_io_now",
                &labels,
                d.io_in_progress as f64,
                now,
            ));
        }
    }

    fn filesystems(&self, text: &str, now: i64, out: &mut Vec<Sample>) {
        let mut seen: Vec<(String, String)> = Vec::new();
        for m in procfs::parse_mounts(text) {
            if self.exclude_fstypes.is_match(&m.fstype) || self.exclude_mountpoints.is_match(&m.mountpoint) {
                continue;
            }
            let key = (m.device.clone(), m.mountpoint.clone());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let labels = [
                ("device", m.device.as_str()),
                ("mountpoint", m.mountpoint.as_str()),
                ("fstype", m.fstype.as_str()),
            ];
            let st = match rustix::fs::statvfs(m.mountpoint.as_str()) {
                Ok(st) => st,
                Err(e) => {
                    tracing::debug!(mountpoint = %m.mountpoint, error = %e, "statvfs failed");
                    out.push(Sample::gauge("node_filesystem_device_error", &labels, 1.0, now));
                    continue;
                }
            };
            let unit = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize } as f64;
            out.push(Sample::gauge("node_filesystem_device_error", &labels, 0.0, now));
            out.push(Sample::gauge(
                "node_filesystem_size_bytes",
                &labels,
                st.f_blocks as f64 * unit,
                now,
            ));
            out.push(Sample::gauge(
                "node_filesystem_free_bytes",
                &labels,
                st.f_bfree as f64 * unit,
                now,
            ));
            out.push(Sample::gauge(
                "node_filesystem_avail_bytes",
                &labels,
                st.f_bavail as f64 * unit,
                now,
            ));
            out.push(Sample::gauge(
                "node_filesystem_files",
                &labels,
                st.f_files as f64,
                now,
            ));
            out.push(Sample::gauge(
                "node_filesystem_files_free",
                &labels,
                st.f_ffree as f64,
                now,
            ));
            out.push(Sample::gauge(
                "node_filesystem_readonly",
                &labels,
                if m.readonly { 1.0 } else { 0.0 },
                now,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::ProcessGroupConfig;

    fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    }

    #[tokio::test]
    async fn collects_this_host_with_node_exporter_names() {
        let config = HostConfig {
            // Containers mount / as overlay: include every filesystem type for the test.
            filesystem_exclude_fstypes: "proc|sysfs|cgroup2?".into(),
            process_groups: vec![ProcessGroupConfig {
                name: "tests".into(),
                pattern: "didban_agent".into(),
            }],
            ..HostConfig::default()
        };
        let mut c = HostCollector::new(&config).unwrap();
        let samples = c.collect().await.unwrap();
        let idle = find(
            &samples,
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "idle")],
        )
        .unwrap();
        assert!(idle.value > 0.0);
        for name in [
            "node_load1",
            "node_load5",
            "node_load15",
            "node_memory_MemTotal_bytes",
            "node_memory_MemAvailable_bytes",
            "node_memory_MemFree_bytes",
            "node_memory_Cached_bytes",
            "node_memory_Buffers_bytes",
            "node_memory_SwapTotal_bytes",
            "node_memory_SwapFree_bytes",
            "node_procs_running",
            "node_procs_blocked",
            "node_context_switches_total",
            "node_boot_time_seconds",
            "node_time_seconds",
            "node_filesystem_size_bytes",
            "node_filesystem_free_bytes",
            "node_filesystem_avail_bytes",
            "node_network_receive_bytes_total",
            "node_network_transmit_packets_total",
        ] {
            assert!(find(&samples, name, &[]).is_some(), "missing {name}");
        }
        let lo = find(&samples, "node_network_receive_bytes_total", &[("device", "lo")]);
        assert!(lo.is_some());
        let root = find(&samples, "node_filesystem_size_bytes", &[("mountpoint", "/")]).unwrap();
        assert!(root.value > 0.0 && root.label("fstype").is_some() && root.label("device").is_some());
        let mem = find(&samples, "node_memory_MemTotal_bytes", &[]).unwrap();
        assert!(mem.value > 1e6);
        let rss = find(
            &samples,
            "namedprocess_namegroup_memory_bytes",
            &[("groupname", "tests"), ("memtype", "resident")],
        )
        .unwrap();
        assert!(rss.value > 0.0, "the test binary itself matches");
        let procs = find(
            &samples,
            "namedprocess_namegroup_num_procs",
            &[("groupname", "tests")],
        )
        .unwrap();
        assert!(procs.value >= 1.0);
        assert!(find(
            &samples,
            "namedprocess_namegroup_cpu_seconds_total",
            &[("mode", "user")]
        )
        .is_some());
        // Default excludes drop pseudo filesystems.
        let mut d = HostCollector::new(&HostConfig::default()).unwrap();
        let samples = d.collect().await.unwrap();
        assert!(find(&samples, "node_filesystem_size_bytes", &[("fstype", "proc")]).is_none());
        assert!(find(&samples, "node_filesystem_size_bytes", &[("mountpoint", "/proc")]).is_none());
    }

    #[tokio::test]
    async fn missing_proc_is_a_clear_error() {
        let config = HostConfig {
            proc_path: "/nonexistent/proc".into(),
            ..HostConfig::default()
        };
        let mut c = HostCollector::new(&config).unwrap();
        let err = c.collect().await.unwrap_err();
        assert!(err.to_string().contains("/nonexistent/proc/stat"), "{err}");
    }
}
