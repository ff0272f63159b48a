//! The variable-width fields both chunk encodings write into their bit streams: the
//! timestamps' delta-of-delta field, the scaled chunk's value field and zigzag for varints
//! of signed numbers. Widths and prefixes are given in the `chunk` module's documentation.

use super::bits::{BitReader, BitWriter, Window};

/// Widths of the delta-of-delta buckets after their prefixes `10`, `110`, `1110`; `1111`
/// is followed by all 64 bits. A regular scrape (dod 0) costs one bit; jitter of up to ±8 s
/// 16 bits.
const DOD_WIDTHS: [u32; 3] = [14, 17, 20];

/// Widths of the value field's buckets after their prefixes `10`, `110`, …, `1111110`;
/// `1111111` is followed by all 64 bits. Scaled integers' differences are small for most
/// series (a counter's increments, a gauge's moves) but span the whole range across series.
const VALUE_WIDTHS: [u32; 6] = [5, 10, 15, 22, 32, 48];

/// Writes `v` in the bucket of `widths` it fits (prefix: bucket number + 1 ones and a zero;
/// `0` alone for zero; all ones and 64 bits when no bucket fits). Inlined into each field
/// writer so the widths are constants and the bucket loop unrolls.
#[inline(always)]
fn write_bucketed(w: &mut BitWriter, v: i64, widths: &[u32]) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    for (i, width) in widths.iter().enumerate() {
        let half = 1i64 << (width - 1);
        if (-half..half).contains(&v) {
            let ones = i as u32 + 1;
            w.write_bits(((1u64 << ones) - 1) << 1, ones + 1);
            w.write_bits(v as u64, *width);
            return;
        }
    }
    let ones = widths.len() as u32 + 1;
    w.write_bits((1u64 << ones) - 1, ones);
    w.write_bits(v as u64, 64);
}

/// Reads a field written by [`write_bucketed`] with the same `widths`: prefix and value
/// from one word of the stream when it holds them (every bucket but the 64-bit one, away
/// from the stream's end).
#[inline(always)]
fn read_bucketed(r: &mut BitReader<'_>, widths: &[u32]) -> Option<i64> {
    if let Some((v, bits)) = r.window().and_then(|w| bucketed_in(w, widths)) {
        r.consume(bits);
        return Some(v);
    }
    read_bucketed_slowly(r, widths)
}

/// The field written by [`write_bucketed`] with `widths` at the top of `w`, and its length
/// in bits, when `w` holds all of it and it is not in the 64-bit bucket.
#[inline(always)]
fn bucketed_in(w: Window, widths: &[u32]) -> Option<(i64, u32)> {
    let all_ones = widths.len() as u32 + 1;
    let ones = w.word.leading_ones().min(all_ones);
    if ones == 0 {
        return (w.valid >= 1).then_some((0, 1));
    }
    let width = *widths.get(ones as usize - 1)?;
    let prefix = ones + 1;
    if prefix + width > w.valid {
        return None;
    }
    Some((
        sign_extend((w.word << prefix) >> (64 - width), width),
        prefix + width,
    ))
}

/// [`read_bucketed`] bit by bit: near the stream's end, and for the 64-bit bucket.
fn read_bucketed_slowly(r: &mut BitReader<'_>, widths: &[u32]) -> Option<i64> {
    let mut ones = 0usize;
    while ones <= widths.len() && r.read_bit()? {
        ones += 1;
    }
    if ones == 0 {
        return Some(0);
    }
    match widths.get(ones - 1) {
        Some(&width) => r.read_bits(width).map(|v| sign_extend(v, width)),
        None => r.read_bits(64).map(|v| v as i64),
    }
}

/// A timestamp delta-of-delta field.
pub(super) fn write_dod(w: &mut BitWriter, dod: i64) {
    write_bucketed(w, dod, &DOD_WIDTHS);
}

/// Reads a field written by [`write_dod`].
pub(super) fn read_dod(r: &mut BitReader<'_>) -> Option<i64> {
    read_bucketed(r, &DOD_WIDTHS)
}

/// A scaled chunk's value field (a difference of scaled integers).
pub(super) fn write_value_diff(w: &mut BitWriter, diff: i64) {
    write_bucketed(w, diff, &VALUE_WIDTHS);
}

/// Reads a field written by [`write_value_diff`].
pub(super) fn read_value_diff(r: &mut BitReader<'_>) -> Option<i64> {
    read_bucketed(r, &VALUE_WIDTHS)
}

/// Reads a timestamp delta-of-delta field and the value field after it, from one word of
/// the stream when it holds both (a regular scrape's dod is one bit, so most samples of a
/// scaled chunk are read with one load).
#[inline(always)]
pub(super) fn read_dod_and_value_diff(r: &mut BitReader<'_>) -> Option<(i64, i64)> {
    if let Some(w) = r.window() {
        if let Some((dod, dod_bits)) = bucketed_in(w, &DOD_WIDTHS) {
            let rest = Window {
                // `dod_bits` < 64: the longest bucket read from a word is 4 + 20 bits.
                word: w.word << dod_bits,
                valid: w.valid - dod_bits,
            };
            if let Some((diff, diff_bits)) = bucketed_in(rest, &VALUE_WIDTHS) {
                r.consume(dod_bits + diff_bits);
                return Some((dod, diff));
            }
            r.consume(dod_bits);
            return Some((dod, read_value_diff(r)?));
        }
    }
    Some((read_dod(r)?, read_value_diff(r)?))
}

/// The `width`-bit two's complement number in the low bits of `v`.
fn sign_extend(v: u64, width: u32) -> i64 {
    let shift = 64 - width;
    ((v << shift) as i64) >> shift
}

/// A signed number as an unsigned one with small magnitudes small (for varints).
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_bucket_and_its_edges_round_trip() {
        let mut values = vec![0i64, 1, -1, i64::MIN, i64::MAX];
        for width in DOD_WIDTHS.iter().chain(VALUE_WIDTHS.iter()) {
            let half = 1i64 << (width - 1);
            values.extend([half - 1, -half, half, -half - 1]);
        }
        let mut w = BitWriter::default();
        for &v in &values {
            write_dod(&mut w, v);
            write_value_diff(&mut w, v);
        }
        let bytes = w.into_boxed();
        let mut r = BitReader::new(&bytes);
        for &v in &values {
            assert_eq!(read_dod(&mut r), Some(v));
            assert_eq!(read_value_diff(&mut r), Some(v));
        }
    }

    /// A field read from a word of the stream is the one read bit by bit, at every bit
    /// offset, up to the stream's end (where the word is not available and past which both
    /// give `None`).
    #[test]
    fn a_field_reads_the_same_from_a_word_and_bit_by_bit() {
        let mut values = vec![0i64, 1, -1, 3, i64::MIN, i64::MAX];
        for width in VALUE_WIDTHS {
            let half = 1i64 << (width - 1);
            values.extend([half - 1, -half, half, -half - 1]);
        }
        for offset in 0..8u32 {
            let mut w = BitWriter::default();
            w.write_bits(0b1010_1010, offset);
            for &v in &values {
                write_value_diff(&mut w, v);
                write_dod(&mut w, v.clamp(-(1 << 30), 1 << 30));
            }
            let bytes = w.into_boxed();
            let (mut fast, mut slow) = (BitReader::new(&bytes), BitReader::new(&bytes));
            assert_eq!(fast.read_bits(offset), slow.read_bits(offset));
            for &v in &values {
                assert_eq!(read_value_diff(&mut fast), Some(v), "offset {offset}");
                assert_eq!(read_bucketed_slowly(&mut slow, &VALUE_WIDTHS), Some(v));
                let dod = read_dod(&mut fast);
                assert_eq!(dod, read_bucketed_slowly(&mut slow, &DOD_WIDTHS));
                assert_eq!(dod, Some(v.clamp(-(1 << 30), 1 << 30)));
            }
            // The last byte's unused bits read as zero fields; past the end, nothing.
            while fast.read_bits(1).is_some() {}
            assert_eq!(read_value_diff(&mut fast), None);
            assert_eq!(read_dod(&mut fast), None);
        }
    }

    #[test]
    fn zigzag_round_trips_the_extremes() {
        for v in [0, 1, -1, i64::MIN, i64::MAX, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
