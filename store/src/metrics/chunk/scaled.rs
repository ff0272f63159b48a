//! The scaled chunk: a closed chunk whose values are all decimal-rounded at one scale `k`
//! (`metrics::decimal`), kept as the integers `m = v × 10^k` — their differences (or
//! differences of differences) in a few bits each, where XOR-ing the floats of a noisy
//! counter or gauge changes most mantissa bits at every sample. An open chunk is written in
//! this form from its first sample while every value has a decimal form ([`ScaledValues`]
//! writes the values, `open` the timestamps); the format is in the `chunk` module's
//! documentation.

use super::bits::{BitReader, BitWriter};
use super::counted::{Counted, DecodeSample};
use super::fields::{read_dod_and_value_diff, read_value_diff, unzigzag, write_value_diff, zigzag};
use crate::metrics::decimal::{self, MAX_SCALE};
use crate::model::Sample;

/// How the values follow each other in the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ValueMode {
    /// Each value as its difference from the previous one (gauges).
    Delta,
    /// Each difference as its difference from the previous one (counters at a steady rate).
    DeltaOfDelta,
}

/// The smallest scale every value fits and the values at it, or `None` when a value has
/// no decimal form at a common scale (NaN and stale markers, ±Inf, −0.0, too many
/// decimals): one `to_scaled` per value while the scale holds; a value needing a larger one
/// rescales those before it (a value fitting scale `j` fits every larger one, see
/// `decimal::series_scale`, checked again here).
pub(super) fn scale_all(samples: &[Sample]) -> Option<(u8, Vec<i64>)> {
    let mut k = 0u8;
    let mut scaled = Vec::with_capacity(samples.len());
    for s in samples {
        if let Some(m) = decimal::to_scaled(s.value, k) {
            scaled.push(m);
            continue;
        }
        k = (k + 1..=MAX_SCALE).find(|&j| decimal::to_scaled(s.value, j).is_some())?;
        scaled.clear();
        for earlier in samples {
            scaled.push(decimal::to_scaled(earlier.value, k)?);
            if std::ptr::eq(earlier, s) {
                break;
            }
        }
    }
    Some((k, scaled))
}

/// The smallest scale `v` fits and `v` at it.
pub(super) fn smallest_scale(v: f64) -> Option<(u8, i64)> {
    for k in 0..=MAX_SCALE {
        if let Some(m) = decimal::to_scaled(v, k) {
            return Some((k, m));
        }
    }
    None
}

/// The value mode whose fields take fewer bits, estimated by the significant bits of the
/// differences it would write (the buckets' prefixes and rounding aside).
pub(super) fn cheaper_mode(scaled: &[i64]) -> ValueMode {
    let (mut delta_bits, mut dod_bits) = (0u32, 0u32);
    let mut last_dm = 0i64;
    for (i, pair) in scaled.windows(2).enumerate() {
        let dm = pair[1].wrapping_sub(pair[0]);
        delta_bits += 64 - zigzag(dm).leading_zeros();
        let dod = if i == 0 { dm } else { dm.wrapping_sub(last_dm) };
        dod_bits += 64 - zigzag(dod).leading_zeros();
        last_dm = dm;
    }
    if dod_bits < delta_bits {
        ValueMode::DeltaOfDelta
    } else {
        ValueMode::Delta
    }
}

/// The state a scaled chunk's next value is written against: its scale and mode, the
/// previous scaled value and the previous difference.
#[derive(Debug, Clone)]
pub(super) struct ScaledValues {
    k: u8,
    mode: ValueMode,
    m: i64,
    dm: i64,
}

impl ScaledValues {
    /// Writes a scaled chunk's header (scale and mode); the first timestamp follows it,
    /// then [`ScaledValues::first`].
    pub(super) fn header(w: &mut BitWriter, k: u8, mode: ValueMode) {
        debug_assert!(k <= MAX_SCALE);
        w.write_bits(u64::from(k), 4);
        w.write_bit(mode == ValueMode::DeltaOfDelta);
    }

    /// Writes the first scaled value `m0` of a chunk whose header said `k` and `mode`.
    pub(super) fn first(w: &mut BitWriter, k: u8, mode: ValueMode, m0: i64) -> ScaledValues {
        w.write_uvarint(zigzag(m0));
        ScaledValues {
            k,
            mode,
            m: m0,
            dm: 0,
        }
    }

    /// The chunk's scale.
    pub(super) fn scale(&self) -> u8 {
        self.k
    }

    /// The chunk's value mode.
    pub(super) fn mode(&self) -> ValueMode {
        self.mode
    }

    /// Writes the value field of the next scaled value `m` (at this chunk's scale), the
    /// chunk holding `count` samples before it.
    pub(super) fn write(&mut self, w: &mut BitWriter, m: i64, count: u16) {
        let dm = m.wrapping_sub(self.m);
        match self.mode {
            ValueMode::DeltaOfDelta if count > 1 => write_value_diff(w, dm.wrapping_sub(self.dm)),
            _ => write_value_diff(w, dm),
        }
        (self.m, self.dm) = (m, dm);
    }
}

/// A scaled chunk's samples in order. A stream that ends early or names a scale above
/// [`MAX_SCALE`] (which [`encode`] never writes) ends the iteration instead of failing.
pub(crate) type ScaledSamples<'a> = Counted<ScaledDecoder<'a>>;

/// Decodes a scaled chunk's stream one sample after another (its count kept by [`Counted`]).
#[derive(Debug, Clone)]
pub(crate) struct ScaledDecoder<'a> {
    r: BitReader<'a>,
    read: u16,
    k: u8,
    mode: ValueMode,
    t: i64,
    delta_t: u64,
    m: i64,
    dm: i64,
}

impl<'a> ScaledDecoder<'a> {
    /// The first `count` samples of the scaled stream `bytes`.
    pub(super) fn samples(bytes: &'a [u8], count: u16) -> ScaledSamples<'a> {
        Counted::new(ScaledDecoder::new(bytes), count)
    }

    fn new(bytes: &'a [u8]) -> ScaledDecoder<'a> {
        ScaledDecoder {
            r: BitReader::new(bytes),
            read: 0,
            k: 0,
            mode: ValueMode::Delta,
            t: 0,
            delta_t: 0,
            m: 0,
            dm: 0,
        }
    }
}

impl ScaledDecoder<'_> {
    /// The next sample as its timestamp and scaled value (at [`ScaledDecoder::scale`], known
    /// once the first sample is read), or `None` when the stream cannot give one.
    #[inline(always)]
    fn next_scaled(&mut self) -> Option<(i64, i64)> {
        match self.read {
            0 => {
                self.k = self.r.read_bits(4)? as u8;
                if self.k > MAX_SCALE {
                    return None;
                }
                self.mode = if self.r.read_bit()? {
                    ValueMode::DeltaOfDelta
                } else {
                    ValueMode::Delta
                };
                self.t = unzigzag(self.r.read_uvarint()?);
                self.m = unzigzag(self.r.read_uvarint()?);
            }
            read => {
                let diff = if read == 1 {
                    self.delta_t = self.r.read_uvarint()?;
                    read_value_diff(&mut self.r)?
                } else {
                    let (dod, diff) = read_dod_and_value_diff(&mut self.r)?;
                    self.delta_t = self.delta_t.wrapping_add(dod as u64);
                    diff
                };
                self.t = (self.t as u64).wrapping_add(self.delta_t) as i64;
                self.dm = match self.mode {
                    ValueMode::DeltaOfDelta if read > 1 => self.dm.wrapping_add(diff),
                    _ => diff,
                };
                self.m = self.m.wrapping_add(self.dm);
            }
        }
        self.read += 1;
        Some((self.t, self.m))
    }
}

impl DecodeSample for ScaledDecoder<'_> {
    fn decode_next(&mut self) -> Option<Sample> {
        let (t, m) = self.next_scaled()?;
        Some(Sample::new(t, decimal::from_scaled(m, self.k)?))
    }
}

/// Appends the samples in `[start, end]` of the first `count` of the scaled stream `bytes`
/// to `out`, in two passes: the scaled integers first (as floats, exact below 2^53), then
/// one division by `10^k` over all of them. The same bits as [`decimal::from_scaled`] per
/// sample, but the divisions no longer wait on the bit reader one by one (a third of the
/// decoder's time was spent after its division, one sample per call).
pub(super) fn push_in_range(bytes: &[u8], count: u16, start: i64, end: i64, out: &mut Vec<Sample>) {
    let mut d = ScaledDecoder::new(bytes);
    let from = out.len();
    for _ in 0..count {
        let Some((t, m)) = d.next_scaled() else { break };
        if t > end {
            break;
        }
        if t >= start {
            // |m| < 2^53 for every value written scaled (`decimal::to_scaled`), so the
            // conversion is exact; a corrupt stream gives some float, never a panic.
            out.push(Sample::new(t, m as f64));
        }
    }
    let Some(divided) = out.get_mut(from..) else {
        return;
    };
    decimal::divide_scaled(divided, d.k);
}
