//! Decimal values as scaled integers: most metric values are decimal-rounded (counters of
//! whole events, seconds to the millisecond, bytes), and such a value `v` is then kept as the
//! integer `m = v × 10^k` at a scale `k` — a counter becomes a run of small increments, where
//! its float's mantissa bits change at every sample. Blocks store it so (`scaled_delta` in
//! `samples.parquet`, the series' `value_scale` in `series.parquet`), and so do the head's
//! closed chunks when that is smaller (`chunk::scaled`). A reader gets the float back as
//! `m / 10^k`, one correctly rounded IEEE division that gives `v` bit for bit: a value is kept
//! scaled only after that division was checked to give exactly its bits. Everything else (NaN
//! stale markers, ±Inf, −0.0, values with more than [`MAX_SCALE`] decimals or beyond 2^53 ×
//! 10^−k) stays a float.

/// Largest scale tried: nine decimals cover nanoseconds; beyond, integers grow past what
/// delta encoding saves.
pub(crate) const MAX_SCALE: u8 = 9;

/// Powers of ten, exact in f64.
const POW10: [f64; MAX_SCALE as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Largest magnitude of a scaled value: every integer up to it is exact in f64.
const MAX_SCALED: f64 = 9_007_199_254_740_992.0; // 2^53

/// The float of scaled value `m` at scale `k` (`k` ≤ [`MAX_SCALE`], else `None`).
pub(crate) fn from_scaled(m: i64, k: u8) -> Option<f64> {
    if k == 0 {
        // Dividing by 1 is exact: the same bits without the division, which a query pays
        // for every sample it decodes.
        return Some(m as f64);
    }
    POW10.get(usize::from(k)).map(|p| m as f64 / p)
}

/// Turns samples whose values are scaled integers at scale `k` (already converted to
/// floats, exact) into their values: [`from_scaled`] for each, with the same bits (one
/// correctly rounded division), in a loop the compiler vectorizes. A scale above
/// [`MAX_SCALE`] leaves them as they are (no decoder reads one).
pub(crate) fn divide_scaled(samples: &mut [crate::model::Sample], k: u8) {
    if k == 0 {
        return;
    }
    let Some(&p) = POW10.get(usize::from(k)) else {
        return;
    };
    for s in samples {
        s.value /= p;
    }
}

/// `v` as an integer at scale `k`, when dividing it back by `10^k` gives `v` bit for bit.
pub(crate) fn to_scaled(v: f64, k: u8) -> Option<i64> {
    let p = *POW10.get(usize::from(k))?;
    let x = v * p;
    // Rules out NaN and ±Inf too; −0.0 fails the bit comparison below (0 / p is +0.0).
    if !x.is_finite() || x.abs() >= MAX_SCALED {
        return None;
    }
    // `x` rounded half away from zero, as `f64::round` does, without its libm call (this
    // runs for every sample a block or a closed head chunk stores): `x` is below 2^53 in
    // magnitude, so the truncation and the fraction are exact.
    let t = x as i64;
    let fraction = x - t as f64;
    let m = if fraction >= 0.5 {
        t + 1
    } else if fraction <= -0.5 {
        t - 1
    } else {
        t
    };
    (from_scaled(m, k)?.to_bits() == v.to_bits()).then_some(m)
}

/// The scale of a series whose values are `values`: the smallest `k` at which every value
/// that has a decimal form with at most [`MAX_SCALE`] decimals is stored scaled, or `None`
/// when no value has one (the series keeps floats only). A value fitting scale `j` also
/// fits every larger scale (same real quotient) while the scaled integer stays well below
/// 2^53, so the scale only grows as values come; the writer still checks every value at the
/// final scale and keeps the odd one that does not fit as a float.
pub(crate) fn series_scale(values: impl IntoIterator<Item = f64>) -> Option<u8> {
    let mut scale: Option<u8> = None;
    for v in values {
        let from = scale.unwrap_or(0);
        if to_scaled(v, from).is_some() {
            scale = Some(from);
            continue;
        }
        if let Some(k) = (from + 1..=MAX_SCALE).find(|&k| to_scaled(v, k).is_some()) {
            scale = Some(k);
        }
    }
    scale
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::stale_nan;

    fn round_trips(v: f64, k: u8) -> bool {
        to_scaled(v, k).map(|m| from_scaled(m, k).unwrap().to_bits()) == Some(v.to_bits())
    }

    #[test]
    fn decimal_values_get_the_smallest_scale_that_is_exact() {
        assert_eq!(series_scale([1.0, 2.0, 1e15]), Some(0));
        assert_eq!(series_scale([0.25, 12345.5]), Some(2));
        assert_eq!(series_scale([0.1, 0.2, 0.3]), Some(1));
        assert_eq!(series_scale([1.0, 0.001, 2.5]), Some(3));
        assert_eq!(series_scale([3e-9]), Some(9));
        assert_eq!(series_scale([1.5e-9]), None);
        // 0.1 + 0.2 is not 0.3: it has no short decimal form, 0.3 keeps the scale at 1.
        assert_eq!(series_scale([0.1 + 0.2, 0.3]), Some(1));
        assert!(!round_trips(0.1 + 0.2, 1));
        assert!(round_trips(0.3, 1));
    }

    #[test]
    fn special_floats_are_never_scaled() {
        for v in [
            f64::NAN,
            stale_nan(),
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e-10,
            1e300,
            std::f64::consts::PI,
        ] {
            for k in 0..=MAX_SCALE {
                assert_eq!(to_scaled(v, k), None, "{v} at scale {k}");
            }
        }
        assert_eq!(series_scale([f64::NAN, -0.0, f64::INFINITY]), None);
        assert_eq!(series_scale([stale_nan(), 3.0]), Some(0));
        assert_eq!(to_scaled(0.0, 0), Some(0));
        assert_eq!(to_scaled(-12.75, 2), Some(-1275));
    }

    #[test]
    fn a_scale_that_fits_a_value_fits_every_larger_one() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 10) as u8;
            let m = (x >> 20) as i64 % 1_000_000_000_000 - 500_000_000_000;
            let v = from_scaled(m, k).unwrap();
            for j in k..=MAX_SCALE {
                // Up to 2^50 after scaling: far enough from 2^53 that `v × 10^j` rounds to it.
                if (m.unsigned_abs() as f64) * POW10[usize::from(j - k)] > (1u64 << 50) as f64 {
                    break;
                }
                assert!(round_trips(v, j), "{v} = {m}e-{k} at scale {j}");
            }
        }
    }
}
