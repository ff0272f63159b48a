//! The state every aggregation keeps per group and step, and the mapping of input series
//! to groups: shared by the per-step walk (`aggregate`) and the series-by-series one
//! (`by_series`), so both compute with the same arithmetic.

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::token::{T_AVG, T_COUNT, T_GROUP, T_MAX, T_MIN, T_STDDEV, T_STDVAR, T_SUM};
use promql_parser::parser::LabelModifier;

use crate::model::Labels;

use super::super::value::{IdMap, RunningSum};

/// Running state of one group at one step.
#[derive(Clone, Default)]
pub(super) struct Acc {
    /// Values added (0 for a state nothing was added to).
    pub(super) count: f64,
    /// `sum`'s and `avg`'s running sum.
    total: RunningSum,
    /// `stddev`/`stdvar`: the sum of squared differences from the mean.
    m2: f64,
    /// `min`/`max`: the extreme so far; `stddev`/`stdvar`: the running mean.
    value: f64,
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
        total: RunningSum::new(v),
        m2: 0.0,
        value: v,
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
        T_SUM => acc.total.add(v),
        T_AVG => acc.total.add_for_mean(v, acc.count),
        T_MIN if acc.value > v || acc.value.is_nan() => acc.value = v,
        T_MAX if acc.value < v || acc.value.is_nan() => acc.value = v,
        T_STDDEV | T_STDVAR => {
            let delta = v - acc.value;
            acc.value += delta / acc.count;
            acc.m2 += delta * (v - acc.value);
        }
        _ => {}
    }
}

/// The value `op` gives for a group's state.
pub(super) fn finish(op: u16, acc: &Acc) -> f64 {
    match op {
        T_SUM => acc.total.total(),
        T_AVG => acc.total.mean(acc.count),
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

    /// `avg` goes through [`RunningSum`]'s mean (tested bit for bit there).
    #[test]
    fn avg_is_the_running_sums_mean() {
        let values = [0.1, 0.2, 0.3];
        let mut acc = first_acc(values[0], 0, false);
        for (j, v) in values.iter().enumerate().skip(1) {
            add(T_AVG, &mut acc, *v, j, false);
        }
        assert_eq!(finish(T_AVG, &acc).to_bits(), 0.2f64.to_bits());
    }
}
