//! Which of the two encodings a chunk's stream is in, and the decoder of either: what the
//! open chunk and closed chunks share to be read.

use super::scaled::{self, ScaledDecoder, ScaledSamples};
use super::xor::{XorDecoder, XorSamples};
use crate::model::Sample;

/// How a chunk's stream is encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Encoding {
    /// Values as the XOR of their bits with the previous value's (`xor`).
    Xor,
    /// Values as decimal-scaled integers (`scaled`).
    Scaled,
}

impl Encoding {
    /// The first `count` samples of `bytes`, a stream in this encoding.
    pub(super) fn samples(self, bytes: &[u8], count: u16) -> ChunkSamples<'_> {
        match self {
            Encoding::Xor => ChunkSamples::Xor(XorDecoder::samples(bytes, count)),
            Encoding::Scaled => ChunkSamples::Scaled(ScaledDecoder::samples(bytes, count)),
        }
    }

    /// Appends the samples in `[start, end]` of the first `count` of `bytes`, a stream in
    /// this encoding, to `out`: what a query reads, decoded in one loop per chunk.
    pub(super) fn push_in_range(self, bytes: &[u8], count: u16, start: i64, end: i64, out: &mut Vec<Sample>) {
        match self {
            Encoding::Xor => {
                for s in XorDecoder::samples(bytes, count) {
                    if s.timestamp_ms > end {
                        return;
                    }
                    if s.timestamp_ms >= start {
                        out.push(s);
                    }
                }
            }
            Encoding::Scaled => scaled::push_in_range(bytes, count, start, end, out),
        }
    }
}

/// The decoder of a chunk's samples, whichever its encoding.
#[derive(Debug, Clone)]
pub(crate) enum ChunkSamples<'a> {
    Xor(XorSamples<'a>),
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
