//! A full chunk: its stream, in the encoding its open chunk ended in (re-encoded in the
//! other scaled value mode when that is smaller), and the range and count a reader needs
//! to skip or decode it.

use super::encoding::{ChunkSamples, Encoding};
use super::open::OpenChunk;
use crate::model::Sample;

/// A full chunk (see the module documentation).
#[derive(Debug)]
pub(crate) struct ClosedChunk {
    data: Box<[u8]>,
    min_t: i64,
    max_t: i64,
    count: u16,
    encoding: Encoding,
}

impl ClosedChunk {
    /// Closes `open`, in an allocation of its stream's exact size. A scaled chunk whose
    /// value mode was chosen on its first samples is encoded again in the other mode when
    /// all its samples say that is cheaper and the stream is smaller (a chunk closes once per
    /// [`super::open::MAX_SAMPLES`] appends, so this costs little per sample).
    pub(crate) fn from_open(open: OpenChunk) -> ClosedChunk {
        let open = open.in_cheaper_mode().unwrap_or(open);
        let encoding = open.encoding();
        let (data, min_t, max_t, count) = open.into_parts();
        ClosedChunk {
            data,
            min_t,
            max_t,
            count,
            encoding,
        }
    }

    /// Oldest timestamp in the chunk.
    pub(crate) fn min_t(&self) -> i64 {
        self.min_t
    }

    /// Newest timestamp in the chunk.
    pub(crate) fn max_t(&self) -> i64 {
        self.max_t
    }

    /// Samples in the chunk.
    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    /// Bytes of the chunk's stream.
    pub(crate) fn data_len(&self) -> usize {
        self.data.len()
    }

    /// The encoding the chunk was kept in.
    #[cfg(test)]
    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The chunk's samples in order.
    pub(crate) fn iter(&self) -> ChunkSamples<'_> {
        self.encoding.samples(&self.data, self.count)
    }

    /// Appends the chunk's samples in `[start, end]` to `out`.
    pub(crate) fn push_in_range(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        self.encoding
            .push_in_range(&self.data, self.count, start, end, out);
    }
}
