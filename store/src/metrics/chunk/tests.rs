//! Chunks against a plain sorted vector: random series with NaNs, infinities, stale
//! markers, duplicates, out-of-order samples and extreme timestamps, and the encoding's
//! edge cases one by one.

use std::collections::BTreeMap;

use didban_testkit::rng::SeededRng as Rng;

use super::encoding::Encoding;
use super::open::OpenChunk;
use super::series::SeriesChunks;
use crate::model::{Sample, STALE_NAN_BITS};

/// Values of every kind the encoding must keep bit for bit.
fn value(rng: &mut Rng, prev: f64) -> f64 {
    match rng.below(12) {
        0 => f64::from_bits(STALE_NAN_BITS),
        1 => f64::NAN,
        2 => f64::from_bits(0x7ff8_dead_beef_0001), // a NaN with another payload
        3 => f64::INFINITY,
        4 => f64::NEG_INFINITY,
        5 => -0.0,
        6 => f64::from_bits(rng.next_u64()), // any bit pattern, subnormals included
        7 | 8 => prev,
        9 => prev + rng.below(1000) as f64,       // a counter
        10 => (rng.below(10_000) as f64) / 100.0, // a decimal gauge
        _ => f64::MAX,
    }
}

/// A timestamp: mostly the next scrape (with jitter), sometimes far jumps, duplicates,
/// earlier ones, or the ends of the `i64` range.
fn timestamp(rng: &mut Rng, last: i64) -> i64 {
    match rng.below(20) {
        0 => i64::MIN.wrapping_add(rng.below(3) as i64),
        1 => i64::MAX.wrapping_sub(rng.below(3) as i64),
        2 => last,                                                      // duplicate
        3 | 4 => last.wrapping_sub(rng.below(5_000_000) as i64),        // out of order
        5 => last.wrapping_add(rng.next_u64() as i64 >> rng.below(64)), // any jump
        _ => last.wrapping_add(15_000 + rng.below(2_001) as i64 - 1_000),
    }
}

fn bits(samples: &[Sample]) -> Vec<(i64, u64)> {
    samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value.to_bits()))
        .collect()
}

fn model_range(model: &BTreeMap<i64, u64>, start: i64, end: i64) -> Vec<(i64, u64)> {
    if start > end {
        return Vec::new();
    }
    model.range(start..=end).map(|(t, v)| (*t, *v)).collect()
}

#[test]
fn random_series_behave_like_a_sorted_vector() {
    for seed in 1..=300u64 {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut chunks = SeriesChunks::default();
        let mut model: BTreeMap<i64, u64> = BTreeMap::new();
        let mut last = rng.next_u64() as i64 >> 20;
        let mut prev = 0.0;
        let n = rng.below(700) as usize;
        for _ in 0..n {
            let t = timestamp(&mut rng, last);
            let v = value(&mut rng, prev);
            prev = v;
            last = last.max(t);
            let expected = !model.contains_key(&t);
            if expected {
                model.insert(t, v.to_bits());
            }
            assert_eq!(chunks.insert(Sample::new(t, v)), expected, "seed {seed} t {t}");
        }
        assert_eq!(chunks.len(), model.len(), "seed {seed}");
        let all: Vec<(i64, u64)> = model.iter().map(|(t, v)| (*t, *v)).collect();
        assert_eq!(bits(&chunks.to_vec()), all, "seed {seed}");
        assert_eq!(chunks.last_t(), model.keys().next_back().copied());

        let keys: Vec<i64> = model.keys().copied().collect();
        for _ in 0..30 {
            let pick = |rng: &mut Rng| match keys.len() {
                0 => rng.next_u64() as i64,
                k => keys[rng.below(k as u64) as usize].wrapping_add(rng.below(3) as i64 - 1),
            };
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            let mut got = Vec::new();
            chunks.range(a, b, &mut got);
            assert_eq!(bits(&got), model_range(&model, a, b), "seed {seed} [{a}, {b}]");
            assert_eq!(
                chunks.get(a).map(f64::to_bits),
                model.get(&a).copied(),
                "seed {seed}"
            );
        }

        // Removing samples (what a rollback does), with right and wrong values.
        for _ in 0..(keys.len() / 3) {
            let t = keys[rng.below(keys.len() as u64) as usize];
            let wrong = rng.below(2) == 0;
            let v = match model.get(&t) {
                Some(v) if !wrong => f64::from_bits(*v),
                Some(v) => f64::from_bits(v ^ 1),
                None => 1.0,
            };
            let expected = !wrong && model.remove(&t).is_some();
            assert_eq!(
                chunks.remove(Sample::new(t, v)),
                expected,
                "seed {seed} remove {t}"
            );
        }
        let all: Vec<(i64, u64)> = model.iter().map(|(t, v)| (*t, *v)).collect();
        assert_eq!(bits(&chunks.to_vec()), all, "seed {seed} after removals");
        assert_eq!(chunks.len(), model.len());
    }
}

#[test]
fn regular_scrapes_compress_to_a_few_bits_per_sample() {
    let mut chunks = SeriesChunks::default();
    let mut counter = 1_000_000.0;
    for k in 0..480i64 {
        counter += 4096.0;
        assert!(chunks.insert(Sample::new(1_700_000_000_000 + k * 15_000, counter)));
    }
    assert_eq!(chunks.num_chunks(), 4, "120 samples per chunk");
    // A counter moving every scrape changes mantissa bits each time (2.54 bytes/sample
    // as XOR); its closed chunks are kept scaled (an increment of 4096 is a constant delta).
    let per_sample = chunks.bytes() as f64 / 480.0;
    assert!(per_sample < 3.0, "{per_sample:.2} bytes/sample");

    let mut constant = SeriesChunks::default();
    for k in 0..480i64 {
        assert!(constant.insert(Sample::new(k * 15_000, 1.0)));
    }
    // Measured 0.87: the four chunks' fixed cost (entry, first sample) dominates.
    let per_sample = constant.bytes() as f64 / 480.0;
    assert!(per_sample < 1.0, "{per_sample:.2} bytes/sample");
}

#[test]
fn every_delta_of_delta_bucket_round_trips_at_its_bounds() {
    let mut dods = vec![0i64];
    for width in [14u32, 17, 20] {
        let half = 1i64 << (width - 1);
        dods.extend([half - 1, -half, half, -half - 1]);
    }
    dods.extend([i64::MAX / 4, i64::MIN / 4]);
    let mut chunks = SeriesChunks::default();
    let mut t = 0i64;
    let mut delta = 1_000_000_000_000i64;
    let mut expected = Vec::new();
    for dod in dods {
        delta += dod;
        t += delta;
        expected.push((t, 2.5f64.to_bits()));
        assert!(chunks.insert(Sample::new(t, 2.5)));
    }
    assert_eq!(bits(&chunks.to_vec()), expected);
}

#[test]
fn timestamps_at_both_ends_of_the_range_round_trip() {
    let mut chunks = SeriesChunks::default();
    let ts = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
    for t in ts {
        assert!(chunks.insert(Sample::new(t, t as f64)));
    }
    let got: Vec<i64> = chunks.to_vec().iter().map(|s| s.timestamp_ms).collect();
    assert_eq!(got, ts);
    let mut out = Vec::new();
    chunks.range(i64::MAX, i64::MAX, &mut out);
    assert_eq!(bits(&out), vec![(i64::MAX, (i64::MAX as f64).to_bits())]);
}

#[test]
fn value_windows_grow_shrink_and_reach_64_significant_bits() {
    let values = [
        0.0,
        f64::from_bits(1),                     // one trailing bit set: widest window
        f64::from_bits(u64::MAX),              // 64 significant bits
        f64::from_bits(0x8000_0000_0000_0000), // -0: a single leading bit
        f64::from_bits(STALE_NAN_BITS),
        f64::from_bits(STALE_NAN_BITS),
        f64::from_bits(STALE_NAN_BITS ^ 0x0000_0000_ff00_0000), // inside the window
        1.0,
    ];
    let mut chunks = SeriesChunks::default();
    for (k, v) in values.iter().enumerate() {
        assert!(chunks.insert(Sample::new(k as i64, *v)));
    }
    let got: Vec<u64> = chunks.to_vec().iter().map(|s| s.value.to_bits()).collect();
    let want: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, want);
}

#[test]
fn out_of_order_inserts_split_a_full_chunk_and_reads_skip_other_chunks() {
    let mut chunks = SeriesChunks::default();
    for k in 0..240i64 {
        assert!(chunks.insert(Sample::new(k * 10, k as f64)));
    }
    assert_eq!(chunks.num_chunks(), 2);
    // Into the first (closed, full) chunk: it splits.
    assert!(chunks.insert(Sample::new(5, -1.0)));
    assert_eq!(chunks.num_chunks(), 3);
    assert!(!chunks.insert(Sample::new(5, -2.0)), "duplicate timestamp");
    assert_eq!(chunks.get(5), Some(-1.0));
    assert_eq!(chunks.get(6), None);
    // Into the open chunk, and before the first sample.
    assert!(chunks.insert(Sample::new(2_385, 7.0)));
    assert!(chunks.insert(Sample::new(-100, 8.0)));
    let all = chunks.to_vec();
    assert_eq!(all.len(), 243);
    assert!(all.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
    let mut out = Vec::new();
    chunks.range(2_380, 2_390, &mut out);
    assert_eq!(
        bits(&out),
        vec![
            (2_380, 238f64.to_bits()),
            (2_385, 7f64.to_bits()),
            (2_390, 239f64.to_bits())
        ]
    );
    // In-order appends continue after the re-encoded open chunk.
    assert!(chunks.insert(Sample::new(2_400, 240.0)));
    assert_eq!(chunks.last_t(), Some(2_400));
}

/// A decimal-rounded series like an exporter's: counters growing by noisy increments and
/// gauges moving around a level, at scale `k`, sometimes negative or large.
fn decimal_series(rng: &mut Rng, k: u8, n: usize) -> Vec<Sample> {
    let unit = 10f64.powi(-i32::from(k));
    let counter = rng.below(2) == 0;
    let mut m: i64 = rng.below(1 << 40) as i64 - (1 << 39);
    let mut t = 1_700_000_000_000i64 + rng.below(1_000_000) as i64;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        m += if counter {
            2_000 + rng.below(400) as i64
        } else {
            rng.below(20_001) as i64 - 10_000
        };
        t += 15_000 + rng.below(21) as i64 - 10;
        // The value an exporter would send: the decimal m × 10^-k, correctly rounded.
        let v: f64 = format!("{:.*}", usize::from(k), m as f64 * unit)
            .parse()
            .unwrap_or(0.0);
        out.push(Sample::new(t, v));
    }
    out
}

/// The length of `samples` as one XOR stream.
fn xor_len(samples: impl Iterator<Item = Sample>) -> usize {
    let samples: Vec<Sample> = samples.collect();
    OpenChunk::encode_xor(&samples).map_or(0, |o| o.into_parts().0.len())
}

#[test]
fn decimal_series_close_as_scaled_chunks_and_read_back_bit_for_bit() {
    for seed in 1..=200u64 {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let k = (seed % 10) as u8;
        let samples = decimal_series(&mut rng, k, 480);
        let mut chunks = SeriesChunks::default();
        for s in &samples {
            assert!(chunks.insert(*s));
        }
        assert_eq!(bits(&chunks.to_vec()), bits(&samples), "seed {seed}");
        for c in chunks.closed_chunks() {
            assert_eq!(c.encoding(), Encoding::Scaled, "seed {seed}, scale {k}");
        }
        // A read of part of the series (from inside one chunk to inside another, or of a
        // single sample) gives the bits the decoder gives sample by sample.
        let by_sample: Vec<Sample> = chunks.closed_chunks().iter().flat_map(|c| c.iter()).collect();
        for (a, b) in [(3, 200), (130, 131), (479, 479), (0, 0), (17, 460)] {
            let (start, end) = (samples[a].timestamp_ms, samples[b].timestamp_ms);
            let mut got = Vec::new();
            chunks.range(start, end, &mut got);
            assert_eq!(bits(&got), bits(&samples[a..=b]), "seed {seed} [{a}, {b}]");
            let closed: Vec<Sample> = by_sample
                .iter()
                .filter(|s| (start..=end).contains(&s.timestamp_ms))
                .copied()
                .collect();
            assert_eq!(
                bits(&got[..closed.len()]),
                bits(&closed),
                "seed {seed} [{a}, {b}]"
            );
        }
        // Every closed chunk is at most as long as its XOR form (it keeps the shorter).
        for c in chunks.closed_chunks() {
            assert!(c.data_len() <= xor_len(c.iter()), "seed {seed}");
        }
        // Out-of-order inserts re-encode a scaled chunk and keep every sample.
        let mut model: BTreeMap<i64, u64> = samples
            .iter()
            .map(|s| (s.timestamp_ms, s.value.to_bits()))
            .collect();
        for j in 0..20 {
            let t = samples[0].timestamp_ms + 7 + j * 15_000 * 11;
            let v = (j as f64) * 0.5;
            if chunks.insert(Sample::new(t, v)) {
                model.insert(t, v.to_bits());
            }
        }
        assert_eq!(
            bits(&chunks.to_vec()),
            model_range(&model, i64::MIN, i64::MAX),
            "seed {seed}"
        );
    }
}

#[test]
fn a_chunk_with_a_value_that_has_no_decimal_form_stays_xor() {
    for odd in [
        f64::from_bits(STALE_NAN_BITS),
        f64::NAN,
        f64::INFINITY,
        -0.0,
        std::f64::consts::PI,
        1e-12,
    ] {
        let mut chunks = SeriesChunks::default();
        let mut expected = Vec::new();
        // 241 samples: two closed chunks and the 241st in the open one.
        for k in 0..241i64 {
            let v = if k == 60 { odd } else { k as f64 * 0.25 };
            let s = Sample::new(k * 15_000, v);
            assert!(chunks.insert(s));
            expected.push(s);
        }
        let encodings: Vec<Encoding> = chunks.closed_chunks().iter().map(|c| c.encoding()).collect();
        assert_eq!(encodings, vec![Encoding::Xor, Encoding::Scaled], "{odd}");
        assert_eq!(bits(&chunks.to_vec()), bits(&expected), "{odd}");
    }
}

#[test]
fn scaled_chunks_of_exporter_like_series_take_a_fraction_of_their_xor_form() {
    let mut rng = Rng::new(0x5eed);
    let (mut scaled, mut xor) = (0usize, 0usize);
    for k in [0u8, 2, 3] {
        for _ in 0..50 {
            let samples = decimal_series(&mut rng, k, 480);
            let mut chunks = SeriesChunks::default();
            for s in &samples {
                chunks.insert(*s);
            }
            for c in chunks.closed_chunks() {
                scaled += c.data_len();
                xor += xor_len(c.iter());
            }
        }
    }
    let ratio = scaled as f64 / xor as f64;
    // Measured 0.67 (the gauges' moves of up to ±10,000 units dominate).
    assert!(ratio < 0.75, "scaled ÷ XOR stream bytes: {ratio:.3}");
}

/// A value of a series whose scale changes: whole numbers, one to nine decimals, values
/// near 2^53 where a larger scale no longer fits, and now and then one without a decimal
/// form.
fn rescaling_value(rng: &mut Rng) -> f64 {
    let m = rng.below(1_000_000) as i64 - 500_000;
    match rng.below(40) {
        0 => f64::from_bits(STALE_NAN_BITS),
        1 => 9_007_199_254_740_000.0 + rng.below(900) as f64,
        2 => 1e15 + m as f64,
        3 => -0.0,
        k => {
            let decimals = (k % 10) as i32;
            format!("{:.*}", decimals as usize, m as f64 / 10f64.powi(decimals))
                .parse()
                .unwrap_or(0.0)
        }
    }
}

#[test]
fn open_chunks_that_change_scale_or_fall_to_xor_read_back_bit_for_bit() {
    for seed in 1..=300u64 {
        let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let n = 1 + rng.below(400) as i64;
        let mut chunks = SeriesChunks::default();
        let mut expected = Vec::new();
        for i in 0..n {
            let s = Sample::new(1_700_000_000_000 + i * 15_000, rescaling_value(&mut rng));
            assert!(chunks.insert(s));
            expected.push(s);
            // The open chunk reads back after every append, whatever it re-encoded.
            if i % 7 == 0 {
                assert_eq!(bits(&chunks.to_vec()), bits(&expected), "seed {seed} at {i}");
            }
        }
        assert_eq!(bits(&chunks.to_vec()), bits(&expected), "seed {seed}");
        assert_eq!(chunks.len(), expected.len());
    }
}

#[test]
fn an_open_chunk_is_scaled_from_its_first_sample_and_rescales_when_a_value_needs_it() {
    // 1, 2, then a value with two decimals, then one with five.
    let values = [1.0, 2.0, 2.25, 3.0, 3.00001, 4.0];
    let samples: Vec<Sample> = (0..values.len() as i64)
        .map(|i| Sample::new(i * 15_000, values[i as usize]))
        .collect();
    let mut open = OpenChunk::new(samples[0]);
    assert_eq!(open.encoding(), Encoding::Scaled);
    for s in &samples[1..] {
        open.push(*s);
        assert_eq!(open.encoding(), Encoding::Scaled, "after {}", s.value);
    }
    assert_eq!(bits(&open.iter().collect::<Vec<_>>()), bits(&samples));

    // A stale marker turns the chunk to XOR for the rest of it; the next chunk is scaled.
    let mut chunks = SeriesChunks::default();
    let mut expected = Vec::new();
    for i in 0..130i64 {
        let v = if i == 30 {
            f64::from_bits(STALE_NAN_BITS)
        } else {
            i as f64 * 0.5
        };
        let s = Sample::new(i * 15_000, v);
        assert!(chunks.insert(s));
        expected.push(s);
    }
    let encodings: Vec<Encoding> = chunks.closed_chunks().iter().map(|c| c.encoding()).collect();
    assert_eq!(encodings, vec![Encoding::Xor]);
    assert_eq!(chunks.open_encoding(), Some(Encoding::Scaled));
    assert_eq!(bits(&chunks.to_vec()), bits(&expected));
}

#[test]
fn open_chunks_of_exporter_like_series_take_a_fraction_of_their_xor_form() {
    let mut rng = Rng::new(0x0be_1c4);
    let (mut open_bytes, mut xor) = (0usize, 0usize);
    for k in [0u8, 2, 3] {
        for _ in 0..50 {
            // 100 samples: less than a chunk, all of it in the open one.
            let samples = decimal_series(&mut rng, k, 100);
            let mut chunks = SeriesChunks::default();
            for s in &samples {
                chunks.insert(*s);
            }
            assert_eq!(chunks.num_chunks(), 1);
            assert_eq!(chunks.open_encoding(), Some(Encoding::Scaled));
            open_bytes += chunks.open_stream_len();
            xor += xor_len(samples.into_iter());
        }
    }
    let ratio = open_bytes as f64 / xor as f64;
    // Measured 0.68, the closed chunks' figure (0.67): an open chunk chooses its value
    // mode after 16 samples.
    assert!(ratio < 0.75, "open scaled ÷ XOR stream bytes: {ratio:.3}");
}

#[test]
fn a_steady_counter_switches_to_delta_of_delta_after_its_first_samples() {
    // Increments of 4,000 ± 3: as deltas 13+ bits each, as delta-of-delta 4 or fewer.
    let mut rng = Rng::new(7);
    let mut m = 1_000_000i64;
    let mut chunks = SeriesChunks::default();
    for i in 0..100i64 {
        m += 4_000 + rng.below(7) as i64 - 3;
        assert!(chunks.insert(Sample::new(i * 15_000, m as f64)));
    }
    let bits_per_sample = chunks.open_stream_len() as f64 * 8.0 / 100.0;
    // Measured 7.8; delta mode would take 4 + 15 (value) + 1 (timestamp) = 20 bits per
    // sample.
    assert!(bits_per_sample < 12.0, "{bits_per_sample:.1} bits per sample");
}

/// The open chunk's oldest timestamp is read back from its stream, in both encodings and at
/// both ends of the timestamp range.
#[test]
fn open_chunks_read_their_oldest_timestamp_from_the_stream() {
    for first in [i64::MIN + 1, -1, 0, 1_700_000_000_000, i64::MAX - 10] {
        for v in [1.5, f64::NAN] {
            let mut chunk = OpenChunk::new(Sample::new(first, v));
            chunk.push(Sample::new(first + 5, 2.0));
            assert_eq!(chunk.min_t(), first, "first {first}, value {v}");
            assert_eq!(chunk.max_t(), first + 5);
        }
    }
}

/// Once the first samples show what a sample takes, an exporter-like chunk is sized for
/// all of them: it reaches 120 samples in at most two more allocations (one when the
/// estimate falls short), not a step per quarter of growth, and ends with little spare.
#[test]
fn a_chunk_is_sized_for_its_samples_from_its_first_ones() {
    for seed in 1..=100u64 {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let samples = decimal_series(&mut rng, (seed % 4) as u8, 120);
        let Some((first, rest)) = samples.split_first() else {
            continue;
        };
        let mut chunk = OpenChunk::new(*first);
        let (early, late) = rest.split_at(15);
        for s in early {
            chunk.push(*s);
        }
        let after_estimate = allocation_counter::measure(|| {
            for s in late {
                chunk.push(*s);
            }
        });
        assert!(
            after_estimate.count_total <= 1,
            "seed {seed}: {} allocations after the estimate",
            after_estimate.count_total
        );
        let (len, allocated) = (chunk.stream_len(), chunk.allocated());
        assert!(allocated >= len);
        assert!(
            allocated <= len + len / 4 + 16,
            "seed {seed}: {allocated} bytes allocated for {len}"
        );
        assert_eq!(
            bits(&chunk.iter().collect::<Vec<_>>()),
            bits(&samples),
            "seed {seed}"
        );
    }
}

/// A chunk's stream cut anywhere reads back as the samples before the cut: the last
/// fields are read from a word filled with zeros past the end, and a field reaching past
/// the real bits ends the reading instead of giving a sample made of the zeros.
#[test]
fn a_cut_stream_reads_back_as_the_samples_before_the_cut() {
    for seed in 1..=40u64 {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let samples = decimal_series(&mut rng, (seed % 4) as u8, 120);
        let streams = [
            OpenChunk::encode(&samples).map(|o| (o.encoding(), o.into_parts())),
            OpenChunk::encode_xor(&samples).map(|o| (o.encoding(), o.into_parts())),
        ];
        for (encoding, (bytes, _, _, count)) in streams.into_iter().flatten() {
            let mut longest = 0;
            for cut in 0..=bytes.len() {
                let stream = &bytes[..cut];
                let one_by_one: Vec<Sample> = encoding.samples(stream, count).collect();
                let mut in_range = Vec::new();
                encoding.push_in_range(stream, count, i64::MIN, i64::MAX, &mut in_range);
                let n = one_by_one.len();
                assert_eq!(
                    bits(&one_by_one),
                    bits(&samples[..n]),
                    "seed {seed} {encoding:?} cut at {cut}"
                );
                assert_eq!(
                    bits(&in_range),
                    bits(&samples[..n]),
                    "seed {seed} {encoding:?} cut at {cut}"
                );
                assert!(n >= longest, "seed {seed} {encoding:?} cut at {cut}");
                longest = n;
            }
            assert_eq!(longest, samples.len(), "seed {seed} {encoding:?}");
        }
    }
}
