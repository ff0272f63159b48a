//! One tailed file: reads what was appended since the last poll through a handle kept open (so
//! lines written to a file after it was renamed away are still read), notices truncation
//! (copytruncate), splits lines and assembles multiline records. It tracks the offset where the
//! first unshipped record starts, which is what gets checkpointed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::checkpoint::FileId;
use super::parse::multiline::{JoinState, Joiner};

/// Most bytes read from one file per poll (the next poll continues at once).
pub const READ_CHUNK: usize = 4 * 1024 * 1024;
/// Longest record kept; longer lines are cut.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// A file being tailed.
#[derive(Debug)]
pub struct TailedFile {
    /// Identity (device, inode).
    pub id: FileId,
    /// The path it was found under.
    pub path: String,
    file: File,
    /// Bytes of the file consumed so far (complete lines and `partial`).
    read_offset: u64,
    /// An incomplete last line.
    partial: Vec<u8>,
    /// Multiline record being assembled, with the offset where it starts.
    pending: Option<(String, u64)>,
    /// What the joiner knows about `pending`.
    join: JoinState,
    /// Most lines in one record.
    max_lines: usize,
    /// Offset where the first record not yet handed out starts.
    committed: u64,
    /// The path no longer names this file (renamed away or deleted).
    pub rotated: bool,
}

/// What one poll of a file produced.
#[derive(Debug, Default)]
pub struct Polled {
    /// Finished records.
    pub records: Vec<String>,
    /// Bytes read.
    pub bytes: usize,
    /// The read stopped at [`READ_CHUNK`]: more is waiting.
    pub more: bool,
}

impl TailedFile {
    /// Opens `path` and positions it at `offset` (0 if the file is now shorter); records get
    /// at most `max_lines` lines.
    pub fn open(path: &str, id: FileId, offset: u64, max_lines: usize) -> std::io::Result<TailedFile> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let start = if offset <= len { offset } else { 0 };
        file.seek(SeekFrom::Start(start))?;
        Ok(TailedFile {
            id,
            path: path.to_string(),
            file,
            read_offset: start,
            partial: Vec::new(),
            pending: None,
            join: JoinState::default(),
            max_lines: max_lines.max(1),
            committed: start,
            rotated: false,
        })
    }

    /// Offset to checkpoint: everything before it has been handed out as records.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Goes back to `offset`, forgetting what was read after it (the records from the last
    /// poll could not be stored and will be read again).
    pub fn rewind(&mut self, offset: u64) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.read_offset = offset;
        self.committed = offset;
        self.partial.clear();
        self.pending = None;
        self.join = JoinState::default();
        Ok(())
    }

    /// Reads new data and returns the records it completes. When nothing new arrived, an open
    /// multiline record is finished (nothing can continue it any more), and on a rotated file
    /// an unterminated last line is too.
    pub fn poll(&mut self, start: &Joiner) -> std::io::Result<Polled> {
        let mut polled = Polled::default();
        let len = self.file.metadata()?.len();
        if len < self.read_offset {
            // Truncated in place (copytruncate): finish what we had, start over at 0.
            tracing::info!(path = %self.path, "log file truncated; reading from its start");
            self.finish_partial(start, &mut polled.records);
            self.flush_pending(&mut polled.records);
            self.file.seek(SeekFrom::Start(0))?;
            self.read_offset = 0;
            self.committed = 0;
        }
        let limit = u64::try_from(READ_CHUNK).unwrap_or(u64::MAX);
        // Sized for what the file grew by, so the read does not grow the buffer by doubling.
        let grown = len.saturating_sub(self.read_offset).min(limit);
        let mut chunk = Vec::with_capacity(usize::try_from(grown).unwrap_or(READ_CHUNK));
        (&mut self.file).take(limit).read_to_end(&mut chunk)?;
        polled.bytes = chunk.len();
        polled.more = chunk.len() >= READ_CHUNK;
        let mut line_start = self.read_offset - self.partial.len() as u64;
        self.read_offset += chunk.len() as u64;
        let mut rest = chunk.as_slice();
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            let (line, after) = rest.split_at(pos);
            rest = after.get(1..).unwrap_or_default();
            self.partial.extend_from_slice(line);
            let end = line_start + self.partial.len() as u64 + 1;
            let text = take_text(&mut self.partial);
            self.line(text, line_start, end, start, &mut polled.records);
            line_start = end;
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_RECORD_BYTES {
            let end = line_start + self.partial.len() as u64;
            let text = take_text(&mut self.partial);
            self.line(text, line_start, end, start, &mut polled.records);
        }
        if polled.bytes == 0 {
            if self.rotated {
                self.finish_partial(start, &mut polled.records);
            }
            self.flush_pending(&mut polled.records);
        }
        Ok(polled)
    }

    fn finish_partial(&mut self, start: &Joiner, records: &mut Vec<String>) {
        if self.partial.is_empty() {
            return;
        }
        let begin = self.read_offset - self.partial.len() as u64;
        let end = self.read_offset;
        let text = take_text(&mut self.partial);
        self.line(text, begin, end, start, records);
    }

    fn flush_pending(&mut self, records: &mut Vec<String>) {
        if let Some((text, _)) = self.pending.take() {
            records.push(trim_end_lines(text));
            self.committed = self.read_offset - self.partial.len() as u64;
        }
    }

    /// One complete line spanning `[begin, end)` of the file.
    fn line(&mut self, text: String, begin: u64, end: u64, start: &Joiner, records: &mut Vec<String>) {
        if let Joiner::Off = start {
            records.push(text);
            self.committed = end;
            return;
        }
        if let Some((record, _)) = self.pending.as_mut() {
            let fits = self.join.lines < self.max_lines && record.len() + text.len() < MAX_RECORD_BYTES;
            if fits && start.continues(&mut self.join, &text) {
                record.push('\n');
                record.push_str(&text);
                return;
            }
        }
        if let Some((previous, _)) = self.pending.take() {
            records.push(trim_end_lines(previous));
        }
        self.committed = begin;
        self.join.start(&text);
        self.pending = Some((text, begin));
    }
}

/// A record without the blank lines a traceback left at its end.
fn trim_end_lines(mut text: String) -> String {
    while text.ends_with('\n') {
        text.pop();
    }
    text
}

fn take_text(bytes: &mut Vec<u8>) -> String {
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    // Valid UTF-8 (nearly every line) becomes the record without a copy: the line's bytes
    // are moved out and the next line starts a new buffer of its own size.
    let mut text = match String::from_utf8(std::mem::take(bytes)) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    if text.len() > MAX_RECORD_BYTES {
        let mut cut = MAX_RECORD_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_partials_multiline_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        append(&path, "one\ntwo\r\nthr");
        let p = path.to_str().unwrap();
        let mut f = TailedFile::open(p, FileId { dev: 0, ino: 0 }, 0, 100).unwrap();
        assert_eq!(f.poll(&Joiner::Off).unwrap().records, vec!["one", "two"]);
        assert_eq!(f.committed(), 9);
        append(&path, "ee\n");
        assert_eq!(f.poll(&Joiner::Off).unwrap().records, vec!["three"]);
        assert_eq!(f.committed(), 15);

        let start = Joiner::Start(regex::Regex::new(r"^\d{4}-").unwrap());
        append(&path, "2026-01-01 boom\n  at a()\n  at b()\n2026-01-01 next\n");
        let polled = f.poll(&start).unwrap();
        assert_eq!(polled.records, vec!["2026-01-01 boom\n  at a()\n  at b()"]);
        // "next" is still open: the checkpoint stays at its start.
        assert_eq!(f.committed(), 15 + 16 + 9 + 9);
        assert_eq!(
            f.poll(&start).unwrap().records,
            vec!["2026-01-01 next"],
            "flushed when idle"
        );

        // copytruncate
        std::fs::write(&path, "").unwrap();
        append(&path, "after\n");
        assert_eq!(f.poll(&Joiner::Off).unwrap().records, vec!["after"]);
        assert_eq!(f.committed(), 6);
        f.rewind(0).unwrap();
        assert_eq!(f.poll(&Joiner::Off).unwrap().records, vec!["after"]);

        // Invalid UTF-8 is replaced, valid lines around it are kept as they are.
        let mut raw = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(b"ok\xff\nnext\n").unwrap();
        assert_eq!(f.poll(&Joiner::Off).unwrap().records, vec!["ok\u{fffd}", "next"]);
    }
}
