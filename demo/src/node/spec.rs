//! What differs between simulated hosts: [`Spec`] and its parts (interfaces, filesystems,
//! disks, process group), and the byte units they are written in.

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
    /// Requests per second of the busiest handler of [`super::catalog::HTTP_DURATION`] at load 1;
    /// None: the host has no HTTP histogram.
    pub http_rps: Option<f64>,
}
