#![allow(clippy::unwrap_used)]
use std::sync::Arc;

use super::*;
use crate::metrics::append::SeriesLimits;
use crate::model::Sample;

const T0: i64 = 1_700_000_000_000;

fn rules(limits: SeriesLimits) -> AppendRules {
    AppendRules {
        limits,
        out_of_order_window_ms: 600_000,
        max_sample_age_ms: 0,
        max_future_ms: 0,
    }
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("m{}", i % 3)),
        ("instance", format!("host-{i}")),
    ])
}

fn one(i: usize, t: i64, v: f64) -> SeriesSamples {
    SeriesSamples {
        labels: labels(i),
        samples: vec![Sample::new(t, v)],
        histograms: Vec::new(),
    }
}

/// One series and its samples as (timestamp, value).
type SeriesContents = (Labels, Vec<(i64, f64)>);

/// Every series (label → samples) the head holds, sorted by labels.
fn contents(head: &StripedHead) -> Vec<SeriesContents> {
    let mut out = Vec::new();
    head.select(&[], i64::MIN, i64::MAX, &mut out);
    let mut got: Vec<SeriesContents> = out
        .into_iter()
        .map(|s| {
            let samples = s.samples.iter().map(|x| (x.timestamp_ms, x.value)).collect();
            (s.labels, samples)
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    got
}

#[test]
fn refs_name_the_stripe_the_labels_hash_to() {
    let head = StripedHead::new(None);
    let batch: Vec<SeriesSamples> = (0..500).map(|i| one(i, T0, 1.0)).collect();
    let mut report = AppendReport::default();
    let record = head.append(
        batch,
        &mut [],
        &rules(SeriesLimits::default()),
        T0,
        SeriesGate::default(),
        &mut report,
    );
    assert_eq!(report.accepted, 500);
    assert_eq!(record.series.len(), 500);
    let mut used = std::collections::HashSet::new();
    for def in &record.series {
        assert_eq!(
            stripe_of_ref(def.series_ref),
            stripe_of_labels(&def.labels),
            "{def:?}"
        );
        assert!(used.insert(def.series_ref), "ref {} given twice", def.series_ref);
    }
    assert!(used.len() > STRIPES / 2, "500 series spread over the stripes");
    assert_eq!(head.num_series(), 500);
    assert_eq!(head.num_samples(), 500);
    assert_eq!(head.time_range(), Some((T0, T0)));
}

/// Threads appending disjoint series at once: every sample is there, every series once,
/// the series limit holds exactly for the whole head and the byte figure is the stripes'.
#[test]
fn concurrent_appenders_keep_every_sample_and_the_limits_exact() {
    let head = Arc::new(StripedHead::new(None));
    let limits = SeriesLimits {
        max_series: 1_000,
        max_series_per_metric: 0,
        ..SeriesLimits::default()
    };
    let threads = 4;
    let per_thread = 400; // 1,600 series offered, 1,000 admitted
    let mut handles = Vec::new();
    for t in 0..threads {
        let head = head.clone();
        let rules = rules(limits.clone());
        handles.push(std::thread::spawn(move || {
            let mut report = AppendReport::default();
            for k in 0..10 {
                let batch: Vec<SeriesSamples> = (0..per_thread)
                    .map(|j| one(t * per_thread + j, T0 + k * 1_000, k as f64))
                    .collect();
                head.append(batch, &mut [], &rules, T0, SeriesGate::default(), &mut report);
            }
            report.accepted
        }));
    }
    let accepted: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(head.num_series(), 1_000);
    assert_eq!(accepted, 10_000, "each admitted series got its 10 samples");
    let got = contents(&head);
    assert_eq!(got.len(), 1_000);
    for (labels, samples) in &got {
        let expected: Vec<(i64, f64)> = (0..10).map(|k| (T0 + k * 1_000, k as f64)).collect();
        assert_eq!(samples, &expected, "{labels}");
    }
    let mut stripe_bytes = 0;
    for stripe in head.stripes.iter() {
        stripe_bytes += stripe.read().bytes();
    }
    assert_eq!(head.bytes(), stripe_bytes);
}

#[test]
fn rollback_takes_back_exactly_the_record_in_every_stripe() {
    let head = StripedHead::new(None);
    let r = rules(SeriesLimits::default());
    let mut report = AppendReport::default();
    let first: Vec<SeriesSamples> = (0..100).map(|i| one(i, T0, 1.0)).collect();
    let logged = head.append(first, &mut [], &r, T0, SeriesGate::default(), &mut report);
    head.mark_logged(&logged.series);
    let bytes_after_first = head.bytes();
    // The second append: new samples for the same series, plus 50 new series.
    let second: Vec<SeriesSamples> = (0..150).map(|i| one(i, T0 + 1_000, 2.0)).collect();
    let refused = head.append(second, &mut [], &r, T0, SeriesGate::default(), &mut report);
    assert_eq!(refused.series.len(), 50, "only the new series are defined");
    head.rollback(&refused);
    assert_eq!(head.num_series(), 100, "the refused append's new series are gone");
    assert_eq!(head.num_samples(), 100);
    assert_eq!(head.bytes(), bytes_after_first);
    for (_, samples) in contents(&head) {
        assert_eq!(samples, vec![(T0, 1.0)]);
    }
}

/// A WAL written before the head had stripes numbers series 1, 2, 3, …: at replay each
/// lands in its labels' stripe (renumbered where its ref names another), its samples follow
/// it, and a renumbered series is defined again by the next record.
#[test]
fn replay_renumbers_refs_from_a_head_without_stripes() {
    let mut record = WalRecord::default();
    for i in 0..200usize {
        record.series.push(SeriesDef {
            series_ref: i as u64 + 1,
            max_t: None,
            labels: labels(i),
        });
        record
            .samples
            .push((i as u64 + 1, vec![Sample::new(T0, i as f64)]));
    }
    // Series whose labels hash to the stripe their ref names come first, so no renumbered
    // series takes their refs before them.
    let keeps = |def: &SeriesDef| stripe_of_labels(&def.labels) == stripe_of_ref(def.series_ref);
    record.series.sort_by_key(|def| !keeps(def));
    let kept = record.series.iter().filter(|def| keeps(def)).count();
    assert!(
        kept > 0 && kept < 200,
        "the data exercises both cases: {kept} kept"
    );
    let mut head = StripedHead::new(None);
    let mut renumbered = HashMap::default();
    assert_eq!(
        head.replay(record, &mut renumbered),
        0,
        "no sample lost its series"
    );
    head.finish_replay();
    assert_eq!(renumbered.len(), 200 - kept);
    let got = contents(&head);
    assert_eq!(got.len(), 200);
    for (i, (l, samples)) in {
        let mut by_index: Vec<(usize, SeriesContents)> = Vec::new();
        for entry in got {
            let i: usize = entry.0.get("instance").unwrap()["host-".len()..].parse().unwrap();
            by_index.push((i, entry));
        }
        by_index.sort_by_key(|(i, _)| *i);
        by_index
    } {
        assert_eq!(l, labels(i));
        assert_eq!(samples, vec![(T0, i as f64)], "series {i} kept its own sample");
    }
    // The next append defines the renumbered series again (under their new refs) and not
    // the others.
    let batch: Vec<SeriesSamples> = (0..200).map(|i| one(i, T0 + 1_000, 0.0)).collect();
    let mut report = AppendReport::default();
    let next = head.append(
        batch,
        &mut [],
        &rules(SeriesLimits::default()),
        T0,
        SeriesGate::default(),
        &mut report,
    );
    assert_eq!(next.series.len(), renumbered.len());
    for def in &next.series {
        assert_eq!(stripe_of_ref(def.series_ref), stripe_of_labels(&def.labels));
    }
}

/// A ref renumbered from an old segment means, after a newer definition with that ref,
/// the newer series: its later samples go to it, not to the renumbered one.
#[test]
fn a_definition_resets_what_its_ref_means() {
    // Find an old ref that must be renumbered (its labels hash to another stripe) and a
    // series whose labels hash to that ref's stripe, as a head with stripes would number it.
    let mut old = None;
    for i in 0..1_000usize {
        let series_ref = 1_000_000 + i as u64;
        if stripe_of_ref(series_ref) != stripe_of_labels(&labels(i)) {
            old = Some((i, series_ref));
            break;
        }
    }
    let (old_i, shared_ref) = old.unwrap();
    let mut newer = None;
    for i in 1_000..10_000usize {
        if stripe_of_labels(&labels(i)) == stripe_of_ref(shared_ref) {
            newer = Some(i);
            break;
        }
    }
    let newer_i = newer.unwrap();
    let mut head = StripedHead::new(None);
    let mut renumbered = HashMap::default();
    let mut first = WalRecord::default();
    first.series.push(SeriesDef {
        series_ref: shared_ref,
        max_t: None,
        labels: labels(old_i),
    });
    first.samples.push((shared_ref, vec![Sample::new(T0, 1.0)]));
    head.replay(first, &mut renumbered);
    let mut second = WalRecord::default();
    second.series.push(SeriesDef {
        series_ref: shared_ref,
        max_t: None,
        labels: labels(newer_i),
    });
    second.samples.push((shared_ref, vec![Sample::new(T0, 2.0)]));
    head.replay(second, &mut renumbered);
    let mut third = WalRecord::default();
    third.samples.push((shared_ref, vec![Sample::new(T0 + 1, 3.0)]));
    head.replay(third, &mut renumbered);
    head.finish_replay();
    let got = contents(&head);
    assert_eq!(got, {
        let mut want = vec![
            (labels(old_i), vec![(T0, 1.0)]),
            (labels(newer_i), vec![(T0, 2.0), (T0 + 1, 3.0)]),
        ];
        want.sort_by(|a, b| a.0.cmp(&b.0));
        want
    });
}

#[test]
fn a_large_heads_read_on_several_threads_gives_the_series_one_thread_gives_in_its_order() {
    // On a machine with one core both reads run on one thread and this checks nothing new.
    let n = PARALLEL_SELECT_SERIES as usize + 1_000;
    let head = StripedHead::new(None);
    let mut report = AppendReport::default();
    for t in [T0, T0 + 15_000] {
        let batch: Vec<SeriesSamples> = (0..n).map(|i| one(i, t, i as f64)).collect();
        head.append(
            batch,
            &mut [],
            &rules(SeriesLimits::default()),
            t,
            SeriesGate::default(),
            &mut report,
        );
    }
    assert_eq!(report.accepted, 2 * n as u64);
    let matchers = [crate::model::LabelMatcher::new(crate::model::MatchOp::Equal, "__name__", "m1").unwrap()];
    let mut threaded = Vec::new();
    head.select(&matchers, T0, T0 + 15_000, &mut threaded);
    let mut one_thread = Vec::new();
    for stripe in head.stripes.iter() {
        stripe.read().select(&matchers, T0, T0 + 15_000, &mut one_thread);
    }
    assert_eq!(threaded.len(), (0..n).filter(|i| i % 3 == 1).count());
    assert_eq!(threaded.len(), one_thread.len());
    for (a, b) in threaded.iter().zip(&one_thread) {
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.samples, b.samples);
        assert_eq!(a.samples.len(), 2, "{}", a.labels);
    }
}

/// Hints lead an append to its series without finding it by labels, and only ever to it:
/// each append hands back where every series is; a wrong hint (another series', one past
/// every slot, a series removed and its slot taken by another, all of them shuffled) or
/// the hints of the head before a cut still put every sample in its own series, and
/// come back right.
#[test]
fn hints_lead_to_their_series_and_wrong_ones_are_harmless() {
    let head = StripedHead::new(None);
    let r = rules(SeriesLimits::default());
    let n = 300;
    let batch = |k: i64| -> Vec<SeriesSamples> {
        (0..n)
            .map(|i| one(i, T0 + k * 1_000, (i as i64 * 10 + k) as f64))
            .collect()
    };
    let mut report = AppendReport::default();
    let mut hints = vec![SeriesHint::NONE; n];
    let record = head.append(batch(0), &mut hints, &r, T0, SeriesGate::default(), &mut report);
    head.mark_logged(&record.series);
    assert!(
        hints.iter().all(|h| h.slot().is_some()),
        "every series got a hint"
    );
    let first = hints.clone();
    // Right hints: the same hints come back, no series is defined again.
    let record = head.append(batch(1), &mut hints, &r, T0, SeriesGate::default(), &mut report);
    assert_eq!(hints, first);
    assert!(record.series.is_empty());
    // Wrong ones: reversed (each another series' slot, or one in another stripe), past
    // every slot, and garbage.
    let mut wrong: Vec<SeriesHint> = first.iter().rev().copied().collect();
    wrong[0] = SeriesHint::at(u32::MAX - 1);
    wrong[1] = SeriesHint::from_bits(12_345_678);
    let record = head.append(batch(2), &mut wrong, &r, T0, SeriesGate::default(), &mut report);
    assert_eq!(wrong, first, "the hints handed back are the series' own");
    assert!(record.series.is_empty(), "no series was created twice");
    assert_eq!(head.num_series(), n as u64);
    // A cut that drops the odd series (no sample since before it): the next head holds
    // the even ones in other slots, so most old hints now lead to other series; every
    // sample still goes to its own series, odd ones come back as new series.
    let even: Vec<SeriesSamples> = (0..n).step_by(2).map(|i| one(i, T0 + 2_500, 0.5)).collect();
    head.append(even, &mut [], &r, T0, SeriesGate::default(), &mut report);
    let next = head.successor(T0 + 2_500, false);
    assert_eq!(next.num_series(), n as u64 / 2);
    let mut old = first.clone();
    next.append(batch(3), &mut old, &r, T0, SeriesGate::default(), &mut report);
    let moved = (0..n).step_by(2).filter(|&i| old[i] != first[i]).count();
    assert!(moved > n / 4, "the cut moved the even series: {moved}");
    assert_eq!(next.num_series(), n as u64);
    let got = contents(&next);
    assert_eq!(got.len(), n);
    for (labels, samples) in &got {
        let i: usize = labels
            .get("instance")
            .unwrap()
            .trim_start_matches("host-")
            .parse()
            .unwrap();
        // The cut left the earlier samples to a block: the new head has the last one.
        let last = (T0 + 3_000, (i as i64 * 10 + 3) as f64);
        assert_eq!(samples, &vec![last], "{labels}");
    }
    // A slot freed and taken by another series: the hint of the removed one finds the
    // newcomer's labels there, not its own, and the series is created afresh.
    let gone = labels(7);
    let stripe = stripe_of_labels(&gone);
    let slot = old[7].slot().unwrap();
    let gone_ref = {
        let s = next.stripes[stripe].read();
        let hash = s.series.hash(&gone);
        s.series.by_labels(hash, &gone).unwrap().series_ref
    };
    next.stripes[stripe].write().remove_new_series(gone_ref);
    let mut k = 1000;
    let taken = loop {
        let l = labels(k);
        if stripe_of_labels(&l) == stripe {
            break l;
        }
        k += 1;
    };
    let newcomer = SeriesSamples {
        labels: taken.clone(),
        samples: vec![Sample::new(T0 + 10_000, -1.0)],
        histograms: Vec::new(),
    };
    let mut h = vec![SeriesHint::NONE];
    next.append(vec![newcomer], &mut h, &r, T0, SeriesGate::default(), &mut report);
    assert_eq!(h[0].slot(), Some(slot), "the newcomer took the freed slot");
    let again = SeriesSamples {
        labels: gone.clone(),
        samples: vec![Sample::new(T0 + 20_000, 7.0)],
        histograms: Vec::new(),
    };
    let mut stale = vec![old[7]];
    next.append(
        vec![again],
        &mut stale,
        &r,
        T0,
        SeriesGate::default(),
        &mut report,
    );
    assert_ne!(stale[0], old[7]);
    let got = contents(&next);
    let of = |l: &Labels| got.iter().find(|(x, _)| x == l).map(|(_, s)| s.clone()).unwrap();
    assert_eq!(of(&gone), vec![(T0 + 20_000, 7.0)]);
    assert_eq!(of(&taken), vec![(T0 + 10_000, -1.0)]);
}
