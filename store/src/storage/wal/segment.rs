//! WAL segment files: naming, listing, framing, and reading back with tail repair.
//!
//! A segment is a file named by an 8-digit sequence number holding records framed as
//! `[len u32 LE][crc32 u32 LE][payload]`, the CRC covering the payload. Segments are only
//! ever appended to; the writer starts a new one when the current one would pass the size
//! limit, at every open, and at every head cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::position::{self, AppliedPositions};

/// Bytes of the frame header before each payload.
pub(crate) const FRAME_HEADER: usize = 8;

/// Largest payload a frame may hold (the length field is a u32); the writer refuses bigger
/// records and the reader treats a bigger length as corruption.
pub(crate) const MAX_PAYLOAD: usize = u32::MAX as usize;

/// Path of segment number `n` in `dir`.
pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

/// Sorted (number, path) of the segment files in `dir`; other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() < 8 || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = name.parse::<u64>() {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Appends one framed record to `buf`.
pub(crate) fn frame(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// What reading a segment found.
pub(crate) struct SegmentContents {
    /// Payloads of the intact records, in order, without their ingest-log positions.
    pub payloads: Vec<Vec<u8>>,
    /// The highest ingest-log position per partition the records carried.
    pub positions: AppliedPositions,
    /// True when a short or corrupt record was found and the file was truncated before it.
    pub repaired: bool,
}

/// Reads every intact record of the segment at `path`. At the first short read, zero
/// length, oversize length or CRC mismatch the file is truncated to the end of the last
/// good record (and fsynced) so later writes and replays never see the damage again.
pub(crate) fn read_segment(path: &Path) -> io::Result<SegmentContents> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut payloads = Vec::new();
    let mut positions = AppliedPositions::default();
    let mut pos = 0usize;
    let mut good_end = 0usize;
    let mut damaged = false;
    while pos < data.len() {
        if data.len() - pos < FRAME_HEADER {
            damaged = true;
            break;
        }
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        let start = pos + FRAME_HEADER;
        if len == 0 || len > MAX_PAYLOAD || data.len() - start < len {
            damaged = true;
            break;
        }
        let payload = &data[start..start + len];
        if crc32fast::hash(payload) != crc {
            damaged = true;
            break;
        }
        let (carried, record) = position::unwrap(payload.to_vec());
        positions.merge(&carried);
        payloads.push(record);
        pos = start + len;
        good_end = pos;
    }
    if damaged {
        truncate(path, good_end as u64)?;
    }
    Ok(SegmentContents {
        payloads,
        positions,
        repaired: damaged,
    })
}

/// Cuts the file at `path` to `len` bytes and makes that durable.
pub(crate) fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn torn_and_corrupt_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let mut buf = Vec::new();
        frame(&mut buf, b"first");
        frame(&mut buf, b"second record");
        let good = buf.len();
        frame(&mut buf, b"third");
        fs::write(&path, &buf[..buf.len() - 2]).unwrap();
        let c = read_segment(&path).unwrap();
        assert!(c.repaired);
        assert_eq!(c.payloads, vec![b"first".to_vec(), b"second record".to_vec()]);
        assert_eq!(fs::metadata(&path).unwrap().len(), good as u64);

        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        fs::write(&path, &flipped).unwrap();
        let c = read_segment(&path).unwrap();
        assert!(c.repaired);
        assert_eq!(c.payloads.len(), 2);

        fs::write(&path, &buf).unwrap();
        let c = read_segment(&path).unwrap();
        assert!(!c.repaired);
        assert_eq!(c.payloads.len(), 3);
    }

    #[test]
    fn listing_ignores_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(segment_path(dir.path(), 2), b"").unwrap();
        fs::write(segment_path(dir.path(), 10), b"").unwrap();
        fs::write(dir.path().join("notes.txt"), b"").unwrap();
        let nums: Vec<u64> = list_segments(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(nums, vec![2, 10]);
    }
}
