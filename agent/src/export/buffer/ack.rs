//! Acknowledging records: how the `ack` file (format in `ack_file`) follows delivery.
//!
//! The sender acknowledges a burst of delivered records with one write of the file
//! ([`DiskBuffer::ack_and_peek`]): the file may lag behind what was delivered by at most
//! [`ACK_SAVE_EVERY`] records, and only while more records are waiting. A crash in that lag
//! resends those records — duplicates, never a loss: what the `ack` file says was delivered
//! always was.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use super::ack_file::{ack_line, replace_ack, RecordId, ACK_SAVE_EVERY};
use super::durable::io_err;
use super::{DiskBuffer, FRAME_LEN};
use crate::error::BufferError;

impl DiskBuffer {
    /// Marks the oldest record (which must be `id`) as delivered and persists that fact.
    /// An id that is no longer the oldest (its segment was dropped meanwhile) is ignored.
    pub fn ack(&mut self, id: RecordId) -> Result<(), BufferError> {
        self.ack_in_memory(id)?;
        self.save_ack()
    }

    /// The sender's step between two records: acknowledges `delivered` (when given) and
    /// returns the next record to send. The `ack` file is written when nothing more is
    /// waiting, or once [`ACK_SAVE_EVERY`] records went unsaved; otherwise the next call
    /// carries the acknowledgement on (issue 12: one fdatasync per sent request, where a log
    /// round or a backlog sends several in a row).
    pub fn ack_and_peek(
        &mut self,
        delivered: Option<RecordId>,
    ) -> Result<Option<(RecordId, Vec<u8>)>, BufferError> {
        if let Some(id) = delivered {
            self.ack_in_memory(id)?;
        }
        let next = self.peek()?;
        let due = self
            .unsaved_ack
            .is_some_and(|(_, records)| records >= ACK_SAVE_EVERY);
        if next.is_none() || due {
            self.save_ack()?;
        }
        Ok(next)
    }

    /// Writes an acknowledgement [`DiskBuffer::ack_and_peek`] kept in memory, if any.
    pub fn save_ack(&mut self) -> Result<(), BufferError> {
        match self.unsaved_ack.take() {
            Some((id, _)) => self.write_ack(id),
            None => Ok(()),
        }
    }

    /// Takes the oldest record (which must be `id`) off the pending list; the `ack` file is
    /// written by [`DiskBuffer::save_ack`]. A segment emptied by it is deleted: an `ack` file
    /// still naming an older position makes a restart resend, never skip.
    fn ack_in_memory(&mut self, id: RecordId) -> Result<(), BufferError> {
        let Some(segment) = self.segments.front_mut() else {
            return Ok(());
        };
        if segment.id != id.segment || segment.pending.front().map(|p| p.0) != Some(id.offset) {
            return Ok(());
        }
        let Some((offset, len)) = segment.pending.pop_front() else {
            return Ok(());
        };
        let next = RecordId {
            segment: id.segment,
            offset: offset + FRAME_LEN + u64::from(len),
        };
        let emptied = segment.pending.is_empty();
        let records = self.unsaved_ack.map_or(0, |(_, n)| n);
        self.unsaved_ack = Some((next, records + 1));
        if emptied && self.segments.len() > 1 {
            self.remove_front_segment()?;
        }
        Ok(())
    }

    /// Persists `id` as the first unacknowledged record: in place when this run already wrote
    /// the file, else by replacing it atomically (it may hold an older, shorter format).
    fn write_ack(&mut self, id: RecordId) -> Result<(), BufferError> {
        let path = self.dir.join("ack");
        let line = ack_line(id);
        if let Some(file) = self.ack_file.as_ref() {
            let written = file
                .write_all_at(line.as_bytes(), 0)
                .and_then(|()| file.sync_data());
            return match written {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Replace the file whole next time.
                    self.ack_file = None;
                    Err(io_err(&path, e))
                }
            };
        }
        replace_ack(&self.dir, &line)?;
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        self.ack_file = Some(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::buffer::ack_file::{parse_ack, read_ack};
    use crate::export::buffer::tests::drain;
    use crate::export::buffer::DiskBuffer;
    use std::fs;
    use std::path::Path;
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

    /// `ack_and_peek` writes the `ack` file once per burst: reopened in the middle of one the
    /// buffer resends what was delivered since the last write (never skips an undelivered
    /// record); after [`ACK_SAVE_EVERY`] records the file is written although more wait, and
    /// once nothing more waits it names the end.
    #[test]
    fn acks_of_a_burst_are_written_when_it_ends_or_every_few_records() {
        let dir = tempfile::tempdir().unwrap();
        let reopen = || DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        let mut b = reopen();
        let n = ACK_SAVE_EVERY + 4;
        for i in 0..n {
            b.append(format!("r{i}").as_bytes()).unwrap();
        }
        let mut next = b.ack_and_peek(None).unwrap();
        for _ in 0..3 {
            let (id, _) = next.unwrap();
            next = b.ack_and_peek(Some(id)).unwrap();
        }
        assert_eq!(b.pending_records(), n - 3);
        assert!(!ack_path(dir.path()).exists(), "not written while more wait");
        assert_eq!(reopen().pending_records(), n, "a crash now resends the three");

        for _ in 3..ACK_SAVE_EVERY {
            let (id, _) = next.unwrap();
            next = b.ack_and_peek(Some(id)).unwrap();
        }
        let (waiting, payload) = next.clone().unwrap();
        assert_eq!(payload, format!("r{ACK_SAVE_EVERY}").into_bytes());
        assert_eq!(
            read_ack(dir.path()).unwrap(),
            waiting,
            "written after {ACK_SAVE_EVERY}"
        );
        assert_eq!(reopen().pending_records(), n - ACK_SAVE_EVERY);

        while let Some((id, _)) = next {
            next = b.ack_and_peek(Some(id)).unwrap();
        }
        drop(b);
        assert_eq!(reopen().pending_records(), 0, "written once nothing waits");
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
