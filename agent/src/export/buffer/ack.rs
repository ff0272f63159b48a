//! The `ack` file of the disk buffer: where the first unacknowledged record is. One
//! fixed-width line `<segment> <offset> <crc32>` so it can be rewritten in place (see the
//! parent module); replaced atomically the first time in a run.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::durable::{io_err, sync_dir};
use crate::error::BufferError;

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
fn parse_ack(text: &str) -> Option<RecordId> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::buffer::tests::drain;
    use crate::export::buffer::DiskBuffer;
    use std::path::PathBuf;

    fn ack_path(dir: &Path) -> PathBuf {
        dir.join("ack")
    }

    /// After the first acknowledgement the `ack` file is the same file rewritten in place;
    /// a reopened buffer resumes after the last acknowledged record.
    #[test]
    fn ack_is_rewritten_in_place() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        for r in [b"one".as_slice(), b"two", b"three", b"four"] {
            b.append(r).unwrap();
        }
        let (first, _) = b.peek().unwrap().unwrap();
        b.ack(first).unwrap();
        let inode = fs::metadata(ack_path(dir.path())).unwrap().ino();
        let (second, _) = b.peek().unwrap().unwrap();
        b.ack(second).unwrap();
        let meta = fs::metadata(ack_path(dir.path())).unwrap();
        assert_eq!(meta.ino(), inode, "rewritten in place, not replaced");
        assert_eq!(meta.len(), 51);
        assert!(!dir.path().join("ack.tmp").exists());
        drop(b);
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        assert_eq!(drain(&mut b), vec![b"three".to_vec(), b"four".to_vec()]);
    }

    /// A torn `ack` (its CRC does not match) resends what the segments hold — duplicates,
    /// never a loss; an `ack` in the format before issue 12 (no CRC) is still read.
    #[test]
    fn torn_ack_resends_and_old_ack_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        for r in [b"one".as_slice(), b"two", b"three"] {
            b.append(r).unwrap();
        }
        for _ in 0..2 {
            let (id, _) = b.peek().unwrap().unwrap();
            b.ack(id).unwrap();
        }
        let (third, _) = b.peek().unwrap().unwrap();
        drop(b);
        let line = fs::read_to_string(ack_path(dir.path())).unwrap();
        assert_eq!(parse_ack(&line), Some(third));

        // A digit of the offset from an older write: the CRC catches it.
        let mut torn = line.clone().into_bytes();
        torn[40] = if torn[40] == b'0' { b'1' } else { b'0' };
        fs::write(ack_path(dir.path()), &torn).unwrap();
        let b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        assert_eq!(b.pending_records(), 3);
        drop(b);

        fs::write(
            ack_path(dir.path()),
            format!("{} {}\n", third.segment, third.offset),
        )
        .unwrap();
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        assert_eq!(drain(&mut b), vec![b"three".to_vec()]);
    }
}
