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
        T_AVG => {
            (acc.sum, acc.comp) = kahan_inc(v, acc.sum, acc.comp);
            // Incremental mean, used when the plain sum overflows.
            if acc.mean.is_infinite() && ((v.is_infinite() && (acc.mean > 0.0) == (v > 0.0)) || v.is_finite())
            {
                return;
            }
            acc.mean += v / acc.count - acc.mean / acc.count;
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
        T_AVG => {
            let s = acc.sum + acc.comp;
            if s.is_infinite() && acc.mean.is_finite() {
                acc.mean
            } else {
                s / acc.count
            }
        }
        T_COUNT => acc.count,
        T_GROUP => 1.0,
        T_MIN | T_MAX => acc.value,
        T_STDVAR => acc.m2 / acc.count,
        T_STDDEV => (acc.m2 / acc.count).sqrt(),
        _ => f64::NAN,
    }
}
