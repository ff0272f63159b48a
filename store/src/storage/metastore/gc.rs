//! The compactor's garbage collection in the bucket: objects of blocks retired longer
//! than the grace period ago (then their rows), and objects of blocks without any row
//! that are older than the grace period — uploads a crash or a failed publication left.
//!
//! The bucket is listed before the rows are read: a block published in between has its
//! row by then, and one whose upload is still running has objects younger than the grace
//! period, so neither is taken for garbage.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Metastore;
use crate::storage::error::BlockError;
use crate::storage::object::Remote;

/// What one collection deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Collected {
    /// Retired blocks whose objects and rows were deleted.
    pub retired: u64,
    /// Blocks without a row whose objects were deleted.
    pub orphans: u64,
}

/// When a block kind's collection last ran: each kind (metric blocks, span blocks, sealed
/// log days) collects at most once per quarter of the grace period, so the bucket is not
/// listed every maintenance round.
#[derive(Default)]
pub(crate) struct GcSchedule(Mutex<Option<Instant>>);

impl GcSchedule {
    /// Collects garbage under `remote`'s prefix ([`collect`]) when `metastore`'s process
    /// holds the compactor lease and a quarter of `grace` has passed since the last run;
    /// returns the number of blocks deleted.
    pub(crate) fn run(
        &self,
        remote: &Remote,
        metastore: &Metastore,
        grace: Duration,
    ) -> Result<u64, BlockError> {
        if !metastore.is_compactor() {
            return Ok(0);
        }
        {
            let mut last = self.0.lock();
            if last.is_some_and(|t| t.elapsed() < grace / 4) {
                return Ok(0);
            }
            *last = Some(Instant::now());
        }
        let done = collect(remote, metastore, grace)?;
        Ok(done.retired + done.orphans)
    }
}

/// One collection over `remote`'s prefix, with `grace` as described in the module.
pub(crate) fn collect(
    remote: &Remote,
    metastore: &Metastore,
    grace: Duration,
) -> Result<Collected, BlockError> {
    let mut objects = remote.list_objects()?;
    let (all, expired) = metastore.rows_for_gc(grace)?;
    let mut done = Collected::default();
    for name in &expired {
        if let Some(objs) = objects.remove(name) {
            remote.delete_objects(objs)?;
        }
        tracing::info!(block = %remote.block_url(name), "deleted a retired block");
        done.retired += 1;
    }
    if !expired.is_empty() {
        metastore.forget(expired)?;
    }
    let known: HashSet<&str> = all.iter().map(String::as_str).collect();
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let now = didban_base::now_ms();
    for (name, objs) in objects {
        if known.contains(name.as_str()) {
            continue;
        }
        if objs.iter().any(|o| now.saturating_sub(o.modified_ms) < grace_ms) {
            continue;
        }
        tracing::info!(block = %remote.block_url(&name), objects = objs.len(), "deleted objects of a block without a metastore row");
        remote.delete_objects(objs)?;
        done.orphans += 1;
    }
    Ok(done)
}
