//! The log store's side of the ingest-log marks (`marks`): written into each day it seals,
//! and read back from every sealed day for a consumer with an empty data directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::day::DayIndex;
use super::error::LogError;
use super::marks::{LogPublished, SealPositions};
use super::sealed::SealedDays;
use super::LogStore;

impl LogStore {
    /// What the sealed days — every process's, in the bucket, and this one's staged ones —
    /// hold of `partition` (reading each day's `ingest.json` once, from the bucket when it
    /// is not cached): where a consumer of the ingest log whose data directory holds
    /// nothing of the partition resumes, and per day what it skips. Empty in file mode.
    /// Call from a blocking thread.
    pub fn published_positions(&self, partition: u32) -> Result<LogPublished, LogError> {
        let mut out = LogPublished::default();
        if let Some(sealed) = &self.sealed {
            for (day, marks) in sealed.seal_positions()? {
                out.add(&day, &marks, partition);
            }
        }
        Ok(out)
    }

    /// Writes each day of `seal`'s `ingest.json` (`published`): what the store applied
    /// (everything, as appends are paused), and where the records of every other index of
    /// the data directory start.
    pub(super) fn write_seal_positions(&self, sealed: &SealedDays, seal: &[String]) -> Result<(), LogError> {
        let through = self.wal.rotation_positions();
        let days: Vec<Arc<DayIndex>> = self.days.read().values().cloned().collect();
        let mut firsts: Vec<(Option<&str>, BTreeMap<u32, u64>)> =
            sealed.staged_firsts().into_iter().map(|f| (None, f)).collect();
        firsts.extend(days.iter().map(|d| (Some(d.day.as_str()), d.first())));
        for index in days.iter().filter(|d| seal.contains(&d.day)) {
            let others = firsts
                .iter()
                .filter(|(day, _)| *day != Some(index.day.as_str()))
                .map(|(_, first)| first);
            SealPositions::at_seal(&through, others).write(&index.dir)?;
        }
        Ok(())
    }
}
