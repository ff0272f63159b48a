//! The XOR chunk: up to [`MAX_SAMPLES`] samples of one series in one bit stream, timestamps
//! as delta-of-delta and values as the XOR with the previous value (after Gorilla, the
//! scheme Prometheus' head uses too). The format is described in the `chunk` module's
//! documentation.
//!
//! All timestamp arithmetic wraps, so any strictly increasing run of `i64` timestamps,
//! including one spanning `i64::MIN..=i64::MAX`, round-trips; values round-trip bit for bit
//! (stale markers and other NaN payloads included), since only their bit patterns are
//! encoded.

use super::bits::{BitReader, BitWriter};
use super::counted::{Counted, DecodeSample};
use super::fields::{read_dod, unzigzag, write_dod, zigzag};
use crate::model::Sample;

/// Samples after which a chunk is closed: Prometheus' figure, where the fixed cost of a
/// chunk (first timestamp and value, its entry in the series) is spread thin while a query
/// for a short range decodes at most this many samples per series and chunk.
pub(crate) const MAX_SAMPLES: u16 = 120;
/// Bytes after which a chunk is closed whatever its count, so that series of random
/// values (which do not compress) keep chunks a range query can skip.
pub(crate) const MAX_BYTES: usize = 1024;

/// No leading/trailing window yet (the next non-zero XOR writes its own).
const NO_WINDOW: u8 = u8::MAX;

/// The chunk being appended to: the bit stream and the state its next sample is encoded
/// against.
#[derive(Debug)]
pub(crate) struct OpenChunk {
    w: BitWriter,
    count: u16,
    min_t: i64,
    last_t: i64,
    /// Previous timestamp delta, as a wrapping difference.
    delta: u64,
    /// Bits of the previous value.
    bits: u64,
    leading: u8,
    trailing: u8,
}

impl OpenChunk {
    /// A chunk holding `s` alone.
    pub(crate) fn new(s: Sample) -> OpenChunk {
        let mut w = BitWriter::default();
        w.write_uvarint(zigzag(s.timestamp_ms));
        let bits = s.value.to_bits();
        w.write_bits(bits, 64);
        OpenChunk {
            w,
            count: 1,
            min_t: s.timestamp_ms,
            last_t: s.timestamp_ms,
            delta: 0,
            bits,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Appends `s`, whose timestamp must be above [`OpenChunk::max_t`] (the caller checks;
    /// an older one would decode wrongly, not crash).
    pub(crate) fn push(&mut self, s: Sample) {
        let delta = (s.timestamp_ms as u64).wrapping_sub(self.last_t as u64);
        if self.count == 1 {
            self.w.write_uvarint(delta);
        } else {
            write_dod(&mut self.w, delta.wrapping_sub(self.delta) as i64);
        }
        self.write_value(s.value.to_bits());
        self.delta = delta;
        self.last_t = s.timestamp_ms;
        self.count += 1;
    }

    fn write_value(&mut self, bits: u64) {
        let xor = bits ^ self.bits;
        self.bits = bits;
        if xor == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        let leading = xor.leading_zeros().min(31) as u8;
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            // The value's significant bits lie inside the previous window: reuse it.
            self.w.write_bit(false);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.write_bits(xor >> self.trailing, sig);
            return;
        }
        self.w.write_bit(true);
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        self.w.write_bits(u64::from(leading), 5);
        // 64 significant bits do not fit in 6: written as 0, which no non-zero XOR needs.
        self.w.write_bits(u64::from(sig & 63), 6);
        self.w.write_bits(xor >> trailing, sig);
        self.leading = leading;
        self.trailing = trailing;
    }

    /// Whether the chunk is full: the next sample goes to a new one.
    pub(crate) fn is_full(&self) -> bool {
        self.count >= MAX_SAMPLES || self.w.bytes().len() >= MAX_BYTES
    }

    /// Oldest timestamp in the chunk.
    pub(crate) fn min_t(&self) -> i64 {
        self.min_t
    }

    /// Newest timestamp in the chunk.
    pub(crate) fn max_t(&self) -> i64 {
        self.last_t
    }

    /// Bytes the chunk's stream has allocated.
    pub(crate) fn allocated(&self) -> usize {
        self.w.allocated()
    }

    /// The chunk's samples in order.
    pub(crate) fn iter(&self) -> Samples<'_> {
        XorDecoder::samples(self.w.bytes(), self.count)
    }

    /// The chunk's stream, oldest and newest timestamp and sample count, for closing it.
    pub(super) fn into_parts(self) -> (Box<[u8]>, i64, i64, u16) {
        (self.w.into_boxed(), self.min_t, self.last_t, self.count)
    }
}

/// A chunk's samples in order. A stream that ends early (which a chunk written by
/// [`OpenChunk`] never does) ends the iteration instead of failing.
pub(crate) type Samples<'a> = Counted<XorDecoder<'a>>;

/// Decodes an XOR chunk's stream one sample after another (its count kept by [`Counted`]).
#[derive(Debug, Clone)]
pub(crate) struct XorDecoder<'a> {
    r: BitReader<'a>,
    read: u16,
    t: i64,
    delta: u64,
    bits: u64,
    leading: u32,
    trailing: u32,
}

impl<'a> XorDecoder<'a> {
    /// The first `count` samples of the XOR stream `bytes`.
    pub(super) fn samples(bytes: &'a [u8], count: u16) -> Samples<'a> {
        Counted::new(XorDecoder::new(bytes), count)
    }

    fn new(bytes: &'a [u8]) -> XorDecoder<'a> {
        XorDecoder {
            r: BitReader::new(bytes),
            read: 0,
            t: 0,
            delta: 0,
            bits: 0,
            leading: 0,
            trailing: 0,
        }
    }

    fn read_value(&mut self) -> Option<()> {
        if !self.r.read_bit()? {
            return Some(());
        }
        if self.r.read_bit()? {
            self.leading = self.r.read_bits(5)? as u32;
            let mut sig = self.r.read_bits(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            // A corrupt stream could claim more than 64 bits; keep the shifts in range.
            self.trailing = 64u32.saturating_sub(self.leading + sig);
        }
        let sig = 64 - self.leading - self.trailing;
        let xor = self.r.read_bits(sig)?;
        self.bits ^= xor.checked_shl(self.trailing).unwrap_or(0);
        Some(())
    }
}

impl DecodeSample for XorDecoder<'_> {
    fn decode_next(&mut self) -> Option<Sample> {
        match self.read {
            0 => {
                self.t = unzigzag(self.r.read_uvarint()?);
                self.bits = self.r.read_bits(64)?;
            }
            1 => {
                self.delta = self.r.read_uvarint()?;
                self.t = (self.t as u64).wrapping_add(self.delta) as i64;
                self.read_value()?;
            }
            _ => {
                let dod = read_dod(&mut self.r)?;
                self.delta = self.delta.wrapping_add(dod as u64);
                self.t = (self.t as u64).wrapping_add(self.delta) as i64;
                self.read_value()?;
            }
        }
        self.read += 1;
        Some(Sample::new(self.t, f64::from_bits(self.bits)))
    }
}
