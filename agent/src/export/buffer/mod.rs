//! Bounded on-disk buffer between the collectors and the network.
//!
//! Records (encoded OTLP requests) are appended to segment files `<id>.seg` under the buffer
//! directory, each framed as `len: u32 LE | crc32(payload): u32 LE | payload` after an 8-byte
//! segment header. Every append is fsynced before it returns (a batch of records once, after
//! its last one). A record leaves the buffer only
//! through [`DiskBuffer::ack`], called once the collector accepted it; the acknowledged position
//! is persisted in the file `ack`, so a restarted agent resumes exactly after the last
//! acknowledged record. The first acknowledgement of a run replaces the file atomically
//! (temporary file, fsync, rename); later ones overwrite its one fixed-width line in place and
//! fdatasync it (issue 12: the rename and two fsyncs per request were a visible share of the
//! agent's CPU). The line carries a CRC: a write torn by a power cut is detected and everything
//! still buffered is resent — duplicates, never a loss. When the files pass `max_bytes`, the
//! oldest segment is deleted and its unacknowledged records are counted as dropped (and their
//! items, through the counter given with [`DiskBuffer::with_item_counter`]).
//! A torn or corrupt tail (a crash mid-append) is cut off at open.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::BufferError;
use ack_file::{read_ack, read_ack_segment};
pub use ack_file::{RecordId, ACK_SAVE_EVERY};
use durable::{io_err, sync_dir};

mod ack;
mod ack_file;
mod durable;

const MAGIC: &[u8; 8] = b"DIDBAGT1";
const HEADER_LEN: u64 = 8;
const FRAME_LEN: u64 = 8;
/// Largest record accepted; a length field above it is treated as corruption.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
struct Segment {
    id: u64,
    size: u64,
    /// Unacknowledged records: (offset, payload length).
    pending: VecDeque<(u64, u32)>,
}

/// The buffer. Not thread-safe by itself; the exporter wraps it in a mutex.
#[derive(Debug)]
pub struct DiskBuffer {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    writer: Option<File>,
    /// The `ack` file once this run replaced it, rewritten in place from then on.
    ack_file: Option<File>,
    /// Acknowledged in memory, not yet written to the `ack` file (see
    /// [`DiskBuffer::ack_and_peek`]), and how many records that covers.
    unsaved_ack: Option<(RecordId, usize)>,
    dropped_records: u64,
    dropped_items: u64,
    count_items: Option<fn(&[u8]) -> u64>,
}

impl DiskBuffer {
    /// Opens (or creates) the buffer in `dir`, replaying what a previous run left.
    pub fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Result<DiskBuffer, BufferError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let ack = read_ack(dir)?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(".seg") {
                if let Ok(id) = stem.parse::<u64>() {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        let mut buffer = DiskBuffer {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes,
            segments: VecDeque::new(),
            writer: None,
            ack_file: None,
            unsaved_ack: None,
            dropped_records: 0,
            dropped_items: 0,
            count_items: None,
        };
        let last = ids.last().copied();
        for id in ids {
            let path = buffer.segment_path(id);
            if id < ack.segment {
                fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                continue;
            }
            let skip_before = if id == ack.segment { ack.offset } else { 0 };
            let segment = buffer.scan_segment(id, skip_before, Some(id) == last)?;
            buffer.segments.push_back(segment);
        }
        Ok(buffer)
    }

    /// Counts the items of records dropped when the buffer is full with `count` (given a
    /// record's payload), so the loss is reported in data points, spans and log records.
    pub fn with_item_counter(mut self, count: fn(&[u8]) -> u64) -> DiskBuffer {
        self.count_items = Some(count);
        self
    }

    pub(super) fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.seg"))
    }

    /// Reads a segment's frames; a bad frame ends the segment (truncated if it is the last).
    fn scan_segment(&mut self, id: u64, skip_before: u64, is_last: bool) -> Result<Segment, BufferError> {
        let path = self.segment_path(id);
        let data = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let mut pending = VecDeque::new();
        let mut pos = HEADER_LEN as usize;
        let header_ok = data.get(..HEADER_LEN as usize) == Some(MAGIC.as_slice());
        if header_ok {
            while let Some((len, next)) = check_frame(&data, pos) {
                if pos as u64 >= skip_before {
                    pending.push_back((pos as u64, len));
                }
                pos = next;
            }
        } else {
            pos = 0;
        }
        if pos < data.len() {
            tracing::warn!(segment = %path.display(), offset = pos, "export buffer: cutting off a torn or corrupt tail");
            if !is_last {
                // Records after a corrupt frame in an older segment cannot be found again.
                self.dropped_records += 1;
            }
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            file.set_len(pos as u64).map_err(|e| io_err(&path, e))?;
            file.sync_all().map_err(|e| io_err(&path, e))?;
        }
        Ok(Segment {
            id,
            size: pos as u64,
            pending,
        })
    }

    /// Appends one record and fsyncs it; then enforces the size bound.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), BufferError> {
        self.append_all_tagged(&[], &[payload])
    }

    /// Appends records and fsyncs once after the last one (issue 12: a log round's requests
    /// used to cost one fsync each). When this returns `Ok`, every record is on disk; on an
    /// error some of them may be buffered (and sent), so a caller that retries may send
    /// those twice — never lose them.
    pub fn append_all(&mut self, payloads: &[&[u8]]) -> Result<(), BufferError> {
        self.append_all_tagged(&[], payloads)
    }

    /// [`DiskBuffer::append_all`] of records that are `tag` followed by each payload, without
    /// copying the payloads to put the tag in front (they are whole OTLP requests).
    pub fn append_all_tagged(&mut self, tag: &[u8], payloads: &[&[u8]]) -> Result<(), BufferError> {
        for payload in payloads {
            self.write_frame(tag, payload)?;
        }
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        if let Err(e) = w.sync_data() {
            let path = self
                .segments
                .back()
                .map(|s| self.segment_path(s.id))
                .unwrap_or_else(|| self.dir.clone());
            self.writer = None;
            return Err(io_err(&path, e));
        }
        Ok(())
    }

    /// Writes one frame of the record `prefix` + `payload` (not yet fsynced), then enforces
    /// the size bound.
    fn write_frame(&mut self, prefix: &[u8], payload: &[u8]) -> Result<(), BufferError> {
        let record_len = prefix.len() + payload.len();
        if record_len > MAX_RECORD_BYTES {
            return Err(BufferError::TooLarge(record_len));
        }
        let frame_total = FRAME_LEN + record_len as u64;
        let need_new = match self.segments.back() {
            None => true,
            Some(s) => s.size == 0 || (s.size > HEADER_LEN && s.size + frame_total > self.segment_bytes),
        };
        if need_new {
            self.start_segment()?;
        } else if self.writer.is_none() {
            self.reopen_writer()?;
        }
        let (id, offset) = match self.segments.back() {
            Some(s) => (s.id, s.size),
            None => return Ok(()),
        };
        let path = self.segment_path(id);
        let mut crc = crc32fast::Hasher::new();
        crc.update(prefix);
        crc.update(payload);
        let mut head = Vec::with_capacity(FRAME_LEN as usize + prefix.len());
        head.extend_from_slice(&(record_len as u32).to_le_bytes());
        head.extend_from_slice(&crc.finalize().to_le_bytes());
        head.extend_from_slice(prefix);
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.write_all(&head).and_then(|()| w.write_all(payload)) {
                // Disk full or I/O error: forget the partial frame so the next append starts
                // at the last good offset (the writer is reopened there).
                let _ = w.set_len(offset);
                self.writer = None;
                return Err(io_err(&path, e));
            }
        }
        if let Some(s) = self.segments.back_mut() {
            s.size = offset + frame_total;
            s.pending.push_back((offset, record_len as u32));
        }
        self.enforce_limit()
    }

    fn start_segment(&mut self) -> Result<(), BufferError> {
        if let Some(w) = self.writer.take() {
            let _ = w.sync_all();
        }
        // An empty trailing segment (size 0 after a bad header) is replaced, not kept.
        if let Some(s) = self.segments.back() {
            if s.size <= HEADER_LEN && s.pending.is_empty() {
                let path = self.segment_path(s.id);
                let _ = fs::remove_file(&path);
                self.segments.pop_back();
            }
        }
        let id = self
            .segments
            .back()
            .map(|s| s.id + 1)
            .unwrap_or_else(|| read_ack_segment(&self.dir));
        let path = self.segment_path(id);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        file.write_all(MAGIC).map_err(|e| io_err(&path, e))?;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        sync_dir(&self.dir)?;
        self.writer = Some(file);
        self.segments.push_back(Segment {
            id,
            size: HEADER_LEN,
            pending: VecDeque::new(),
        });
        Ok(())
    }

    fn reopen_writer(&mut self) -> Result<(), BufferError> {
        if let Some(s) = self.segments.back() {
            let path = self.segment_path(s.id);
            let mut file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            file.seek(SeekFrom::Start(s.size)).map_err(|e| io_err(&path, e))?;
            self.writer = Some(file);
        }
        Ok(())
    }

    fn enforce_limit(&mut self) -> Result<(), BufferError> {
        while self.bytes() > self.max_bytes && self.segments.len() > 1 {
            if let Some(oldest) = self.segments.pop_front() {
                self.dropped_records += oldest.pending.len() as u64;
                let path = self.segment_path(oldest.id);
                let items = self.count_dropped_items(&path, &oldest);
                self.dropped_items += items;
                tracing::warn!(
                    records = oldest.pending.len(),
                    items,
                    max_bytes = self.max_bytes,
                    "export buffer full: dropped the oldest segment"
                );
                fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            }
        }
        Ok(())
    }

    /// Items in the unacknowledged records of a segment about to be deleted (0 without a
    /// counter or when the file cannot be read: the record count still tells the loss).
    fn count_dropped_items(&self, path: &Path, segment: &Segment) -> u64 {
        let Some(count) = self.count_items else {
            return 0;
        };
        let Ok(data) = fs::read(path) else {
            return 0;
        };
        let mut items = 0;
        for &(offset, len) in &segment.pending {
            let start = (offset + FRAME_LEN) as usize;
            if let Some(payload) = data.get(start..start + len as usize) {
                items += count(payload);
            }
        }
        items
    }

    /// Whether `id` is still the oldest unacknowledged record (it is not once the buffer
    /// dropped its segment for space).
    pub fn is_oldest(&self, id: RecordId) -> bool {
        self.segments
            .front()
            .is_some_and(|s| s.id == id.segment && s.pending.front().map(|p| p.0) == Some(id.offset))
    }

    /// The oldest unacknowledged record, if any.
    pub fn peek(&mut self) -> Result<Option<(RecordId, Vec<u8>)>, BufferError> {
        loop {
            let Some(segment) = self.segments.front() else {
                return Ok(None);
            };
            let Some(&(offset, len)) = segment.pending.front() else {
                if self.segments.len() == 1 {
                    return Ok(None);
                }
                self.remove_front_segment()?;
                continue;
            };
            let id = RecordId {
                segment: segment.id,
                offset,
            };
            let path = self.segment_path(segment.id);
            let mut file = File::open(&path).map_err(|e| io_err(&path, e))?;
            file.seek(SeekFrom::Start(offset + FRAME_LEN))
                .map_err(|e| io_err(&path, e))?;
            let mut payload = vec![0u8; len as usize];
            file.read_exact(&mut payload).map_err(|e| io_err(&path, e))?;
            return Ok(Some((id, payload)));
        }
    }

    pub(super) fn remove_front_segment(&mut self) -> Result<(), BufferError> {
        if let Some(s) = self.segments.pop_front() {
            let path = self.segment_path(s.id);
            fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
        }
        Ok(())
    }

    /// Records not yet acknowledged.
    pub fn pending_records(&self) -> usize {
        let mut n = 0;
        for s in &self.segments {
            n += s.pending.len();
        }
        n
    }

    /// Bytes of all segment files.
    pub fn bytes(&self) -> u64 {
        let mut n = 0;
        for s in &self.segments {
            n += s.size;
        }
        n
    }

    /// Bytes of the records not yet acknowledged (frames included).
    pub fn pending_bytes(&self) -> u64 {
        let mut n = 0;
        for s in &self.segments {
            for &(_, len) in &s.pending {
                n += FRAME_LEN + u64::from(len);
            }
        }
        n
    }

    /// Records dropped because the buffer was full (or found corrupt) since open.
    pub fn dropped_records(&self) -> u64 {
        self.dropped_records
    }

    /// Items of the records dropped because the buffer was full, as the item counter counted
    /// them.
    pub fn dropped_items(&self) -> u64 {
        self.dropped_items
    }
}

/// Validates the frame at `pos`; returns its payload length and the next position.
fn check_frame(data: &[u8], pos: usize) -> Option<(u32, usize)> {
    let len_bytes: [u8; 4] = data.get(pos..pos + 4)?.try_into().ok()?;
    let crc_bytes: [u8; 4] = data.get(pos + 4..pos + 8)?.try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes);
    if len as usize > MAX_RECORD_BYTES {
        return None;
    }
    let end = pos + FRAME_LEN as usize + len as usize;
    let payload = data.get(pos + FRAME_LEN as usize..end)?;
    if crc32fast::hash(payload) != u32::from_le_bytes(crc_bytes) {
        return None;
    }
    Some((len, end))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The buffer's one segment file in `dir`.
    fn only_segment(dir: &Path) -> PathBuf {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap()
    }

    /// Every pending payload, acknowledged one by one (the ack file's tests use it too).
    pub(super) fn drain(b: &mut DiskBuffer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((id, payload)) = b.peek().unwrap() {
            out.push(payload);
            b.ack(id).unwrap();
        }
        out
    }

    #[test]
    fn records_survive_reopen_until_acked() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 4096).unwrap();
        for i in 0..100u32 {
            b.append(format!("record-{i}").as_bytes()).unwrap();
        }
        let (id, first) = b.peek().unwrap().unwrap();
        assert_eq!(first, b"record-0");
        b.ack(id).unwrap();
        drop(b);
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 4096).unwrap();
        assert_eq!(b.pending_records(), 99);
        let all = drain(&mut b);
        assert_eq!(all.len(), 99);
        assert_eq!(all[0], b"record-1");
        assert_eq!(all[98], b"record-99");
        drop(b);
        // Acked segments are gone; new records after reopen still flow.
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 4096).unwrap();
        assert_eq!(b.pending_records(), 0);
        b.append(b"after").unwrap();
        drop(b);
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 4096).unwrap();
        assert_eq!(drain(&mut b), vec![b"after".to_vec()]);
    }

    #[test]
    fn full_buffer_drops_oldest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = DiskBuffer::open(dir.path(), 3 * 4096, 4096).unwrap();
        let payload = vec![7u8; 1000];
        for _ in 0..40 {
            b.append(&payload).unwrap();
        }
        assert!(b.bytes() <= 3 * 4096, "{}", b.bytes());
        assert!(b.dropped_records() > 0);
        assert_eq!(b.dropped_records() + b.pending_records() as u64, 40);
        assert_eq!(b.pending_bytes(), b.pending_records() as u64 * 1008);
    }

    #[test]
    fn full_buffer_counts_dropped_items_and_the_sender_sees_its_record_go() {
        let dir = tempfile::tempdir().unwrap();
        // Each payload's first byte says how many items it holds.
        let mut b = DiskBuffer::open(dir.path(), 3 * 4096, 4096)
            .unwrap()
            .with_item_counter(|p| u64::from(p[0]));
        b.append(&[5; 1000]).unwrap();
        let (oldest, _) = b.peek().unwrap().unwrap();
        assert!(b.is_oldest(oldest));
        for _ in 0..39 {
            b.append(&[3; 1000]).unwrap();
        }
        assert!(!b.is_oldest(oldest), "its segment was dropped");
        let dropped = b.dropped_records();
        assert_eq!(b.dropped_items(), 5 + (dropped - 1) * 3);
        // Acknowledging a record that is gone changes nothing.
        b.ack(oldest).unwrap();
        assert_eq!(b.dropped_records() + b.pending_records() as u64, 40);
    }

    #[test]
    fn torn_tail_is_cut_and_later_records_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        b.append(b"one").unwrap();
        b.append(b"two").unwrap();
        drop(b);
        let seg = only_segment(dir.path());
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        assert_eq!(b.pending_records(), 2);
        b.append(b"three").unwrap();
        assert_eq!(
            drain(&mut b),
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }

    #[test]
    fn corrupt_payload_is_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        b.append(b"good").unwrap();
        b.append(b"flipped").unwrap();
        drop(b);
        let seg = only_segment(dir.path());
        let mut data = fs::read(&seg).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(&seg, data).unwrap();
        let mut b = DiskBuffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        assert_eq!(drain(&mut b), vec![b"good".to_vec()]);
    }
}
