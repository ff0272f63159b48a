//! Parsers for the Linux `/proc` files the host collector reads. Pure functions over text, so
//! they are tested on fixed input; malformed lines are skipped, never a panic.

/// CPU modes of `/proc/stat` in column order, as node_exporter names them.
pub const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// What the host collector uses from `/proc/stat`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stat {
    /// Per CPU (`"0"`, `"1"`, …): ticks per mode in [`CPU_MODES`] order.
    pub cpus: Vec<(String, [u64; 8])>,
    /// Context switches since boot.
    pub context_switches: Option<u64>,
    /// Boot time, seconds since the epoch.
    pub boot_time: Option<u64>,
    /// Processes in runnable state.
    pub procs_running: Option<u64>,
    /// Processes blocked waiting for I/O.
    pub procs_blocked: Option<u64>,
    /// Interrupts serviced since boot.
    pub interrupts: Option<u64>,
    /// Forks since boot.
    pub forks: Option<u64>,
}

/// Parses `/proc/stat`.
pub fn parse_stat(text: &str) -> Stat {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(key) = fields.next() else { continue };
        let first = || line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok());
        match key {
            "ctxt" => stat.context_switches = first(),
            "btime" => stat.boot_time = first(),
            "procs_running" => stat.procs_running = first(),
            "procs_blocked" => stat.procs_blocked = first(),
            "intr" => stat.interrupts = first(),
            "processes" => stat.forks = first(),
            _ => {
                let Some(cpu) = key.strip_prefix("cpu") else {
                    continue;
                };
                if cpu.is_empty() {
                    continue; // the aggregate line
                }
                let mut ticks = [0u64; 8];
                for slot in ticks.iter_mut() {
                    *slot = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                }
                stat.cpus.push((cpu.to_string(), ticks));
            }
        }
    }
    stat
}

/// Parses `/proc/loadavg` into the 1, 5 and 15 minute load averages.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace();
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let c = it.next()?.parse().ok()?;
    Some([a, b, c])
}

/// Parses `/proc/meminfo` into node_exporter metric names and values
/// (`MemTotal: 100 kB` → `node_memory_MemTotal_bytes` = 102400; `Active(anon)` → `Active_anon`;
/// unitless fields such as `HugePages_Total` keep no `_bytes` suffix).
pub fn parse_meminfo(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(value) = parts.next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let key = key.trim().replace('(', "_").replace(')', "");
        match parts.next() {
            Some("kB") => out.push((format!("node_memory_{key}_bytes"), value * 1024.0)),
            _ => out.push((format!("node_memory_{key}"), value)),
        }
    }
    out
}

/// One line of `/proc/diskstats`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskStat {
    /// Device name (`sda`, `nvme0n1`).
    pub device: String,
    /// Reads completed.
    pub reads_completed: u64,
    /// Reads merged.
    pub reads_merged: u64,
    /// Sectors (512 bytes) read.
    pub sectors_read: u64,
    /// Milliseconds spent reading.
    pub read_time_ms: u64,
    /// Writes completed.
    pub writes_completed: u64,
    /// Writes merged.
    pub writes_merged: u64,
    /// Sectors (512 bytes) written.
    pub sectors_written: u64,
    /// Milliseconds spent writing.
    pub write_time_ms: u64,
    /// I/Os currently in progress.
    pub io_in_progress: u64,
    /// Milliseconds spent doing I/Os.
    pub io_time_ms: u64,
    /// Weighted milliseconds spent doing I/Os.
    pub io_weighted_ms: u64,
}

/// Parses `/proc/diskstats`.
pub fn parse_diskstats(text: &str) -> Vec<DiskStat> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 14 {
            continue;
        }
        let mut n = [0u64; 11];
        let mut ok = true;
        for (i, slot) in n.iter_mut().enumerate() {
            match fields.get(3 + i).and_then(|v| v.parse().ok()) {
                Some(v) => *slot = v,
                None => ok = false,
            }
        }
        let Some(device) = fields.get(2) else { continue };
        if !ok {
            continue;
        }
        out.push(DiskStat {
            device: device.to_string(),
            reads_completed: n[0],
            reads_merged: n[1],
            sectors_read: n[2],
            read_time_ms: n[3],
            writes_completed: n[4],
            writes_merged: n[5],
            sectors_written: n[6],
            write_time_ms: n[7],
            io_in_progress: n[8],
            io_time_ms: n[9],
            io_weighted_ms: n[10],
        });
    }
    out
}

/// Column names of `/proc/net/dev` (receive then transmit), as node_exporter names them.
pub const NET_COLUMNS: [(&str, &str); 16] = [
    ("receive", "bytes"),
    ("receive", "packets"),
    ("receive", "errs"),
    ("receive", "drop"),
    ("receive", "fifo"),
    ("receive", "frame"),
    ("receive", "compressed"),
    ("receive", "multicast"),
    ("transmit", "bytes"),
    ("transmit", "packets"),
    ("transmit", "errs"),
    ("transmit", "drop"),
    ("transmit", "fifo"),
    ("transmit", "colls"),
    ("transmit", "carrier"),
    ("transmit", "compressed"),
];

/// Parses `/proc/net/dev` into (interface, counters in [`NET_COLUMNS`] order).
pub fn parse_net_dev(text: &str) -> Vec<(String, [u64; 16])> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut values = [0u64; 16];
        let mut count = 0;
        for (slot, v) in values.iter_mut().zip(rest.split_whitespace()) {
            match v.parse() {
                Ok(n) => {
                    *slot = n;
                    count += 1;
                }
                Err(_) => break,
            }
        }
        if count == 16 {
            out.push((name.trim().to_string(), values));
        }
    }
    out
}

/// One mounted filesystem from `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Source device.
    pub device: String,
    /// Mount point, octal escapes (`\040`) decoded.
    pub mountpoint: String,
    /// Filesystem type.
    pub fstype: String,
    /// Mounted read-only.
    pub readonly: bool,
}

/// Parses `/proc/self/mounts` (fstab format).
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(device), Some(mountpoint), Some(fstype), Some(options)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let readonly = options.split(',').any(|o| o == "ro");
        out.push(Mount {
            device: unescape_octal(device),
            mountpoint: unescape_octal(mountpoint),
            fstype: fstype.to_string(),
            readonly,
        });
    }
    out
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            if let Some(digits) = bytes.get(i + 1..i + 4) {
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = (u32::from(digits[0] - b'0') << 6)
                        | (u32::from(digits[1] - b'0') << 3)
                        | u32::from(digits[2] - b'0');
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// User and system CPU ticks of a process from `/proc/<pid>/stat`.
pub fn parse_pid_stat(text: &str) -> Option<(u64, u64)> {
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat() {
        let s = parse_stat(
            "cpu  10 1 5 100 2 0 1 0 0 0\ncpu0 4 1 2 50 1 0 1 0 0 0\ncpu1 6 0 3 50 1 0 0 0 0 0\n\
             intr 999 1 2\nctxt 12345\nbtime 1700000000\nprocesses 77\nprocs_running 3\nprocs_blocked 1\n",
        );
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(s.cpus[1], ("1".to_string(), [6, 0, 3, 50, 1, 0, 0, 0]));
        assert_eq!(s.context_switches, Some(12345));
        assert_eq!(s.boot_time, Some(1_700_000_000));
        assert_eq!(
            (s.procs_running, s.procs_blocked, s.interrupts, s.forks),
            (Some(3), Some(1), Some(999), Some(77))
        );
        assert_eq!(
            parse_stat("garbage\ncpu0 x"),
            Stat {
                cpus: vec![("0".into(), [0; 8])],
                ..Stat::default()
            }
        );
    }

    #[test]
    fn meminfo_and_load() {
        let m = parse_meminfo("MemTotal:  100 kB\nActive(anon):  2 kB\nHugePages_Total:   0\nbad line\n");
        assert_eq!(m[0], ("node_memory_MemTotal_bytes".to_string(), 102_400.0));
        assert_eq!(m[1].0, "node_memory_Active_anon_bytes");
        assert_eq!(m[2], ("node_memory_HugePages_Total".to_string(), 0.0));
        assert_eq!(m.len(), 3);
        assert_eq!(
            parse_loadavg("0.50 0.25 0.10 1/123 4567\n"),
            Some([0.5, 0.25, 0.1])
        );
        assert_eq!(parse_loadavg("x"), None);
    }

    #[test]
    fn diskstats_net_mounts_pid() {
        let d =
            parse_diskstats("   8       0 sda 100 2 800 30 50 1 400 20 0 45 60 0 0 0 0\n 7 0 short 1 2\n");
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].device.as_str(), d[0].sectors_read, d[0].io_time_ms),
            ("sda", 800, 45)
        );
        let n = parse_net_dev(
            "Inter-|   Receive\n face |bytes\n  eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n",
        );
        assert_eq!(
            n,
            vec![(
                "eth0".to_string(),
                [1000, 10, 1, 2, 0, 0, 0, 0, 2000, 20, 3, 4, 0, 0, 0, 0]
            )]
        );
        let m = parse_mounts("/dev/sda1 /mnt/my\\040disk ext4 ro,relatime 0 0\nproc /proc proc rw 0 0\n");
        assert_eq!(m[0].mountpoint, "/mnt/my disk");
        assert!(m[0].readonly && !m[1].readonly);
        let stat = "42 (my (odd) proc) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 50";
        assert_eq!(parse_pid_stat(stat), Some((250, 75)));
        assert_eq!(parse_pid_stat("42 (x) S 1"), None);
    }
}
