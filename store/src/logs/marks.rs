//! The ingest-log marks of sealed log days: what they tell a replacement on a new disk about the ingest log: which
//! stream sequences of a partition the bucket already holds, per day, and where the
//! records it does not hold start.
//!
//! Each sealed index carries `ingest.json` beside Tantivy's files (uploaded with them,
//! before `meta.json`), written when the day is sealed, under the append gate:
//!
//! ```json
//! {"through":{"<partition>":T},"floor":{"<partition>":F}}
//! ```
//!
//! - `through`: the highest sequence of the partition the store had applied at the seal.
//!   A day's records are split between its indexes by that mark alone (a record arriving
//!   after a seal goes into a new index of its day, sealed in turn), so the sealed
//!   indexes of a day hold exactly its records up to the highest `through` among them.
//! - `floor`: the lowest sequence a record not in this index and not yet in the bucket
//!   may have — the lowest `first` (see `day::DayIndex::first`) over the other indexes
//!   of the data directory (writable days and sealed days not uploaded yet), or `T + 1`
//!   when none holds records of the partition. Anything appended later has a higher
//!   sequence than `T`, so once this index is in the bucket every record of the
//!   partition below `F` is in the bucket for good (retention aside).
//!
//! A replacement reads the stream again from the highest `floor` of the partition and
//! skips a record when its day's highest `through` is at or above its message's
//! sequence: each acknowledged record stored once, whatever moment the process it
//! replaces died at (a sealed index not uploaded died with the disk and is not counted).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::LogError;
use crate::AppliedPositions;

/// The file of a sealed index holding its [`SealPositions`].
pub(crate) const INGEST_FILE: &str = "ingest.json";

/// The ingest-log marks of one sealed index (module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealPositions {
    /// Highest sequence per partition applied when the index was sealed.
    pub through: BTreeMap<u32, u64>,
    /// Per partition, the lowest sequence of a record outside the bucket once this index
    /// is in it.
    pub floor: BTreeMap<u32, u64>,
}

impl SealPositions {
    /// The marks of an index sealed when the store had applied `through`, while the
    /// other indexes of the data directory hold records from `others` (each its `first`).
    pub(crate) fn at_seal<'a>(
        through: &AppliedPositions,
        others: impl IntoIterator<Item = &'a BTreeMap<u32, u64>>,
    ) -> SealPositions {
        let mut floor: BTreeMap<u32, u64> = through
            .as_map()
            .iter()
            .map(|(&p, &t)| (p, t.saturating_add(1)))
            .collect();
        for first in others {
            for (&p, &seq) in first {
                let entry = floor.entry(p).or_insert(seq);
                *entry = (*entry).min(seq);
            }
        }
        SealPositions {
            through: through.as_map().clone(),
            floor,
        }
    }

    /// Writes `ingest.json` into the index directory `dir` and syncs it.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), LogError> {
        let path = dir.join(INGEST_FILE);
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(self).map_err(|e| io(std::io::Error::other(e)))?;
        let mut file = std::fs::File::create(&path).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads what [`SealPositions::write`] wrote; `None` when it does not parse.
    pub(crate) fn parse(bytes: &[u8]) -> Option<SealPositions> {
        serde_json::from_slice(bytes).ok()
    }
}

/// What the sealed log days (in the bucket or staged) hold of one ingest-log partition:
/// where a consumer with an empty data directory starts, and what it skips.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPublished {
    /// Every record of the partition from a message at or below this sequence is in a
    /// sealed day (0: nothing is known to be).
    pub below: u64,
    /// Per day (`yyyy-mm-dd`), the highest sequence whose records of that day the sealed
    /// indexes of the day hold: a record of the day from a message at or below it is
    /// stored already.
    pub days: BTreeMap<String, u64>,
}

impl LogPublished {
    /// Whether a record of `day` from the message with sequence `seq` is held already.
    pub fn holds(&self, day: &str, seq: u64) -> bool {
        seq <= self.below || self.days.get(day).is_some_and(|&t| seq <= t)
    }

    /// The highest sequence of any day's mark (0 without any): past it nothing is skipped.
    pub fn highest(&self) -> u64 {
        self.days.values().copied().max().unwrap_or(0).max(self.below)
    }

    /// Counts in the marks of a sealed index of `day`.
    pub(crate) fn add(&mut self, day: &str, marks: &SealPositions, partition: u32) {
        if let Some(&floor) = marks.floor.get(&partition) {
            self.below = self.below.max(floor.saturating_sub(1));
        }
        if let Some(&through) = marks.through.get(&partition) {
            let entry = self.days.entry(day.to_string()).or_insert(0);
            *entry = (*entry).max(through);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogPosition;

    #[test]
    fn the_floor_is_the_lowest_first_of_the_other_indexes() {
        let mut through = AppliedPositions::default();
        through.note(LogPosition {
            partition: 0,
            seq: 90,
        });
        through.note(LogPosition {
            partition: 1,
            seq: 40,
        });
        let today = BTreeMap::from([(0, 70)]);
        let yesterday = BTreeMap::from([(0, 55), (2, 9)]);
        let marks = SealPositions::at_seal(&through, [&today, &yesterday]);
        assert_eq!(marks.through, BTreeMap::from([(0, 90), (1, 40)]));
        assert_eq!(marks.floor, BTreeMap::from([(0, 55), (1, 41), (2, 9)]));
        let back = SealPositions::parse(&serde_json::to_vec(&marks).unwrap_or_default());
        assert_eq!(back, Some(marks));
    }

    #[test]
    fn records_are_held_up_to_their_days_mark_or_below_the_floor() {
        let mut published = LogPublished::default();
        let old = SealPositions {
            through: BTreeMap::from([(0, 50)]),
            floor: BTreeMap::from([(0, 31)]),
        };
        let newer = SealPositions {
            through: BTreeMap::from([(0, 80), (1, 5)]),
            floor: BTreeMap::from([(0, 45)]),
        };
        published.add("2026-12-01", &old, 0);
        published.add("2026-12-02", &newer, 0);
        assert_eq!(published.below, 44);
        assert!(published.holds("2026-12-03", 44));
        assert!(!published.holds("2026-12-03", 45));
        assert!(published.holds("2026-12-01", 50));
        assert!(!published.holds("2026-12-01", 51));
        assert!(published.holds("2026-12-02", 80));
        assert_eq!(published.highest(), 80);
    }
}
