//! The stale marker: the NaN bit pattern Prometheus writes to say "this series ended".

/// Bit pattern of the NaN Prometheus uses to mark a series as stale.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale-marker value: a NaN with [`STALE_NAN_BITS`].
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True when `v` is a stale marker (and not just any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}
