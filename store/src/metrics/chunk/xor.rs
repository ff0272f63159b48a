//! The XOR chunk's values: each as the XOR with the previous value (after Gorilla, the
//! scheme Prometheus' head uses too), written by [`XorValues`] into an open chunk's stream
//! and read back by [`XorDecoder`]. The format is described in the `chunk` module's
//! documentation.
//!
//! All timestamp arithmetic wraps, so any strictly increasing run of `i64` timestamps,
//! including one spanning `i64::MIN..=i64::MAX`, round-trips; values round-trip bit for bit
//! (stale markers and other NaN payloads included), since only their bit patterns are
//! encoded.

use super::bits::{BitReader, BitWriter};
use super::counted::{Counted, DecodeSample};
use super::fields::{read_dod, unzigzag};
use crate::model::Sample;

/// No leading/trailing window yet (the next non-zero XOR writes its own).
const NO_WINDOW: u8 = u8::MAX;

/// The state an XOR chunk's next value is written against: the previous value's bits
/// and the window of significant bits its XOR field used.
#[derive(Debug, Clone)]
pub(super) struct XorValues {
    bits: u64,
    leading: u8,
    trailing: u8,
}

impl XorValues {
    /// Writes the chunk's first value (all 64 bits) and returns the state after it.
    pub(super) fn first(w: &mut BitWriter, v: f64) -> XorValues {
        let bits = v.to_bits();
        w.write_bits(bits, 64);
        XorValues {
            bits,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Writes the XOR field of the next value.
    pub(super) fn write(&mut self, w: &mut BitWriter, v: f64) {
        let bits = v.to_bits();
        let xor = bits ^ self.bits;
        self.bits = bits;
        if xor == 0 {
            w.write_bit(false);
            return;
        }
        w.write_bit(true);
        let leading = xor.leading_zeros().min(31) as u8;
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            // The value's significant bits lie inside the previous window: reuse it.
            w.write_bit(false);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            w.write_bits(xor >> self.trailing, sig);
            return;
        }
        w.write_bit(true);
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        w.write_bits(u64::from(leading), 5);
        // 64 significant bits do not fit in 6: written as 0, which no non-zero XOR needs.
        w.write_bits(u64::from(sig & 63), 6);
        w.write_bits(xor >> trailing, sig);
        self.leading = leading;
        self.trailing = trailing;
    }
}

/// A chunk's samples in order. A stream that ends early (which a chunk written by
/// [`OpenChunk`] never does) ends the iteration instead of failing.
pub(crate) type XorSamples<'a> = Counted<XorDecoder<'a>>;

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
    pub(super) fn samples(bytes: &'a [u8], count: u16) -> XorSamples<'a> {
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
