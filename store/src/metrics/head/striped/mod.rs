//! The database's head split into stripes, so appends to different series do not serialize
//! on one lock.
//!
//! A series lives in the stripe its labels hash to (a fixed-seed hash, so the same labels
//! go to the same stripe in every process), and its ref is congruent to the stripe's index
//! modulo [`STRIPES`], so a ref alone (in a WAL record, a rollback) names its stripe. Each
//! stripe is a [`Head`] of its own behind its own `RwLock`: an append goes through its
//! series in order and takes the write lock of one series' stripe at a time (never two at
//! once, so no lock order can deadlock); appenders writing different series meet only when
//! two of their series hash to the same stripe at the same moment. Queries take each
//! stripe's read lock in turn.
//!
//! What must hold for the whole head is kept outside the stripes: the series limits in
//! [`SeriesTotals`] (a new series reserves its place there before it is created), the bytes
//! (an atomic adjusted once per append, read by the memory budget) and the newest timestamp
//! seen (an atomic raised when a stripe saw a newer one, given to a stripe before it checks
//! samples against the too-old rule). The last two may lag by the appends in flight on
//! other threads, which a memory budget and a window of minutes tolerate.
//!
//! The caller (`Db`) holds its `RwLock<StripedHead>` for reading around an append *and*
//! the WAL submission of its record, and for writing around a cut; that is what keeps every
//! applied append in the WAL segment the cut's rotation closes, as with one lock.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use foldhash::fast::FixedState;
use foldhash::HashMap;
use parking_lot::RwLock;

use super::memory::SeriesGate;
use super::rules::AppendRules;
use super::totals::SeriesTotals;
use super::{Head, MemSeries};
use crate::metrics::append::{AppendReport, SeriesHint};
use crate::metrics::record::{SeriesDef, WalRecord};
use crate::model::{LabelMatcher, Labels, SeriesSamples};

/// Number of stripes. Part of the meaning of series refs (`ref % STRIPES` is the stripe),
/// so changing it renumbers series at the next WAL replay (see [`StripedHead::replay`]),
/// which is correct but makes the first records after it define every series again.
pub(crate) const STRIPES: usize = 64;

/// The seed of the hash that picks a series' stripe: fixed, so a restart puts every series
/// back in the stripe its ref names.
const STRIPE_SEED: u64 = 0x6469_6462_616e_5354;

/// `i64::MIN` stands for "no timestamp seen yet" in the atomic newest timestamp.
const NONE_T: i64 = i64::MIN;

/// A head of [`STRIPES`] stripes (see the module documentation).
#[derive(Debug)]
pub(crate) struct StripedHead {
    stripes: Box<[RwLock<Head>]>,
    totals: Arc<SeriesTotals>,
    /// Sum of the stripes' bytes as of their last append, rollback or replay.
    bytes: AtomicU64,
    /// Newest timestamp accepted by any series in the database ([`NONE_T`]: none).
    max_seen_t: AtomicI64,
}

/// Heads with fewer series are read on the caller's thread alone: their reads are small
/// next to starting threads.
const PARALLEL_SELECT_SERIES: u64 = 50_000;

/// The stripe of a series with labels `labels`.
fn stripe_of_labels(labels: &Labels) -> usize {
    (FixedState::with_seed(STRIPE_SEED).hash_one(labels) % STRIPES as u64) as usize
}

/// The stripe holding the series `series_ref`.
fn stripe_of_ref(series_ref: u64) -> usize {
    (series_ref % STRIPES as u64) as usize
}

fn to_atomic_t(t: Option<i64>) -> i64 {
    t.unwrap_or(NONE_T)
}

fn from_atomic_t(t: i64) -> Option<i64> {
    (t != NONE_T).then_some(t)
}

impl StripedHead {
    /// An empty head; `max_seen_t` is the database's newest timestamp so far.
    pub(crate) fn new(max_seen_t: Option<i64>) -> StripedHead {
        let totals = Arc::new(SeriesTotals::default());
        let mut stripes = Vec::with_capacity(STRIPES);
        for i in 0..STRIPES {
            // Refs start at 1: stripe 0's first ref is STRIPES itself.
            let first_ref = if i == 0 { STRIPES as u64 } else { i as u64 };
            stripes.push(Head::stripe(
                first_ref,
                STRIPES as u64,
                max_seen_t,
                totals.clone(),
            ));
        }
        StripedHead::from_stripes(stripes, totals, max_seen_t)
    }

    fn from_stripes(stripes: Vec<Head>, totals: Arc<SeriesTotals>, max_seen_t: Option<i64>) -> StripedHead {
        let mut bytes = 0;
        for s in &stripes {
            bytes += s.bytes();
        }
        StripedHead {
            stripes: stripes.into_iter().map(RwLock::new).collect(),
            totals,
            bytes: AtomicU64::new(bytes),
            max_seen_t: AtomicI64::new(to_atomic_t(max_seen_t)),
        }
    }

    /// Series in the head.
    pub(crate) fn num_series(&self) -> u64 {
        self.totals.series()
    }

    /// Samples (of both kinds) in the head.
    pub(crate) fn num_samples(&self) -> u64 {
        let mut total = 0;
        for stripe in self.stripes.iter() {
            total += stripe.read().num_samples();
        }
        total
    }

    /// Bytes held by series, postings and samples, as `memory` accounts them.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Oldest and newest sample timestamp held by this head.
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        let mut range: Option<(i64, i64)> = None;
        for stripe in self.stripes.iter() {
            if let Some((a, b)) = stripe.read().time_range() {
                range = Some(match range {
                    Some((min, max)) => (min.min(a), max.max(b)),
                    None => (a, b),
                });
            }
        }
        range
    }

    /// Newest timestamp accepted by any series in the database.
    pub(crate) fn max_seen_t(&self) -> Option<i64> {
        from_atomic_t(self.max_seen_t.load(Ordering::Relaxed))
    }

    /// Raises the database-wide newest timestamp (e.g. from blocks found at open).
    pub(crate) fn observe_time(&self, t: i64) {
        self.max_seen_t.fetch_max(t, Ordering::Relaxed);
    }

    /// Lowers the newest timestamp to `latest` when it lies beyond it (see
    /// [`Head::forget_future`]).
    pub(crate) fn forget_future(&mut self, latest: i64) {
        for stripe in self.stripes.iter_mut() {
            stripe.get_mut().forget_future(latest);
        }
        let t = self.max_seen_t.get_mut();
        if *t != NONE_T && *t > latest {
            *t = latest;
        }
    }

    /// Applies a batch under the acceptance rules at server time `now_ms`, counting
    /// refusals in `report`, and returns the WAL record of what was accepted (the caller
    /// submits it before letting go of its read lock on the head). `gate` carries the
    /// memory budget and the bytes held outside this head.
    ///
    /// Series are applied in the order given, each under its stripe's write lock (kept
    /// while the next series goes to the same stripe), so which new series a limit refuses
    /// is the same as with one lock: the later ones.
    ///
    /// `hints` (empty, or one per series of `batch`) say where each series was at its last
    /// append; each is replaced by where it is now ([`SeriesHint::NONE`] when refused).
    /// The stripe always comes from the labels: a hint only names a slot within it.
    pub(crate) fn append(
        &self,
        batch: Vec<SeriesSamples>,
        hints: &mut [SeriesHint],
        rules: &AppendRules,
        now_ms: i64,
        gate: SeriesGate,
        report: &mut AppendReport,
    ) -> WalRecord {
        debug_assert!(hints.is_empty() || hints.len() == batch.len());
        let mut record = WalRecord::default();
        // This append's change of the head's bytes, added to the shared figure at the end.
        let mut bytes_delta: i64 = 0;
        let mut items = batch.into_iter().enumerate();
        // The next series with its stripe (each series' labels are hashed once).
        let with_stripe = |(k, s): (usize, SeriesSamples)| (stripe_of_labels(&s.labels), k, s);
        let mut next = items.next().map(with_stripe);
        while let Some((index, k, first)) = next.take() {
            let Some(lock) = self.stripes.get(index) else {
                // Unreachable: `stripe_of_labels` is below STRIPES.
                debug_assert!(false, "stripe {index} out of range");
                next = items.next().map(with_stripe);
                continue;
            };
            let mut stripe = lock.write();
            let newest = self.max_seen_t.load(Ordering::Relaxed);
            if newest != NONE_T {
                stripe.observe_time(newest);
            }
            let bytes_before = stripe.bytes();
            let head_bytes = self.bytes().saturating_add_signed(bytes_delta);
            stripe.set_series_gate(SeriesGate {
                other_bytes: gate
                    .other_bytes
                    .saturating_add(head_bytes.saturating_sub(bytes_before)),
                limit: gate.limit,
            });
            append_one(
                &mut stripe,
                first,
                hints.get_mut(k),
                rules,
                now_ms,
                report,
                &mut record,
            );
            for (k, s) in items.by_ref() {
                let other = stripe_of_labels(&s.labels);
                if other != index {
                    next = Some((other, k, s));
                    break;
                }
                append_one(
                    &mut stripe,
                    s,
                    hints.get_mut(k),
                    rules,
                    now_ms,
                    report,
                    &mut record,
                );
            }
            bytes_delta += stripe.bytes() as i64 - bytes_before as i64;
            let stripe_newest = stripe.max_seen_t().unwrap_or(NONE_T);
            drop(stripe);
            if stripe_newest > newest {
                self.max_seen_t.fetch_max(stripe_newest, Ordering::Relaxed);
            }
        }
        self.add_bytes(bytes_delta);
        record
    }

    /// Moves the head's byte figure by `delta` (never below zero).
    fn add_bytes(&self, delta: i64) {
        if delta >= 0 {
            self.bytes.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            let less = delta.unsigned_abs();
            let _ = self
                .bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some(b.saturating_sub(less))
                });
        }
    }

    /// Takes back an append whose WAL record failed (see [`Head::rollback`]), stripe by
    /// stripe.
    pub(crate) fn rollback(&self, record: &WalRecord) {
        let mut parts: Vec<WalRecord> = (0..STRIPES).map(|_| WalRecord::default()).collect();
        for (series_ref, samples) in &record.samples {
            if let Some(part) = parts.get_mut(stripe_of_ref(*series_ref)) {
                part.samples.push((*series_ref, samples.clone()));
            }
        }
        for (series_ref, samples) in &record.histograms {
            if let Some(part) = parts.get_mut(stripe_of_ref(*series_ref)) {
                part.histograms.push((*series_ref, samples.clone()));
            }
        }
        for def in &record.series {
            if let Some(part) = parts.get_mut(stripe_of_ref(def.series_ref)) {
                part.series.push(def.clone());
            }
        }
        for (lock, part) in self.stripes.iter().zip(&parts) {
            if part.series.is_empty() && part.samples.is_empty() && part.histograms.is_empty() {
                continue;
            }
            let mut stripe = lock.write();
            let before = stripe.bytes();
            stripe.rollback(part);
            let delta = stripe.bytes() as i64 - before as i64;
            drop(stripe);
            self.add_bytes(delta);
        }
    }

    /// Notes that the series defined in an acknowledged record are logged.
    pub(crate) fn mark_logged(&self, defs: &[SeriesDef]) {
        for def in defs {
            if let Some(lock) = self.stripes.get(stripe_of_ref(def.series_ref)) {
                lock.read().mark_logged(std::slice::from_ref(def));
            }
        }
    }

    /// Appends the series with matchers `matchers` and samples in `[start, end]` to `out`
    /// (in no particular order).
    pub(crate) fn select(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        out: &mut Vec<SeriesSamples>,
    ) {
        let workers = crate::cores::read_threads();
        if workers <= 1 || self.num_series() < PARALLEL_SELECT_SERIES {
            for stripe in self.stripes.iter() {
                stripe.read().select(matchers, start, end, out);
            }
            return;
        }
        // Decoding the chunks is most of a large read: the stripes are split into runs,
        // one per thread, and the runs' series put back in stripe order (the order one
        // thread gives).
        let per_worker = self.stripes.len().div_ceil(workers).max(1);
        let mut runs = self.stripes.chunks(per_worker);
        let first = runs.next().unwrap_or(&[]);
        let select_run = |run: &[RwLock<Head>]| {
            let mut series = Vec::new();
            for stripe in run {
                stripe.read().select(matchers, start, end, &mut series);
            }
            series
        };
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for run in runs {
                handles.push((run, scope.spawn(move || select_run(run))));
            }
            out.extend(select_run(first));
            for (run, h) in handles {
                match h.join() {
                    Ok(series) => out.extend(series),
                    // A thread that panicked: its stripes read again on this one.
                    Err(_) => out.extend(select_run(run)),
                }
            }
        });
    }

    /// The head that follows this one at a cut (see [`Head::successor`]).
    pub(crate) fn successor(&self, drop_before: i64, for_memory: bool) -> StripedHead {
        let totals = Arc::new(SeriesTotals::default());
        let mut stripes = Vec::with_capacity(STRIPES);
        for stripe in self.stripes.iter() {
            stripes.push(stripe.read().successor(drop_before, for_memory, totals.clone()));
        }
        StripedHead::from_stripes(stripes, totals, self.max_seen_t())
    }

    /// A record defining every series of this head with its newest timestamp: the first
    /// record of the WAL segment that starts with this head.
    pub(crate) fn checkpoint(&self) -> WalRecord {
        let mut record = WalRecord::default();
        for stripe in self.stripes.iter() {
            record.series.extend(stripe.read().checkpoint().series);
        }
        record
    }

    /// Calls `f` with the series holding samples, sorted by labels (the order of a block),
    /// while holding every stripe's read lock.
    pub(crate) fn with_sorted_series<R>(&self, f: impl FnOnce(&[&MemSeries]) -> R) -> R {
        let guards: Vec<_> = self.stripes.iter().map(|s| s.read()).collect();
        let mut series: Vec<&MemSeries> = Vec::new();
        for guard in &guards {
            series.extend(guard.series_with_samples());
        }
        // Labels are unique: an unstable sort gives the same order without a scratch buffer.
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        f(&series)
    }

    /// Applies one WAL record at open; returns the number of sample groups whose series
    /// was unknown (dropped).
    ///
    /// A series whose recorded ref does not name the stripe its labels hash to (a WAL from
    /// before the head had stripes, or from another stripe count) gets a fresh ref there,
    /// remembered in `renumbered` for the samples that follow, and is left unlogged so
    /// the next record with its samples defines it under the new ref. A definition always
    /// resets what its recorded ref means from there on, which keeps a ref renumbered from
    /// an old segment from capturing a newer series that was given the same number.
    pub(crate) fn replay(&mut self, record: WalRecord, renumbered: &mut HashMap<u64, u64>) -> u64 {
        for def in record.series {
            self.replay_series(def, renumbered);
        }
        let mut unknown = 0;
        for (recorded, samples) in &record.samples {
            let series_ref = renumbered.get(recorded).copied().unwrap_or(*recorded);
            let known = match self.stripes.get_mut(stripe_of_ref(series_ref)) {
                Some(stripe) => stripe.get_mut().replay_samples(series_ref, samples),
                None => false,
            };
            if !known {
                unknown += 1;
            }
        }
        for (recorded, samples) in &record.histograms {
            let series_ref = renumbered.get(recorded).copied().unwrap_or(*recorded);
            let known = match self.stripes.get_mut(stripe_of_ref(series_ref)) {
                Some(stripe) => stripe.get_mut().replay_histograms(series_ref, samples),
                None => false,
            };
            if !known {
                unknown += 1;
            }
        }
        unknown
    }

    fn replay_series(&mut self, def: SeriesDef, renumbered: &mut HashMap<u64, u64>) {
        let index = stripe_of_labels(&def.labels);
        let Some(stripe) = self.stripes.get_mut(index) else {
            return;
        };
        let stripe = stripe.get_mut();
        let recorded = def.series_ref;
        if let Some(existing) = stripe.lookup(&def.labels) {
            if existing == recorded {
                renumbered.remove(&recorded);
            } else {
                renumbered.insert(recorded, existing);
            }
            stripe.replay_series(SeriesDef {
                series_ref: existing,
                ..def
            });
            return;
        }
        if stripe_of_ref(recorded) == index && !stripe.has_ref(recorded) {
            renumbered.remove(&recorded);
            stripe.replay_series(def);
            return;
        }
        let fresh = stripe.replay_series_renumbered(def.labels, def.max_t);
        renumbered.insert(recorded, fresh);
    }

    /// Sets the head-wide figures (bytes, newest timestamp) from the stripes: call once after
    /// the last [`StripedHead::replay`], which changes the stripes through `&mut` only.
    pub(crate) fn finish_replay(&mut self) {
        let mut bytes = 0;
        let mut newest = *self.max_seen_t.get_mut();
        for stripe in self.stripes.iter_mut() {
            let stripe = stripe.get_mut();
            bytes += stripe.bytes();
            if let Some(t) = stripe.max_seen_t() {
                newest = newest.max(t);
            }
        }
        *self.bytes.get_mut() = bytes;
        *self.max_seen_t.get_mut() = newest;
    }
}

/// Applies one series' samples to its stripe and adds what was accepted to `record`;
/// `hint`, when given, is where the series was and becomes where it is.
fn append_one(
    stripe: &mut Head,
    s: SeriesSamples,
    hint: Option<&mut SeriesHint>,
    rules: &AppendRules,
    now_ms: i64,
    report: &mut AppendReport,
    record: &mut WalRecord,
) {
    let given = hint.as_deref().copied().unwrap_or_default();
    let out = stripe.append_series_with(s.labels, s.samples, &s.histograms, given, rules, now_ms, report);
    if let Some(hint) = hint {
        *hint = out.as_ref().map_or(SeriesHint::NONE, |o| o.hint);
    }
    let Some(out) = out else {
        return;
    };
    if let Some(def) = out.definition {
        record.series.push(def);
    }
    if !out.accepted.is_empty() {
        record.samples.push((out.series_ref, out.accepted));
    }
    if !out.accepted_histograms.is_empty() {
        record.histograms.push((out.series_ref, out.accepted_histograms));
    }
}

#[cfg(test)]
mod tests;
