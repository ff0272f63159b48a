//! A full chunk: its stream, in whichever of the two encodings was smaller when it closed,
//! and the range and count a reader needs to skip or decode it.

use super::scaled::{self, ScaledDecoder, ScaledSamples};
use super::xor::{OpenChunk, Samples, XorDecoder};
use crate::model::Sample;

/// How a closed chunk's stream is encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Encoding {
    /// As it was appended (`xor`).
    Xor,
    /// Values as decimal-scaled integers (`scaled`).
    Scaled,
}

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
    /// Closes `open`: its samples are encoded again as a scaled chunk, which is kept when
    /// it is smaller than the XOR stream (each in an allocation of its exact size). A
    /// chunk closes once per [`super::xor::MAX_SAMPLES`] appends, so the second encoding
    /// costs little per sample.
    pub(crate) fn from_open(open: OpenChunk) -> ClosedChunk {
        let samples: Vec<Sample> = open.iter().collect();
        let (data, min_t, max_t, count) = open.into_parts();
        debug_assert_eq!(samples.len(), usize::from(count));
        let mut chunk = ClosedChunk {
            data,
            min_t,
            max_t,
            count,
            encoding: Encoding::Xor,
        };
        if let Some(smaller) = scaled::encode(&samples).filter(|s| s.len() < chunk.data.len()) {
            chunk.data = smaller;
            chunk.encoding = Encoding::Scaled;
        }
        chunk
    }

    /// Oldest timestamp in the chunk.
    pub(crate) fn min_t(&self) -> i64 {
        self.min_t
    }

    /// Newest timestamp in the chunk.
    pub(crate) fn max_t(&self) -> i64 {
        self.max_t
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
        match self.encoding {
            Encoding::Xor => ChunkSamples::Xor(XorDecoder::samples(&self.data, self.count)),
            Encoding::Scaled => ChunkSamples::Scaled(ScaledDecoder::samples(&self.data, self.count)),
        }
    }
}

/// The decoder of a closed chunk's samples, whichever its encoding.
#[derive(Debug, Clone)]
pub(crate) enum ChunkSamples<'a> {
    Xor(Samples<'a>),
    Scaled(ScaledSamples<'a>),
}

impl Iterator for ChunkSamples<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        match self {
            ChunkSamples::Xor(s) => s.next(),
            ChunkSamples::Scaled(s) => s.next(),
        }
    }
}
