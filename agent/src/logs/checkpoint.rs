//! Persisted read positions of tailed files, so a restarted agent resumes where the last
//! shipped record ended. Keyed by file identity (device, inode), not by name, so a rotated
//! file is recognised under its new name. Written atomically (temporary file, fsync, rename);
//! the rename is not fsynced, so after a power cut they may be one save behind.

use std::collections::BTreeMap;
use std::io::Write;
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
    /// Reads `path`; a missing or unreadable file means no checkpoints (with a warning if
    /// unreadable).
    pub fn load(path: &Path) -> Checkpoints {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Checkpoints::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "log checkpoints unreadable; starting over");
                return Checkpoints::default();
            }
        };
        let mut files = BTreeMap::new();
        for line in text.lines() {
            // dev ino offset path (the path last, it may hold spaces)
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

    /// Writes the checkpoints atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        let mut out = String::new();
        for (id, (name, offset)) in &self.files {
            out.push_str(&format!(
                "{} {} {} {}\n",
                id.dev,
                id.ino,
                offset,
                name.replace('\n', " ")
            ));
        }
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(out.as_bytes())?;
        file.sync_all()?;
        // No fsync of the directory after the rename (issue 12: one fsync less per round). A
        // power cut may then leave the previous checkpoints, complete since they were fsynced
        // too: the records after them are read and sent again — duplicates, never a loss.
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints");
        assert_eq!(Checkpoints::load(&path), Checkpoints::default());
        let mut c = Checkpoints::default();
        c.files
            .insert(FileId { dev: 1, ino: 2 }, ("/var/log/my app.log".into(), 300));
        c.save(&path).unwrap();
        assert_eq!(Checkpoints::load(&path), c);
    }
}
