//! Per-process-group CPU and memory, named as process-exporter names them
//! (`namedprocess_namegroup_*{groupname}`). Processes are listed with sysinfo; the user/system
//! CPU split comes from `/proc/<pid>/stat`, which sysinfo sums into one number. The CPU
//! counters stay monotonic when processes exit: the last seen CPU time of a process that is
//! gone is kept in the group's total, as process-exporter does.

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::procfs::parse_pid_stat;
use crate::config::ProcessGroupConfig;
use crate::model::Sample;

/// A configured group with its compiled pattern.
#[derive(Debug)]
pub struct ProcessGroup {
    name: String,
    pattern: Regex,
}

/// Compiles the configured groups; invalid patterns were rejected by config validation, and
/// any that slip through are skipped with a warning.
pub fn compile_groups(configs: &[ProcessGroupConfig]) -> Vec<ProcessGroup> {
    let mut out = Vec::new();
    for c in configs {
        match Regex::new(&c.pattern) {
            Ok(pattern) => out.push(ProcessGroup {
                name: c.name.clone(),
                pattern,
            }),
            Err(e) => tracing::warn!(group = %c.name, error = %e, "invalid process group pattern"),
        }
    }
    out
}

/// CPU ticks of processes seen at the last collection, and of those that have exited.
#[derive(Debug, Default)]
pub struct CpuHistory {
    /// (pid, start time) → (group index, user ticks, system ticks).
    last: HashMap<(u32, u64), (usize, u64, u64)>,
    /// Per group: ticks of processes that are gone.
    gone: HashMap<usize, (u64, u64)>,
}

impl CpuHistory {
    /// Moves processes not in `seen` to the groups' exited totals and remembers `seen`.
    fn roll(&mut self, seen: HashMap<(u32, u64), (usize, u64, u64)>) {
        for (key, (group, user, system)) in &self.last {
            if !seen.contains_key(key) {
                let g = self.gone.entry(*group).or_default();
                g.0 += user;
                g.1 += system;
            }
        }
        self.last = seen;
    }

    fn gone(&self, group: usize) -> (u64, u64) {
        self.gone.get(&group).copied().unwrap_or((0, 0))
    }
}

#[derive(Default)]
struct Totals {
    procs: u64,
    user_ticks: u64,
    system_ticks: u64,
    rss: u64,
    virt: u64,
}

/// Refreshes the process list and returns the group samples.
pub fn collect_groups(
    history: &mut CpuHistory,
    system: &mut System,
    groups: &[ProcessGroup],
    proc_path: &Path,
    ticks_per_second: f64,
    now: i64,
) -> Vec<Sample> {
    if groups.is_empty() {
        return Vec::new();
    }
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        // Without tasks: threads are skipped below anyway, and listing every thread of every
        // process (hundreds under one Erlang VM) was most of the agent's host collection CPU
        // (issue 12).
        ProcessRefreshKind::nothing()
            .with_memory()
            .with_cmd(UpdateKind::OnlyIfNotSet)
            .without_tasks(),
    );
    let mut totals: Vec<Totals> = Vec::with_capacity(groups.len());
    for _ in groups {
        totals.push(Totals::default());
    }
    let mut seen = HashMap::new();
    for (pid, process) in system.processes() {
        // Threads show up as processes too on Linux; count each process once.
        if process
            .thread_kind()
            .is_some_and(|k| k == sysinfo::ThreadKind::Userland)
        {
            continue;
        }
        let name = process.name().to_string_lossy();
        let mut cmdline = String::new();
        for (i, part) in process.cmd().iter().enumerate() {
            if i > 0 {
                cmdline.push(' ');
            }
            cmdline.push_str(&part.to_string_lossy());
        }
        for (index, (group, total)) in groups.iter().zip(totals.iter_mut()).enumerate() {
            if !(group.pattern.is_match(&name) || group.pattern.is_match(&cmdline)) {
                continue;
            }
            total.procs += 1;
            total.rss += process.memory();
            total.virt += process.virtual_memory();
            let stat_path = proc_path.join(pid.to_string()).join("stat");
            if let Some((u, s)) = std::fs::read_to_string(stat_path)
                .ok()
                .as_deref()
                .and_then(parse_pid_stat)
            {
                total.user_ticks += u;
                total.system_ticks += s;
                seen.insert((pid.as_u32(), process.start_time()), (index, u, s));
            }
            // A process belongs to the first group that matches it, as in process-exporter.
            break;
        }
    }
    history.roll(seen);
    let mut out = Vec::new();
    for (index, (group, t)) in groups.iter().zip(totals.iter()).enumerate() {
        let g = group.name.as_str();
        let (gone_user, gone_system) = history.gone(index);
        out.push(Sample::gauge(
            "namedprocess_namegroup_num_procs",
            &[("groupname", g)],
            t.procs as f64,
            now,
        ));
        for (mode, ticks) in [
            ("user", t.user_ticks + gone_user),
            ("system", t.system_ticks + gone_system),
        ] {
            out.push(Sample::counter(
                "namedprocess_namegroup_cpu_seconds_total",
                &[("groupname", g), ("mode", mode)],
                ticks as f64 / ticks_per_second,
                now,
            ));
        }
        for (memtype, bytes) in [("resident", t.rss), ("virtual", t.virt)] {
            out.push(Sample::gauge(
                "namedprocess_namegroup_memory_bytes",
                &[("groupname", g), ("memtype", memtype)],
                bytes as f64,
                now,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exited_processes_keep_their_cpu_in_the_group() {
        let mut h = CpuHistory::default();
        let mut seen = HashMap::new();
        seen.insert((10, 1), (0, 100, 50));
        seen.insert((11, 1), (0, 10, 5));
        h.roll(seen);
        assert_eq!(h.gone(0), (0, 0));
        let mut seen = HashMap::new();
        seen.insert((11, 1), (0, 20, 6));
        // pid 10 reused by a new process (other start time): the old one is gone.
        seen.insert((10, 2), (0, 1, 1));
        h.roll(seen);
        assert_eq!(h.gone(0), (100, 50));
    }
}
