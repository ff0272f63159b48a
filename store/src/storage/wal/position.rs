//! Ingest-log positions carried inside WAL records.
//!
//! When a process consumes a replicated ingest log (NATS JetStream, in front of ingest),
//! the log redelivers what it has not seen acknowledged, and a redelivered batch must not
//! be stored twice: samples would merely repeat, but log records and spans would be counted
//! twice. So an append made from the log carries the log position it came from, and the
//! store writes that position **in the same WAL record** as the batch — one frame, one CRC —
//! so a replay finds either both or neither. After a restart the store reports the highest
//! position its WAL holds per partition ([`AppliedPositions`]), and the consumer skips
//! whatever it is handed again up to there.
//!
//! Segments are deleted once what they hold is in a block or a committed index, and their
//! positions would go with them; so the record that opens each new segment (the rotation
//! checkpoint) carries every position the store had applied before it.
//!
//! Format: a positioned payload is `[0xB7][count u16 LE]` then `count` times
//! `[partition u32 LE][sequence u64 LE]`, then the record. Every store's records begin with
//! a small version byte (1 or 2), never 0xB7, so plain records read exactly as before.

use std::collections::BTreeMap;

/// First byte of a positioned payload.
const TAG: u8 = 0xB7;

/// Bytes of the tag and the count.
const HEADER: usize = 1 + 2;

/// Bytes of one position.
const ENTRY: usize = 4 + 8;

/// Where a batch came from in the ingest log: the stream partition and the stream
/// sequence of the (last) message it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    /// The partition (subject) of the ingest stream.
    pub partition: u32,
    /// The stream sequence; within one partition later messages have higher numbers.
    pub seq: u64,
}

/// The highest position applied per partition; what a replay found, or what a consumer
/// has stored so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedPositions {
    highest: BTreeMap<u32, u64>,
}

impl AppliedPositions {
    /// Records that `position` is applied (keeps the highest sequence per partition).
    pub fn note(&mut self, position: LogPosition) {
        let entry = self.highest.entry(position.partition).or_insert(0);
        if position.seq > *entry {
            *entry = position.seq;
        }
    }

    /// Merges another set in (highest wins per partition).
    pub fn merge(&mut self, other: &AppliedPositions) {
        self.merge_map(&other.highest);
    }

    /// The highest applied sequence of `partition`, `None` when nothing of it was seen.
    pub fn get(&self, partition: u32) -> Option<u64> {
        self.highest.get(&partition).copied()
    }

    /// True when no position was recorded.
    pub fn is_empty(&self) -> bool {
        self.highest.is_empty()
    }

    /// The highest sequence per partition, as a block's metadata keeps them.
    pub fn as_map(&self) -> &BTreeMap<u32, u64> {
        &self.highest
    }

    /// Merges in the positions a block's metadata kept (highest wins per partition).
    pub fn merge_map(&mut self, highest: &BTreeMap<u32, u64>) {
        for (&partition, &seq) in highest {
            self.note(LogPosition { partition, seq });
        }
    }
}

/// `record` prefixed with `position` (or `record` itself without one).
pub(crate) fn wrap(position: Option<LogPosition>, record: Vec<u8>) -> Vec<u8> {
    let Some(position) = position else {
        return record;
    };
    let mut one = AppliedPositions::default();
    one.note(position);
    wrap_all(&one, record)
}

/// `record` prefixed with every position of `positions` (or `record` itself when empty).
pub(crate) fn wrap_all(positions: &AppliedPositions, record: Vec<u8>) -> Vec<u8> {
    if positions.is_empty() {
        return record;
    }
    let count = positions.highest.len().min(usize::from(u16::MAX));
    let mut out = Vec::with_capacity(HEADER + count * ENTRY + record.len());
    out.push(TAG);
    out.extend_from_slice(&(count as u16).to_le_bytes());
    for (&partition, &seq) in positions.highest.iter().take(count) {
        out.extend_from_slice(&partition.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
    }
    out.extend_from_slice(&record);
    out
}

/// The positions a payload carries, without copying its record (the writer notes them as
/// it frames records).
pub(crate) fn peek(payload: &[u8], into: &mut AppliedPositions) {
    if payload.len() < HEADER || payload[0] != TAG {
        return;
    }
    let count = usize::from(u16::from_le_bytes([payload[1], payload[2]]));
    let end = HEADER + count * ENTRY;
    if payload.len() < end {
        return;
    }
    for entry in payload[HEADER..end].chunks_exact(ENTRY) {
        let partition = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&entry[4..ENTRY]);
        into.note(LogPosition {
            partition,
            seq: u64::from_le_bytes(seq),
        });
    }
}

/// Splits a payload read back into the positions it carries (empty for a plain record)
/// and its record. A payload starting with the tag but too short for what its count
/// announces is returned whole, for the store's decoder to refuse as it refuses any
/// damaged record.
pub(crate) fn unwrap(payload: Vec<u8>) -> (AppliedPositions, Vec<u8>) {
    let mut positions = AppliedPositions::default();
    peek(&payload, &mut positions);
    if positions.is_empty() {
        return (positions, payload);
    }
    let count = usize::from(u16::from_le_bytes([payload[1], payload[2]]));
    let record = payload[HEADER + count * ENTRY..].to_vec();
    (positions, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_record_comes_back_with_its_position() {
        let position = LogPosition {
            partition: 3,
            seq: 1 << 40,
        };
        let (got, record) = unwrap(wrap(Some(position), vec![2, 9, 9]));
        assert_eq!(got.get(3), Some(1 << 40));
        assert_eq!(record, vec![2, 9, 9]);
    }

    #[test]
    fn a_checkpoint_carries_every_partition() {
        let mut all = AppliedPositions::default();
        all.note(LogPosition { partition: 0, seq: 4 });
        all.note(LogPosition {
            partition: 7,
            seq: 11,
        });
        let (got, record) = unwrap(wrap_all(&all, vec![1]));
        assert_eq!(got, all);
        assert_eq!(record, vec![1]);
    }

    #[test]
    fn plain_records_are_untouched() {
        assert_eq!(wrap(None, vec![1, 2]), vec![1, 2]);
        assert_eq!(unwrap(vec![1, 2]), (AppliedPositions::default(), vec![1, 2]));
        // A tag without the positions its count announces is left for the store's decoder.
        assert_eq!(
            unwrap(vec![TAG, 1, 0, 5]),
            (AppliedPositions::default(), vec![TAG, 1, 0, 5])
        );
    }

    #[test]
    fn applied_positions_keep_the_highest_per_partition() {
        let mut a = AppliedPositions::default();
        a.note(LogPosition { partition: 0, seq: 5 });
        a.note(LogPosition { partition: 0, seq: 3 });
        a.note(LogPosition { partition: 1, seq: 7 });
        let mut b = AppliedPositions::default();
        b.note(LogPosition { partition: 0, seq: 9 });
        a.merge(&b);
        assert_eq!(a.get(0), Some(9));
        assert_eq!(a.get(1), Some(7));
        assert_eq!(a.get(2), None);
    }
}
