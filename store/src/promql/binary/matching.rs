//! Vector matching's bookkeeping: series' matching signatures interned to small ids, and
//! the result label sets of matched pairs, made once per pair.

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::ops::is_arithmetic;
use crate::model::{Labels, METRIC_NAME_LABEL};
use crate::promql::value::IdMap;

/// The vector matching a binary expression asks for: its `on`/`ignoring` labels, if any,
/// and its cardinality (one-to-one unless `group_left`/`group_right`).
pub(super) fn vector_matching(be: &BinaryExpr) -> (Option<&LabelModifier>, &VectorMatchCardinality) {
    let modifier = be.modifier.as_ref();
    let matching = modifier.and_then(|m| m.matching.as_ref());
    let card = modifier
        .map(|m| &m.card)
        .unwrap_or(&VectorMatchCardinality::OneToOne);
    (matching, card)
}

/// Matching signatures of series, interned to small ids once per distinct series.
pub(super) struct Signatures<'m> {
    matching: Option<&'m LabelModifier>,
    by_ptr: IdMap<usize, usize>,
    ids: HashMap<Labels, usize>,
    labels: Vec<Labels>,
}

impl<'m> Signatures<'m> {
    pub(super) fn new(matching: Option<&'m LabelModifier>) -> Self {
        Signatures {
            matching,
            by_ptr: IdMap::default(),
            ids: HashMap::new(),
            labels: Vec::new(),
        }
    }

    pub(super) fn id(&mut self, l: &Arc<Labels>) -> usize {
        let key = Arc::as_ptr(l) as usize;
        if let Some(&id) = self.by_ptr.get(&key) {
            return id;
        }
        let sig = match self.matching {
            Some(LabelModifier::Include(names)) => l.keep_only(&names.labels),
            Some(LabelModifier::Exclude(names)) => l.drop_names(&names.labels).without_metric_name(),
            None => l.without_metric_name(),
        };
        let id = match self.ids.get(&sig) {
            Some(&id) => id,
            None => {
                self.labels.push(sig.clone());
                self.ids.insert(sig, self.labels.len() - 1);
                self.labels.len() - 1
            }
        };
        self.by_ptr.insert(key, id);
        id
    }

    pub(super) fn describe(&self, id: usize) -> String {
        self.labels.get(id).map(|l| l.to_string()).unwrap_or_default()
    }
}

/// Result label sets per (many-side series, one-side series) pair, interned.
#[derive(Default)]
pub(super) struct ResultLabels {
    by_pair: IdMap<(usize, usize), Arc<Labels>>,
    interned: HashMap<Labels, Arc<Labels>>,
}

/// The labels of a vector-matching result, as Prometheus' `resultMetric`.
pub(super) fn result_labels(
    results: &mut ResultLabels,
    op: u16,
    return_bool: bool,
    card: &VectorMatchCardinality,
    matching: Option<&LabelModifier>,
    many: &Arc<Labels>,
    one: &Arc<Labels>,
) -> Arc<Labels> {
    let key = (Arc::as_ptr(many) as usize, Arc::as_ptr(one) as usize);
    if let Some(l) = results.by_pair.get(&key) {
        return l.clone();
    }
    let mut l: Labels = (**many).clone();
    if is_arithmetic(op) || return_bool {
        l = l.without(METRIC_NAME_LABEL);
    }
    if matches!(card, VectorMatchCardinality::OneToOne) {
        match matching {
            Some(LabelModifier::Include(names)) => l = l.keep_only(&names.labels),
            Some(LabelModifier::Exclude(names)) => l = l.drop_names(&names.labels),
            None => {}
        }
    }
    if let Some(include) = card.labels() {
        for name in &include.labels {
            l = l.with(name, one.get(name).unwrap_or(""));
        }
    }
    let arc = match results.interned.get(&l) {
        Some(a) => a.clone(),
        None => {
            let a = Arc::new(l.clone());
            results.interned.insert(l, a.clone());
            a
        }
    };
    results.by_pair.insert(key, arc.clone());
    arc
}
