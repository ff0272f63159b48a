//! The state every aggregation keeps per group and step, and the mapping of input series
//! to groups: shared by the per-step walk (`aggregate`) and the series-by-series one
//! (`by_series`), so both compute with the same arithmetic.

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::token::{T_AVG, T_COUNT, T_GROUP, T_MAX, T_MIN, T_STDDEV, T_STDVAR, T_SUM};
use promql_parser::parser::LabelModifier;

use crate::model::Labels;

use super::super::value::{kahan_inc, IdMap};

/// Running state of one group at one step.
#[derive(Clone, Default)]
pub(super) struct Acc {
    /// Values added (0 for a state nothing was added to).
    pub(super) count: f64,
    sum: f64,
    comp: f64,
    mean: f64,
    m2: f64,
    value: f64,
    /// `avg` only: the sum overflowed, and `mean` (with `comp`) holds the mean since.
    incremental: bool,
    /// Input elements of the group, for operators that pick among them.
    pub(super) members: Vec<usize>,
}

/// Maps input series to their groups, once per distinct input.
pub(super) struct Grouping<'m> {
    modifier: Option<&'m LabelModifier>,
    by_ptr: IdMap<usize, usize>,
    ids: HashMap<Labels, usize>,
    /// Output labels of each group, by group id.
    pub(super) groups: Vec<Arc<Labels>>,
}

impl<'m> Grouping<'m> {
    pub(super) fn new(modifier: Option<&'m LabelModifier>) -> Self {
        Grouping {
            modifier,
            by_ptr: IdMap::default(),
            ids: HashMap::new(),
            groups: Vec::new(),
        }
    }

    fn group_labels(&self, l: &Labels) -> Labels {
        match self.modifier {
            None => Labels::default(),
            Some(LabelModifier::Include(names)) => l.keep_only(&names.labels),
            Some(LabelModifier::Exclude(names)) => l.drop_names(&names.labels).without_metric_name(),
        }
    }

    pub(super) fn id(&mut self, labels: &Arc<Labels>) -> usize {
        let key = Arc::as_ptr(labels) as usize;
        if let Some(&id) = self.by_ptr.get(&key) {
            return id;
        }
        let g = self.group_labels(labels);
        let id = match self.ids.get(&g) {
            Some(&id) => id,
            None => {
                self.groups.push(Arc::new(g.clone()));
                self.ids.insert(g, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        self.by_ptr.insert(key, id);
        id
    }
}

/// The state of a group whose first value is `v` (from input element `j`).
pub(super) fn first_acc(v: f64, j: usize, keep_members: bool) -> Acc {
    Acc {
        count: 1.0,
        sum: v,
        comp: 0.0,
        mean: v,
        m2: 0.0,
        value: v,
        incremental: false,
        members: if keep_members { vec![j] } else { Vec::new() },
    }
}

/// Adds value `v` (input element `j`) to a group's state.
pub(super) fn add(op: u16, acc: &mut Acc, v: f64, j: usize, keep_members: bool) {
    acc.count += 1.0;
    if keep_members {
        acc.members.push(j);
    }
    match op {
        T_SUM => (acc.sum, acc.comp) = kahan_inc(v, acc.sum, acc.comp),
        // Prometheus 3's mean: the compensated sum while it does not overflow, then an
        // incremental mean (compensated too) from the mean so far — its answers to the
        // last bit, and no division per value until an overflow.
        T_AVG => {
            if !acc.incremental {
                let (sum, comp) = kahan_inc(v, acc.sum, acc.comp);
                if !sum.is_infinite() {
                    (acc.sum, acc.comp) = (sum, comp);
                    return;
                }
                acc.incremental = true;
                acc.mean = acc.sum / (acc.count - 1.0);
                acc.comp /= acc.count - 1.0;
            }
            let q = (acc.count - 1.0) / acc.count;
            (acc.mean, acc.comp) = kahan_inc(v / acc.count, q * acc.mean, q * acc.comp);
        }
        T_MIN if acc.value > v || acc.value.is_nan() => acc.value = v,
        T_MAX if acc.value < v || acc.value.is_nan() => acc.value = v,
        T_STDDEV | T_STDVAR => {
            let delta = v - acc.mean;
            acc.mean += delta / acc.count;
            acc.m2 += delta * (v - acc.mean);
        }
        _ => {}
    }
}

/// The value `op` gives for a group's state.
pub(super) fn finish(op: u16, acc: &Acc) -> f64 {
    match op {
        T_SUM => acc.sum + acc.comp,
        T_AVG if acc.incremental => acc.mean + acc.comp,
        T_AVG => acc.sum / acc.count + acc.comp / acc.count,
        T_COUNT => acc.count,
        T_GROUP => 1.0,
        T_MIN | T_MAX => acc.value,
        T_STDVAR => acc.m2 / acc.count,
        T_STDDEV => (acc.m2 / acc.count).sqrt(),
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avg_of(values: &[f64]) -> f64 {
        let mut acc = first_acc(values[0], 0, false);
        for (j, v) in values.iter().enumerate().skip(1) {
            add(T_AVG, &mut acc, *v, j, false);
        }
        finish(T_AVG, &acc)
    }

    /// Bit for bit what Prometheus 3's `avg` gives (its algorithm replayed by hand in IEEE
    /// arithmetic); the same cases as `avg_over_time`'s, whose algorithm it shares.
    #[test]
    fn avg_sums_then_divides_as_prometheus_3_does() {
        assert_eq!(avg_of(&[0.1, 0.2, 0.3]).to_bits(), 0.2f64.to_bits());
        assert_eq!(
            avg_of(&[0.7, 0.1, 0.3, 0.9, 1.3]).to_bits(),
            0.6599999999999999f64.to_bits()
        );
        assert_eq!(avg_of(&[5.0]), 5.0);
        assert_eq!(avg_of(&[1e308, 1e308]), 1e308);
        assert_eq!(avg_of(&[1e308, 1e308, 1e308, -1e308]), 5e307);
        assert_eq!(avg_of(&[1e308, 1e308, -1e308, 5.0]), 2.5e307);
        assert_eq!(avg_of(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert!(avg_of(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert!(avg_of(&[f64::NAN, 1.0]).is_nan());
    }
}
