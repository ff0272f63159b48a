//! Compressed sample storage for the head: a series' samples as chunks encoded as they
//! arrive, their values as decimal-scaled integers while they have a decimal form (most
//! metric values do) and as XOR of their bits otherwise, so the head holds about 1–2 bytes
//! per sample instead of 16.
//!
//! - `bits`: the bit stream the chunks are written in; `fields`: the variable-width fields
//!   both encodings write.
//! - `counted`: the sample countdown every decoder shares (`Counted`).
//! - `open`: the chunk being appended to (`OpenChunk`), its timestamps, and when it changes
//!   scale, encoding or value mode.
//! - `xor`, `scaled`: the two encodings' values, each a writer and a decoder.
//! - `encoding`: which encoding a stream is in and the decoder of either.
//! - `closed`: a full chunk (`ClosedChunk`).
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
//!
//! # Scaled chunk format
//!
//! A chunk is scaled when its values are integers `m = v × 10^k` at one scale `k ≤ 9`
//! (`metrics::decimal`: dividing `m` by `10^k` gives the value's bits back). An open chunk
//! starts at the smallest scale its first value fits; a value that needs a larger one
//! re-encodes the chunk at the smallest scale every value fits, and a value without such a
//! form (NaN, a stale marker, ±∞, −0, too many decimals) re-encodes it as XOR, which it
//! stays until it closes (`open`). The value mode starts as delta, is chosen on the first
//! 16 samples and again on all of them when the chunk closes. On the bench's
//! node-exporter-like data, scaling full chunks took the head from 4.42 to 3.60 bytes per
//! sample, series overhead included; scaling open chunks too took it from 831 to 716 bytes
//! per series at 120 samples each, and peak RSS at 1 M series from 1,140 to 964 MiB
//! (docs/benchmarks.md).
//!
//! | field | bits |
//! |---|---|
//! | scale `k` | 4 |
//! | value mode: `0` delta, `1` delta-of-delta | 1 |
//! | `t0`, `m0` | zigzag varints |
//! | sample 1 | varint of `Δ1` (as XOR), value field of `m1 − m0` |
//! | sample n ≥ 2 | delta-of-delta field (as XOR), value field of `m_n − m_{n−1}` (delta mode) or of `(m_n − m_{n−1}) − (m_{n−1} − m_{n−2})` |
//!
//! Value field `d`: `0` when `d = 0`; `10` + 5 bits, `110` + 10, `1110` + 15, `11110` + 22,
//! `111110` + 32, `1111110` + 48 bits for the first width `d` fits in two's complement; else
//! `1111111` + 64 bits. The mode is the one whose differences have fewer significant bits.

mod bits;
mod closed;
mod counted;
mod encoding;
mod fields;
mod histogram;
mod open;
mod scaled;
mod series;
mod xor;

#[cfg(test)]
mod tests;

pub(crate) use histogram::HistogramChunk;
pub(crate) use series::SeriesChunks;
