//! The countdown every chunk decoder shares: a chunk's stream has no end marker, so its
//! sample count (kept beside the stream) says when to stop, and a stream that ends early
//! ends the iteration instead of failing.

use crate::model::Sample;

/// Decodes one sample after another from a chunk's stream. It is only asked for as many
/// samples as the chunk holds; `None` means the stream ended early or is corrupt.
pub(crate) trait DecodeSample {
    /// The next sample, or `None` when the stream cannot give one.
    fn decode_next(&mut self) -> Option<Sample>;
}

/// A chunk decoder limited to the chunk's sample count. Generic rather than a trait
/// object so each decoder's loop is compiled on its own, with no indirect call per sample.
#[derive(Debug, Clone)]
pub(crate) struct Counted<D> {
    decoder: D,
    left: u16,
}

impl<D: DecodeSample> Counted<D> {
    /// Reads at most `count` samples from `decoder`.
    pub(super) fn new(decoder: D, count: u16) -> Counted<D> {
        Counted { decoder, left: count }
    }
}

impl<D: DecodeSample> Iterator for Counted<D> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.left == 0 {
            return None;
        }
        match self.decoder.decode_next() {
            Some(s) => {
                self.left -= 1;
                Some(s)
            }
            None => {
                self.left = 0;
                None
            }
        }
    }
}
