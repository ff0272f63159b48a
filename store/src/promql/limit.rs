//! `limitk` and `limit_ratio` (Prometheus 3, experimental): keep some members of each group
//! unchanged — the first `k` in input order, or the ones whose label hash falls in the ratio's
//! share of the hash space, so the same series are kept at every step and by every engine that
//! hashes labels as Prometheus does (xxHash64 over `name\xffvalue\xff…`).

use xxhash_rust::xxh64::xxh64;

use crate::model::Labels;

use super::value::StepVec;

/// Keeps the first `k` members (indices into `step`, in input order).
pub(crate) fn limit_k(k: i64, members: &[usize], step: &StepVec, res: &mut StepVec) {
    let k = usize::try_from(k).unwrap_or(0);
    for &m in members.iter().take(k) {
        if let Some(e) = step.get(m) {
            res.push(e.clone());
        }
    }
}

/// `ratio` capped to [-1, 1]; `None` when it was already inside.
pub(crate) fn capped_ratio(ratio: f64) -> Option<f64> {
    if ratio > 1.0 {
        Some(1.0)
    } else if ratio < -1.0 {
        Some(-1.0)
    } else {
        None
    }
}

/// Keeps the members whose hash offset is below `ratio` (ratio ≥ 0) or at or above
/// `1 + ratio` (ratio < 0), so `limit_ratio(r, v)` and `limit_ratio(r - 1, v)` split `v`.
pub(crate) fn limit_ratio(ratio: f64, members: &[usize], step: &StepVec, res: &mut StepVec) {
    for &m in members {
        let Some(e) = step.get(m) else { continue };
        if keeps(ratio, hash_offset(&e.labels)) {
            res.push(e.clone());
        }
    }
}

fn keeps(ratio: f64, offset: f64) -> bool {
    (ratio >= 0.0 && offset < ratio) || (ratio < 0.0 && offset >= 1.0 + ratio)
}

/// Where a series falls in [0, 1]: its Prometheus label hash over the largest hash.
fn hash_offset(labels: &Labels) -> f64 {
    let mut bytes: Vec<u8> = Vec::new();
    for l in labels.iter() {
        bytes.extend_from_slice(l.name.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(l.value.as_bytes());
        bytes.push(0xff);
    }
    xxh64(&bytes, 0) as f64 / u64::MAX as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complementary_ratios_split_the_series() {
        for i in 0..200 {
            let l = Labels::from_pairs([("__name__", "m"), ("i", &*i.to_string())]);
            let off = hash_offset(&l);
            assert!((0.0..=1.0).contains(&off));
            assert_ne!(keeps(0.3, off), keeps(-0.7, off), "series {i} offset {off}");
        }
    }

    #[test]
    fn ratio_capping() {
        assert_eq!(capped_ratio(1.5), Some(1.0));
        assert_eq!(capped_ratio(-3.0), Some(-1.0));
        assert_eq!(capped_ratio(0.5), None);
    }
}
