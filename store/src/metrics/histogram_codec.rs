//! The byte form of one native histogram, shared by the WAL record (`record`) and the
//! head's histogram chunks (`chunk::histogram`). Every field of the model is kept exactly
//! (floats as raw bits, so a stale marker's NaN survives):
//!
//! ```text
//! hint u8 (0 unknown, 1 counter reset, 2 not counter reset, 3 gauge)
//! schema zigzag, kind u8 (0 integer counts, 1 float counts)
//! zero_threshold f64 LE, sum f64 LE
//! integer: zero_count uvarint, count uvarint      float: zero_count f64 LE, count f64 LE
//! positive: span_count, span_count × (offset zigzag, length uvarint),
//!           bucket_count, then integer: bucket_count × (delta to previous bucket zigzag)
//!                              float:   bucket_count × f64 LE
//! negative: the same
//! custom_count, custom_count × f64 LE   (upper bounds, schema −53 only in valid data)
//! ```
//!
//! The integer kind is chosen when the zero count, the count and every bucket are
//! whole numbers that an `f64` holds exactly (|x| ≤ 2^53, not −0.0), with the count and
//! zero count not negative: what instrumented code sends, and the buckets shrink to one
//! or two bytes of delta each. Anything else (rates, fractional counts) uses float counts.

use std::sync::Arc;

use crate::metrics::varint::{put_f64, put_ivarint, put_uvarint, Reader, VarintError};
use crate::model::histogram::{CounterResetHint, FloatHistogram, Span};

/// Largest whole number every smaller whole number of which an `f64` holds exactly.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

fn hint_byte(h: CounterResetHint) -> u8 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

/// The hint for a stored byte; an unknown byte (a newer writer) reads as `Unknown`, which
/// only makes queries compare with the previous sample.
pub(crate) fn hint_from_byte(b: u8) -> CounterResetHint {
    match b {
        1 => CounterResetHint::CounterReset,
        2 => CounterResetHint::NotCounterReset,
        3 => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    }
}

/// The stored byte of a hint (the numbering above, also used by the block columns).
pub(crate) fn hint_to_byte(h: CounterResetHint) -> u8 {
    hint_byte(h)
}

fn whole(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() <= EXACT_INT && !(v == 0.0 && v.is_sign_negative())
}

fn integer_kind(h: &FloatHistogram) -> bool {
    whole(h.count)
        && h.count >= 0.0
        && whole(h.zero_count)
        && h.zero_count >= 0.0
        && h.positive_buckets.iter().all(|v| whole(*v))
        && h.negative_buckets.iter().all(|v| whole(*v))
}

fn put_spans(buf: &mut Vec<u8>, spans: &[Span]) {
    put_uvarint(buf, spans.len() as u64);
    for s in spans {
        put_ivarint(buf, i64::from(s.offset));
        put_uvarint(buf, u64::from(s.length));
    }
}

fn put_buckets(buf: &mut Vec<u8>, buckets: &[f64], integer: bool) {
    put_uvarint(buf, buckets.len() as u64);
    let mut prev = 0i64;
    for b in buckets {
        if integer {
            // Whole and within ±2^53: the cast is exact.
            let v = *b as i64;
            put_ivarint(buf, v.wrapping_sub(prev));
            prev = v;
        } else {
            put_f64(buf, *b);
        }
    }
}

/// Appends the byte form of `h` to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, h: &FloatHistogram) {
    let integer = integer_kind(h);
    buf.push(hint_byte(h.counter_reset_hint));
    put_ivarint(buf, i64::from(h.schema));
    buf.push(if integer { 0 } else { 1 });
    put_f64(buf, h.zero_threshold);
    put_f64(buf, h.sum);
    if integer {
        put_uvarint(buf, h.zero_count as u64);
        put_uvarint(buf, h.count as u64);
    } else {
        put_f64(buf, h.zero_count);
        put_f64(buf, h.count);
    }
    put_spans(buf, &h.positive_spans);
    put_buckets(buf, &h.positive_buckets, integer);
    put_spans(buf, &h.negative_spans);
    put_buckets(buf, &h.negative_buckets, integer);
    put_uvarint(buf, h.custom_values.len() as u64);
    for v in h.custom_values.iter() {
        put_f64(buf, *v);
    }
}

/// The error for a field that does not fit its type (a corrupt or foreign payload).
fn out_of_range(r: &Reader<'_>) -> VarintError {
    VarintError::Truncated(r.pos)
}

fn read_spans(r: &mut Reader<'_>) -> Result<Vec<Span>, VarintError> {
    let n = r.count()?;
    let mut spans = Vec::with_capacity(n);
    for _ in 0..n {
        let offset = i32::try_from(r.ivarint()?).map_err(|_| out_of_range(r))?;
        let length = u32::try_from(r.uvarint()?).map_err(|_| out_of_range(r))?;
        spans.push(Span { offset, length });
    }
    Ok(spans)
}

fn read_buckets(r: &mut Reader<'_>, integer: bool) -> Result<Vec<f64>, VarintError> {
    let n = r.count()?;
    let mut out = Vec::with_capacity(n);
    let mut cur = 0i64;
    for _ in 0..n {
        if integer {
            cur = cur.wrapping_add(r.ivarint()?);
            out.push(cur as f64);
        } else {
            out.push(r.f64()?);
        }
    }
    Ok(out)
}

/// Reads one histogram written by [`encode`].
pub(crate) fn decode(r: &mut Reader<'_>) -> Result<FloatHistogram, VarintError> {
    let counter_reset_hint = hint_from_byte(r.byte()?);
    let schema = i32::try_from(r.ivarint()?).map_err(|_| out_of_range(r))?;
    let integer = r.byte()? == 0;
    let zero_threshold = r.f64()?;
    let sum = r.f64()?;
    let (zero_count, count) = if integer {
        (r.uvarint()? as f64, r.uvarint()? as f64)
    } else {
        (r.f64()?, r.f64()?)
    };
    let positive_spans = read_spans(r)?;
    let positive_buckets = read_buckets(r, integer)?;
    let negative_spans = read_spans(r)?;
    let negative_buckets = read_buckets(r, integer)?;
    let n = r.count()?;
    let mut custom = Vec::with_capacity(n);
    for _ in 0..n {
        custom.push(r.f64()?);
    }
    Ok(FloatHistogram {
        counter_reset_hint,
        schema,
        zero_threshold,
        zero_count,
        count,
        sum,
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        custom_values: Arc::from(custom),
    })
}

/// True when `a` and `b` are the same histogram bit for bit (NaN sums included), the
/// duplicate test of the append rules.
pub(crate) fn identical(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    encode(&mut x, a);
    encode(&mut y, b);
    x == y
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::histogram::CUSTOM_BUCKETS_SCHEMA;
    use didban_testkit::rng::SeededRng;

    fn spans_and_counts(rng: &mut SeededRng, integer: bool) -> (Vec<Span>, Vec<f64>) {
        let mut spans = Vec::new();
        let mut counts = Vec::new();
        for i in 0..rng.below(4) {
            let offset = if i == 0 {
                rng.below(40) as i32 - 20
            } else {
                rng.below(5) as i32
            };
            let length = rng.below(5) as u32;
            spans.push(Span { offset, length });
            for _ in 0..length {
                counts.push(if integer {
                    rng.below(1 << 40) as f64
                } else {
                    f64::from_bits(rng.next_u64())
                });
            }
        }
        (spans, counts)
    }

    /// A random histogram: integer or float counts, exponential or custom buckets, any
    /// hint, sometimes the stale marker, sometimes odd float bits (NaN, −0.0, ∞).
    pub(crate) fn random_histogram(rng: &mut SeededRng) -> FloatHistogram {
        if rng.below(10) == 0 {
            return FloatHistogram::stale_marker();
        }
        let integer = rng.below(2) == 0;
        let custom = rng.below(3) == 0;
        let hint = hint_from_byte(rng.below(4) as u8);
        let (positive_spans, positive_buckets) = spans_and_counts(rng, integer);
        let (negative_spans, negative_buckets) = if custom {
            (Vec::new(), Vec::new())
        } else {
            spans_and_counts(rng, integer)
        };
        let custom_values: Vec<f64> = if custom {
            (0..rng.below(6)).map(|i| i as f64 * 0.5 + 0.1).collect()
        } else {
            Vec::new()
        };
        let count = if integer {
            rng.below(1 << 50) as f64
        } else {
            f64::from_bits(rng.next_u64())
        };
        FloatHistogram {
            counter_reset_hint: hint,
            schema: if custom {
                CUSTOM_BUCKETS_SCHEMA
            } else {
                rng.below(13) as i32 - 4
            },
            zero_threshold: if custom { 0.0 } else { 1e-3 * rng.below(3) as f64 },
            zero_count: if integer { rng.below(100) as f64 } else { -0.0 },
            count,
            sum: f64::from_bits(rng.next_u64()),
            positive_spans,
            negative_spans,
            positive_buckets,
            negative_buckets,
            custom_values: Arc::from(custom_values),
        }
    }

    #[test]
    fn random_histograms_round_trip_bit_for_bit() {
        let mut rng = SeededRng::new(0x6869_7374);
        for _ in 0..5_000 {
            let h = random_histogram(&mut rng);
            let mut buf = Vec::new();
            encode(&mut buf, &h);
            let mut r = Reader { buf: &buf, pos: 0 };
            let back = decode(&mut r).unwrap();
            assert!(r.at_end());
            assert!(identical(&h, &back), "{h:?} came back as {back:?}");
            assert_eq!(h.count.to_bits(), back.count.to_bits());
            assert_eq!(h.sum.to_bits(), back.sum.to_bits());
            for cut in [0, buf.len() / 2, buf.len() - 1] {
                let mut r = Reader {
                    buf: &buf[..cut],
                    pos: 0,
                };
                assert!(decode(&mut r).is_err());
            }
        }
    }

    #[test]
    fn integer_counts_take_the_compact_kind() {
        let h = FloatHistogram {
            count: 10.0,
            zero_count: 1.0,
            positive_spans: vec![Span { offset: 0, length: 3 }],
            positive_buckets: vec![3.0, 4.0, 2.0],
            ..FloatHistogram::default()
        };
        let mut buf = Vec::new();
        encode(&mut buf, &h);
        assert_eq!(buf[2], 0, "integer kind");
        // hint, schema, kind, 2 × f64, 2 counts, spans (3 B), buckets (4 B), 2 empty lists.
        assert_eq!(buf.len(), 3 + 16 + 2 + 3 + 4 + 2 + 1);
        let fractional = FloatHistogram {
            count: 0.5,
            ..h.clone()
        };
        let mut buf = Vec::new();
        encode(&mut buf, &fractional);
        assert_eq!(buf[2], 1, "float kind");
    }
}
