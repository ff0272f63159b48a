//! The chunk being appended to: up to [`MAX_SAMPLES`] samples of one series in one bit
//! stream, timestamps as delta-of-delta and values in one of two encodings (the format is
//! in the `chunk` module's documentation).
//!
//! A chunk starts scaled (`scaled`: values as decimal-scaled integers) when its first value
//! has a decimal form, which most metric values have; that is what keeps a head whose
//! series have less than one full chunk (1 M series × 30 min at 15 s) at ~1.3 bytes per
//! sample instead of ~3 as XOR. A value the chunk's scale does not fit re-encodes the
//! chunk: at the larger scale that fits every value so far, or as XOR when there is none
//! (a stale marker, NaN, ±Inf, −0.0, more than nine decimals), which the chunk then stays
//! until it closes. The value mode starts as delta and is chosen on the first
//! [`MODE_CHOSEN_AT`] samples (a counter at a steady rate takes fewer bits as
//! delta-of-delta); [`OpenChunk::in_cheaper_mode`] chooses again on all of them at close.
//! Re-encoding is bounded per chunk: at most nine rescales, one fall to XOR and one mode
//! change, each of at most [`MAX_SAMPLES`] samples.

use super::bits::{BitReader, BitWriter};
use super::encoding::{ChunkSamples, Encoding};
use super::fields::{unzigzag, write_dod, zigzag};
use super::scaled::{self, ScaledValues, ValueMode};
use super::xor::XorValues;
use crate::metrics::decimal;
use crate::model::Sample;

/// Samples after which a chunk is closed: Prometheus' figure, where the fixed cost of a
/// chunk (first timestamp and value, its entry in the series) is spread thin while a query
/// for a short range decodes at most this many samples per series and chunk.
pub(crate) const MAX_SAMPLES: u16 = 120;
/// Bytes after which a chunk is closed whatever its count, so that series of random
/// values (which do not compress) keep chunks a range query can skip.
pub(crate) const MAX_BYTES: usize = 1024;
/// Samples after which a scaled chunk's value mode is chosen by the differences so far.
const MODE_CHOSEN_AT: u16 = 16;

/// How the open chunk writes its values.
#[derive(Debug, Clone)]
enum Values {
    Scaled(ScaledValues),
    Xor(XorValues),
}

/// The chunk being appended to: the bit stream and the state its next sample is encoded
/// against.
#[derive(Debug)]
pub(crate) struct OpenChunk {
    w: BitWriter,
    count: u16,
    last_t: i64,
    /// Previous timestamp delta, as a wrapping difference.
    delta: u64,
    values: Values,
}

impl OpenChunk {
    /// A chunk holding `s` alone: scaled when its value has a decimal form, else XOR.
    pub(crate) fn new(s: Sample) -> OpenChunk {
        match scaled::smallest_scale(s.value) {
            Some((k, m)) => OpenChunk::start_scaled(s.timestamp_ms, k, ValueMode::Delta, m),
            None => OpenChunk::start_xor(s),
        }
    }

    fn start_scaled(t: i64, k: u8, mode: ValueMode, m: i64) -> OpenChunk {
        let mut w = BitWriter::default();
        ScaledValues::header(&mut w, k, mode);
        w.write_uvarint(zigzag(t));
        let values = Values::Scaled(ScaledValues::first(&mut w, k, mode, m));
        OpenChunk::started(w, t, values)
    }

    fn start_xor(s: Sample) -> OpenChunk {
        let mut w = BitWriter::default();
        w.write_uvarint(zigzag(s.timestamp_ms));
        let values = Values::Xor(XorValues::first(&mut w, s.value));
        OpenChunk::started(w, s.timestamp_ms, values)
    }

    fn started(w: BitWriter, t: i64, values: Values) -> OpenChunk {
        OpenChunk {
            w,
            count: 1,
            last_t: t,
            delta: 0,
            values,
        }
    }

    /// The chunk holding `samples` (non-empty, strictly increasing in timestamp) scaled at
    /// `k` with `scaled` their values at it, in `mode`.
    fn encode_scaled(samples: &[Sample], scaled: &[i64], k: u8, mode: ValueMode) -> Option<OpenChunk> {
        let (first, rest) = samples.split_first()?;
        let (m0, ms) = scaled.split_first()?;
        let mut chunk = OpenChunk::start_scaled(first.timestamp_ms, k, mode, *m0);
        for (s, m) in rest.iter().zip(ms) {
            chunk.write_timestamp(s.timestamp_ms);
            if let Values::Scaled(v) = &mut chunk.values {
                v.write(&mut chunk.w, *m, chunk.count);
            }
            chunk.count += 1;
        }
        Some(chunk)
    }

    /// The chunk holding `samples` (strictly increasing in timestamp; `None` when empty):
    /// scaled at the smallest scale they all fit, else XOR.
    pub(crate) fn encode(samples: &[Sample]) -> Option<OpenChunk> {
        if let Some((k, scaled)) = scaled::scale_all(samples) {
            let mode = if samples.len() >= usize::from(MODE_CHOSEN_AT) {
                scaled::cheaper_mode(&scaled)
            } else {
                ValueMode::Delta
            };
            return OpenChunk::encode_scaled(samples, &scaled, k, mode);
        }
        OpenChunk::encode_xor(samples)
    }

    /// The chunk holding `samples` (strictly increasing in timestamp; `None` when empty)
    /// as XOR.
    pub(super) fn encode_xor(samples: &[Sample]) -> Option<OpenChunk> {
        let (first, rest) = samples.split_first()?;
        let mut chunk = OpenChunk::start_xor(*first);
        for s in rest {
            chunk.push(*s);
        }
        Some(chunk)
    }

    /// Appends `s`, whose timestamp must be above [`OpenChunk::max_t`] (the caller checks;
    /// an older one would decode wrongly, not crash).
    pub(crate) fn push(&mut self, s: Sample) {
        let scaled = match &self.values {
            Values::Scaled(v) => match decimal::to_scaled(s.value, v.scale()) {
                Some(m) => Some(m),
                None => return self.encode_again_with(s),
            },
            Values::Xor(_) => None,
        };
        self.write_timestamp(s.timestamp_ms);
        match (&mut self.values, scaled) {
            (Values::Scaled(v), Some(m)) => v.write(&mut self.w, m, self.count),
            (Values::Xor(v), _) => v.write(&mut self.w, s.value),
            // Unreachable: a scaled chunk's value was scaled above.
            (Values::Scaled(_), None) => debug_assert!(false, "scaled chunk without a scaled value"),
        }
        self.count += 1;
        if self.count == MODE_CHOSEN_AT {
            if let Some(cheaper) = self.in_cheaper_mode() {
                *self = cheaper;
            }
            self.reserve_for_full_chunk();
        }
    }

    /// Sizes the stream, once [`MODE_CHOSEN_AT`] samples show what a sample takes, for
    /// the whole chunk at that rate (and a sixteenth more). Growing a quarter at a time
    /// instead moves every stream through ~10 allocator size classes on its way to 120
    /// samples, and while a head's series fill in step, the blocks each class leaves
    /// behind stay scattered through pages that are not reused (measured at 1 M series in
    /// `docs/benchmarks.md`). A stream that outgrows the estimate grows as before.
    fn reserve_for_full_chunk(&mut self) {
        let count = usize::from(self.count);
        let Some(first) = self.iter().next() else {
            return;
        };
        // What the first sample took: its timestamp and value are written whole.
        let first_len = OpenChunk::new(first).stream_len().min(self.stream_len());
        let rest = self.stream_len() - first_len;
        let full =
            first_len + (rest * (usize::from(MAX_SAMPLES) - 1)).div_ceil(count.saturating_sub(1).max(1));
        let total = (full + full / 16 + 4).min(MAX_BYTES + 16);
        self.w.reserve_total(total);
    }

    /// Re-encodes the chunk with `s` appended, at a scale every value fits or as XOR.
    fn encode_again_with(&mut self, s: Sample) {
        let mut samples: Vec<Sample> = self.iter().collect();
        debug_assert_eq!(samples.len(), usize::from(self.count));
        samples.push(s);
        if let Some(chunk) = OpenChunk::encode(&samples) {
            *self = chunk;
            if self.count >= MODE_CHOSEN_AT {
                self.reserve_for_full_chunk();
            }
        }
    }

    /// This chunk encoded in the other scaled value mode, when its samples take fewer bits
    /// in it and the stream is shorter; `None` when the chunk is best as it is (and when
    /// XOR).
    pub(crate) fn in_cheaper_mode(&self) -> Option<OpenChunk> {
        let Values::Scaled(v) = &self.values else {
            return None;
        };
        let (k, mode) = (v.scale(), v.mode());
        let samples: Vec<Sample> = self.iter().collect();
        let Some((_, scaled)) = scaled::scale_all(&samples).filter(|(j, _)| *j == k) else {
            // Unreachable: a scaled chunk's values fit its scale, and no smaller one (a
            // chunk is rescaled only when a value needs it).
            debug_assert!(false, "scaled chunk whose values do not have its scale");
            return None;
        };
        if scaled::cheaper_mode(&scaled) == mode {
            return None;
        }
        let other = if mode == ValueMode::Delta {
            ValueMode::DeltaOfDelta
        } else {
            ValueMode::Delta
        };
        OpenChunk::encode_scaled(&samples, &scaled, k, other)
            .filter(|chunk| chunk.stream_len() < self.stream_len())
    }

    fn write_timestamp(&mut self, t: i64) {
        let delta = (t as u64).wrapping_sub(self.last_t as u64);
        if self.count == 1 {
            self.w.write_uvarint(delta);
        } else {
            write_dod(&mut self.w, delta.wrapping_sub(self.delta) as i64);
        }
        self.delta = delta;
        self.last_t = t;
    }

    /// Whether the chunk is full: the next sample goes to a new one.
    pub(crate) fn is_full(&self) -> bool {
        self.count >= MAX_SAMPLES || self.w.bytes().len() >= MAX_BYTES
    }

    /// Oldest timestamp in the chunk: read from the stream's start rather than kept
    /// beside it (8 bytes in every series of the head; it is only asked for when a query
    /// or an out-of-order sample reaches the open chunk).
    pub(crate) fn min_t(&self) -> i64 {
        let mut r = BitReader::new(self.w.bytes());
        if let Values::Scaled(_) = self.values {
            // The scale (4 bits) and the mode (1 bit) come first.
            let _ = r.read_bits(5);
        }
        r.read_uvarint().map_or(self.last_t, unzigzag)
    }

    /// Newest timestamp in the chunk.
    pub(crate) fn max_t(&self) -> i64 {
        self.last_t
    }

    /// Samples in the chunk.
    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    /// Bytes written in the chunk's stream.
    pub(crate) fn stream_len(&self) -> usize {
        self.w.bytes().len()
    }

    /// Bytes the chunk's stream has allocated.
    pub(crate) fn allocated(&self) -> usize {
        self.w.allocated()
    }

    /// The encoding the chunk's values are written in.
    pub(crate) fn encoding(&self) -> Encoding {
        match self.values {
            Values::Scaled(_) => Encoding::Scaled,
            Values::Xor(_) => Encoding::Xor,
        }
    }

    /// The chunk's samples in order.
    pub(crate) fn iter(&self) -> ChunkSamples<'_> {
        self.encoding().samples(self.w.bytes(), self.count)
    }

    /// Appends the chunk's samples in `[start, end]` to `out`.
    pub(crate) fn push_in_range(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        self.encoding()
            .push_in_range(self.w.bytes(), self.count, start, end, out);
    }

    /// The chunk's stream, oldest and newest timestamp and sample count, for closing it.
    pub(super) fn into_parts(self) -> (Box<[u8]>, i64, i64, u16) {
        let min_t = self.min_t();
        (self.w.into_boxed(), min_t, self.last_t, self.count)
    }
}
