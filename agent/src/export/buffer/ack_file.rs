//! The `ack` file of the disk buffer: where the first unacknowledged record is. One
//! fixed-width line `<segment> <offset> <crc32>` so it can be rewritten in place; replaced
//! atomically the first time in a run. How and when it is written is in the `ack` module.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::durable::{io_err, sync_dir};
use crate::error::BufferError;

/// Most records acknowledged in memory before the `ack` file is written anyway (it is written
/// at once whenever nothing more is waiting to be sent).
pub const ACK_SAVE_EVERY: usize = 16;

/// Position of a record: segment id and byte offset of its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordId {
    /// Segment file number.
    pub segment: u64,
    /// Offset of the frame inside the segment file.
    pub offset: u64,
}

pub(super) fn read_ack(dir: &Path) -> Result<RecordId, BufferError> {
    let path = dir.join("ack");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(RecordId {
                segment: 0,
                offset: 0,
            })
        }
        Err(e) => return Err(io_err(&path, e)),
    };
    match parse_ack(&text) {
        Some(id) => Ok(id),
        None => {
            tracing::warn!(path = %path.display(), "export buffer: unreadable or torn ack file, resending everything");
            Ok(RecordId {
                segment: 0,
                offset: 0,
            })
        }
    }
}

/// `<segment> <offset> <crc32 of both, hex>`, fixed width so an in-place rewrite covers the
/// previous line exactly.
pub(super) fn ack_line(id: RecordId) -> String {
    let position = format!("{:020} {:020}", id.segment, id.offset);
    let crc = crc32fast::hash(position.as_bytes());
    format!("{position} {crc:08x}\n")
}

/// The position in an `ack` line; `None` when it is unreadable or its CRC does not match (a
/// torn write). A line without CRC is the format before issue 12 (always replaced whole).
pub(super) fn parse_ack(text: &str) -> Option<RecordId> {
    let mut parts = text.split_whitespace();
    let segment = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    let id = RecordId { segment, offset };
    match parts.next() {
        None => Some(id),
        Some(crc) => (ack_line(id).split_whitespace().nth(2) == Some(crc)).then_some(id),
    }
}

/// Segment id to start with in an empty buffer: never below the acknowledged one, so an old
/// `ack` position cannot hide new records.
pub(super) fn read_ack_segment(dir: &Path) -> u64 {
    match read_ack(dir) {
        Ok(id) => id.segment + 1,
        Err(_) => 1,
    }
}

/// Replaces the `ack` file with `line` atomically (temporary file, fsync, rename, directory
/// fsync).
pub(super) fn replace_ack(dir: &Path, line: &str) -> Result<(), BufferError> {
    let tmp = dir.join("ack.tmp");
    let path = dir.join("ack");
    let mut file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    file.write_all(line.as_bytes()).map_err(|e| io_err(&tmp, e))?;
    file.sync_all().map_err(|e| io_err(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(dir)
}
