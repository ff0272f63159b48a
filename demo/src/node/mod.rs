//! One generator of node_exporter-like host metrics, for `didban demo`'s hosts and for the
//! benchmark's data set.
//!
//! - [`catalog`]: the families (names, label names, kinds, rounding);
//! - [`Spec`]: what differs between hosts (CPUs, memory, interfaces, filesystems, disks,
//!   the usual busy share, a process group, an HTTP histogram);
//! - [`Node`] (in `host.rs`): the evolving values of one host, advanced by
//!   [`Node::step`] with an elapsed time, a load factor (the demo's traffic; 1 in the
//!   benchmark) and the caller's random generator;
//! - [`dataset`]: the benchmark's N identical hosts, deterministic per host index.
//!
//! A host's values come in one fixed order, the order of [`Node::families`] (and of
//! [`series`], which spells histograms out as Prometheus series).

pub mod catalog;
pub mod dataset;
mod family;
mod host;
mod spec;

pub use catalog::{Kind, Metric};
pub use family::{format_le, round_to, series, Family, Series};
pub use host::Node;
pub use spec::{Disk, Mount, Nic, ProcessGroup, Spec, GIB, MIB};
