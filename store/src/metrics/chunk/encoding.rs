//! Which of the two encodings a chunk's stream is in, and the decoder of either: what the
//! open chunk and closed chunks share to be read.

use super::scaled::{ScaledDecoder, ScaledSamples};
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
