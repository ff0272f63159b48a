//! Persisted read positions of tailed files, so a restarted agent resumes where the last
//! shipped record ended. Keyed by file identity (device, inode), not by name, so a rotated
//! file is recognised under its new name.
//!
//! Written in place, alternately into two slot files `<name>.0` and `<name>.1`, each ending in
//! a trailer line `#<sequence> <crc32>` and fdatasynced (issue 12: creating, fsyncing and
//! renaming a temporary file every poll was a visible share of the agent's CPU). A write torn
//! by a power cut spoils only the slot being written; the other still holds the save before,
//! so a restart is at most one save behind — those records are sent again, never skipped.
//! Offsets are written at a fixed width, so a slot keeps its size while the set of files does.
//! The single file `<name>` of earlier versions (replaced atomically) is read when no slot is.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A file's identity on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

/// Offsets of the end of the last shipped record, per file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Checkpoints {
    /// `FileId` → (last known path, offset).
    pub files: BTreeMap<FileId, (String, u64)>,
}

impl Checkpoints {
    /// The last complete save under `path` (the newer valid slot, else the file of earlier
    /// versions); none when nothing was saved (with a warning if something is unreadable).
    pub fn load(path: &Path) -> Checkpoints {
        let mut newest: Option<(u64, Checkpoints)> = None;
        for slot in 0..2 {
            let slot_path = slot_path(path, slot);
            let Some(text) = read(&slot_path) else {
                continue;
            };
            match parse_slot(&text) {
                Some((seq, c)) if newest.as_ref().is_none_or(|(n, _)| seq > *n) => newest = Some((seq, c)),
                Some(_) => {}
                None => {
                    tracing::warn!(path = %slot_path.display(), "log checkpoint slot torn or unreadable; using the other")
                }
            }
        }
        match newest {
            Some((_, c)) => c,
            None => read(path).map(|text| parse_lines(&text)).unwrap_or_default(),
        }
    }

    /// The slot text: one line per file, then the trailer.
    fn slot_text(&self, seq: u64) -> String {
        let mut out = String::new();
        for (id, (name, offset)) in &self.files {
            out.push_str(&format!(
                "{} {} {:020} {}\n",
                id.dev,
                id.ino,
                offset,
                name.replace('\n', " ")
            ));
        }
        out.push_str(&format!("#{seq:020}"));
        let crc = crc32fast::hash(out.as_bytes());
        out.push_str(&format!(" {crc:08x}\n"));
        out
    }
}

/// Writes the checkpoints of one section into its two slots in turn, keeping them open.
#[derive(Debug)]
pub struct CheckpointWriter {
    path: PathBuf,
    slots: [Option<File>; 2],
    /// Sequence number of the last save.
    seq: u64,
}

impl CheckpointWriter {
    /// A writer continuing after the saves found under `path`.
    pub fn new(path: &Path) -> CheckpointWriter {
        let mut seq = 0;
        for slot in 0..2 {
            if let Some((s, _)) = read(&slot_path(path, slot)).as_deref().and_then(parse_slot) {
                seq = seq.max(s);
            }
        }
        CheckpointWriter {
            path: path.to_path_buf(),
            slots: [None, None],
            seq,
        }
    }

    /// Saves `checkpoints` over the older slot; when this returns `Ok` they are on disk.
    pub fn save(&mut self, checkpoints: &Checkpoints) -> std::io::Result<()> {
        let seq = self.seq + 1;
        let slot = usize::from(seq % 2 == 1);
        let text = checkpoints.slot_text(seq);
        let slot_path = slot_path(&self.path, slot);
        let Some(file) = self.slots.get_mut(slot) else {
            return Ok(());
        };
        let created = file.is_none() && !slot_path.exists();
        if file.is_none() {
            *file = Some(
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&slot_path)?,
            );
        }
        let Some(f) = file.as_ref() else {
            return Ok(());
        };
        let written = f.write_all_at(text.as_bytes(), 0).and_then(|()| {
            if f.metadata()?.len() != text.len() as u64 {
                f.set_len(text.len() as u64)?;
            }
            f.sync_data()
        });
        if let Err(e) = written {
            // Opened again next time.
            *file = None;
            return Err(e);
        }
        if created {
            // A new slot's name survives a power cut (twice per data directory, not per save).
            if let Some(dir) = slot_path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        self.seq = seq;
        Ok(())
    }
}

/// `<path>.<slot>`.
fn slot_path(path: &Path, slot: usize) -> PathBuf {
    PathBuf::from(format!("{}.{slot}", path.display()))
}

/// The text of `path`; `None` when missing, or unreadable (with a warning).
fn read(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "log checkpoints unreadable");
            None
        }
    }
}

/// A slot's sequence number and checkpoints; `None` unless the CRC of its first trailer
/// matches what precedes it (a longer earlier save may follow it until the file is cut).
fn parse_slot(text: &str) -> Option<(u64, Checkpoints)> {
    let at = if text.starts_with('#') {
        0
    } else {
        text.find("\n#")? + 1
    };
    let lines = text.get(..at)?;
    let trailer = text.get(at..)?.lines().next()?;
    let (covered, crc) = trailer.split_once(' ')?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(lines.as_bytes());
    hasher.update(covered.as_bytes());
    if u32::from_str_radix(crc, 16).ok()? != hasher.finalize() {
        return None;
    }
    Some((covered.strip_prefix('#')?.parse().ok()?, parse_lines(lines)))
}

/// `dev ino offset path` lines (the path last, it may hold spaces).
fn parse_lines(text: &str) -> Checkpoints {
    let mut files = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let dev = parts.next().and_then(|p| p.parse().ok());
        let ino = parts.next().and_then(|p| p.parse().ok());
        let offset = parts.next().and_then(|p| p.parse().ok());
        if let (Some(dev), Some(ino), Some(offset)) = (dev, ino, offset) {
            files.insert(
                FileId { dev, ino },
                (parts.next().unwrap_or_default().to_string(), offset),
            );
        }
    }
    Checkpoints { files }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample(offset: u64) -> Checkpoints {
        let mut c = Checkpoints::default();
        c.files
            .insert(FileId { dev: 1, ino: 2 }, ("/var/log/my app.log".into(), offset));
        c.files
            .insert(FileId { dev: 1, ino: 3 }, ("/var/log/b.log".into(), 7));
        c
    }

    /// Saves alternate between the slots, rewritten in place at a steady size; a new writer
    /// continues the sequence, and the newest save is what loads.
    #[test]
    fn saves_alternate_in_place_and_the_newest_loads() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints");
        assert_eq!(Checkpoints::load(&path), Checkpoints::default());
        let mut w = CheckpointWriter::new(&path);
        w.save(&sample(300)).unwrap();
        w.save(&sample(400)).unwrap();
        assert_eq!(Checkpoints::load(&path), sample(400));
        let (ino, len) = {
            let m = std::fs::metadata(slot_path(&path, 1)).unwrap();
            (m.ino(), m.len())
        };
        w.save(&sample(5_000_000)).unwrap();
        let m = std::fs::metadata(slot_path(&path, 1)).unwrap();
        assert_eq!((m.ino(), m.len()), (ino, len), "same file, same size");
        assert_eq!(Checkpoints::load(&path), sample(5_000_000));

        let mut w = CheckpointWriter::new(&path);
        w.save(&sample(6_000_000)).unwrap();
        assert_eq!(Checkpoints::load(&path), sample(6_000_000));
        // Fewer files: the slot is cut to the new text.
        let mut one = Checkpoints::default();
        one.files.insert(FileId { dev: 1, ino: 9 }, ("/x.log".into(), 1));
        w.save(&one).unwrap();
        assert_eq!(Checkpoints::load(&path), one);
    }

    /// A torn slot (any byte of it wrong) is passed over for the other, one save older;
    /// with both unreadable, the single file of earlier versions is read.
    #[test]
    fn a_torn_slot_falls_back_to_the_save_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints");
        let mut w = CheckpointWriter::new(&path);
        w.save(&sample(300)).unwrap();
        w.save(&sample(400)).unwrap();
        let newest = slot_path(&path, 0);
        let good = std::fs::read(&newest).unwrap();
        for i in 0..good.len() {
            let mut torn = good.clone();
            torn[i] ^= 0x01;
            std::fs::write(&newest, &torn).unwrap();
            let loaded = Checkpoints::load(&path);
            assert!(
                loaded == sample(300) || loaded == sample(400),
                "byte {i}: {loaded:?}"
            );
        }
        std::fs::write(&newest, &good[..good.len() / 2]).unwrap();
        assert_eq!(Checkpoints::load(&path), sample(300));

        std::fs::write(slot_path(&path, 1), "garbage").unwrap();
        std::fs::write(&newest, "").unwrap();
        std::fs::write(&path, "1 2 300 /var/log/my app.log\n1 3 7 /var/log/b.log\n").unwrap();
        assert_eq!(Checkpoints::load(&path), sample(300));
    }
}
