//! Compressed sample storage for the head: a series' samples as XOR chunks, encoded as
//! they arrive, so the head holds about 1–2 bytes per sample instead of 16.
//!
//! - `bits`: the bit stream the chunks are written in.
//! - `xor`: one chunk: the encoder with its appender state (`OpenChunk`), a full chunk
//!   (`ClosedChunk`) and the decoder.
//! - `series`: a series' run of chunks (`SeriesChunks`): in-order appends, out-of-order
//!   inserts, lookups, range reads that decode only the chunks in range.
//! - `histogram`: a series' native histogram samples (`HistogramChunk`), a byte stream
//!   of the histograms' WAL form.
//!
//! # Chunk format
//!
//! A chunk is a bit stream, most significant bit first, with no header: its sample count
//! and its oldest and newest timestamps are kept beside it in the series (they are what
//! a reader needs to skip it). Samples are strictly increasing in timestamp. All
//! differences are two's complement and wrap, so every `i64` timestamp sequence fits.
//!
//! | sample | timestamp | value |
//! |---|---|---|
//! | 0 | zigzag varint of `t0` | the 64 bits of `v0` |
//! | 1 | varint of `Δ1 = t1 − t0` | XOR field |
//! | n ≥ 2 | delta-of-delta field of `Δn − Δn−1` | XOR field |
//!
//! Varints are LEB128 in 8-bit groups inside the bit stream.
//!
//! Delta-of-delta field `d`: `0` when `d = 0`; `10` + 14 bits when `−2¹³ ≤ d < 2¹³`;
//! `110` + 17 bits when `−2¹⁶ ≤ d < 2¹⁶`; `1110` + 20 bits when `−2¹⁹ ≤ d < 2¹⁹`; else
//! `1111` + 64 bits; the bits are `d` in two's complement.
//!
//! XOR field, `x` being the XOR of the value's bits with the previous value's: `0` when
//! `x = 0`; else `1`, then either `0` + the significant bits of `x` in the previous
//! window (when `x`'s leading zeros, capped at 31, and trailing zeros are both at least the
//! window's), or `1` + 5 bits of leading zeros (capped at 31) + 6 bits of significant-bit
//! count (64 written as 0) + the significant bits, which become the new window. Values are
//! only bit patterns here: NaNs, the stale marker, ±∞ and −0 round-trip exactly.
//!
//! A chunk is closed at 120 samples or 1 KiB of stream, whichever comes first.

mod bits;
mod histogram;
mod series;
mod xor;

#[cfg(test)]
mod tests;

pub(crate) use histogram::HistogramChunk;
pub(crate) use series::SeriesChunks;
