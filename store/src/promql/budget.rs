//! The samples all running queries of one engine may hold together: a shared bound on query
//! memory beside each query's own `max_samples`. Ten queries that each stay under their own
//! limit can still exhaust the process together; with this budget the query that would take
//! the total past it fails at once (naming the limit) and the others run on untouched.
//!
//! A query reserves samples as it loads and produces them (the same count `max_samples`
//! checks, so an upper bound of what it holds) and gives them all back when its evaluation
//! ends, whether it succeeded or failed.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Samples held by running queries, against a limit (0 = no limit).
#[derive(Debug, Default)]
pub struct SampleBudget {
    limit: usize,
    in_use: AtomicUsize,
}

impl SampleBudget {
    /// A budget of `limit` samples across queries; 0 means none is enforced (samples are
    /// still counted, for [`SampleBudget::in_use`]).
    pub fn new(limit: usize) -> SampleBudget {
        SampleBudget {
            limit,
            in_use: AtomicUsize::new(0),
        }
    }

    /// The limit (0 = none).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Samples reserved by the queries running now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Takes `n` more samples; fails, taking nothing, when the running queries together
    /// would then hold more than the limit.
    pub(crate) fn reserve(&self, n: usize) -> Result<(), usize> {
        let mut current = self.in_use.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(n);
            if self.limit > 0 && next > self.limit {
                return Err(self.limit);
            }
            match self
                .in_use
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives back `n` samples reserved before.
    pub(crate) fn release(&self, n: usize) {
        let before = self.in_use.fetch_sub(n, Ordering::Relaxed);
        debug_assert!(
            before >= n,
            "released {n} samples but only {before} were reserved"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fail_past_the_limit_and_take_nothing() {
        let b = SampleBudget::new(100);
        assert_eq!(b.reserve(60), Ok(()));
        assert_eq!(b.reserve(41), Err(100));
        assert_eq!(b.in_use(), 60);
        assert_eq!(b.reserve(40), Ok(()));
        b.release(60);
        b.release(40);
        assert_eq!(b.in_use(), 0);
        // No limit: counted, never refused.
        let open = SampleBudget::new(0);
        assert_eq!(open.reserve(usize::MAX / 2), Ok(()));
        assert_eq!(open.in_use(), usize::MAX / 2);
    }
}

#[cfg(test)]
mod engine_tests {
    #![allow(clippy::unwrap_used)]
    use crate::model::{Labels, Sample};
    use crate::promql::{Engine, EngineOptions, MemStorage, PromqlError};

    #[test]
    fn a_query_fails_while_others_hold_the_budget_and_gives_its_samples_back() {
        let mut storage = MemStorage::new();
        let labels = Labels::from_pairs([("__name__", "m")]);
        for k in 0..50 {
            storage.add(&labels, Sample::new(k * 1_000, k as f64));
        }
        let engine = Engine::new(EngineOptions {
            max_samples_total: 100,
            ..EngineOptions::default()
        });
        let budget = engine.sample_budget().clone();
        // Another query holds 80 of the 100 samples: 50 more do not fit.
        budget.reserve(80).unwrap();
        let e = engine
            .instant_query(&storage, "count_over_time(m[1m])", 50_000)
            .unwrap_err();
        assert!(matches!(e, PromqlError::TooManySamplesInFlight(100)), "{e:?}");
        assert_eq!(e.error_type(), "unavailable");
        assert_eq!(budget.in_use(), 80, "the failed query keeps nothing");
        // An engine for one query's own options shares the budget.
        let other = engine.with_options(EngineOptions::default());
        assert!(other
            .instant_query(&storage, "count_over_time(m[1m])", 50_000)
            .is_err());
        // Once the other query ends, it runs, and gives everything back.
        budget.release(80);
        let r = engine
            .instant_query(&storage, "count_over_time(m[1m])", 50_000)
            .unwrap();
        assert!(r.stats.samples_loaded >= 50, "{:?}", r.stats);
        assert_eq!(budget.in_use(), 0);
    }
}
