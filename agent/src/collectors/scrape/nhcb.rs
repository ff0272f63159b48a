//! Classic histograms of a scrape put back together, for scrape jobs with
//! `convert_classic_histograms_to_nhcb`: the `_bucket{le}`, `_sum` and `_count` samples of
//! one histogram (same family, same labels but `le`) become one [`ClassicHistogram`], which
//! the exporter sends as one OTLP explicit-bucket histogram point marked for conversion to a
//! native histogram with custom buckets.
//!
//! As Prometheus converts at scrape time: the bounds are the finite `le` values, the counts
//! the differences of the cumulative bucket values, the count the `+Inf` bucket. A histogram
//! that cannot be converted — no `+Inf` bucket, an `le` that is not a number, cumulative
//! values that go down or are not whole numbers — is sent as its classic series, unchanged,
//! so nothing scraped is lost.

use std::collections::HashMap;

use super::parse::ParsedSample;
use crate::model::ClassicHistogram;

/// One histogram of a scrape, put back together.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedHistogram {
    /// The family name (without `_bucket`).
    pub name: String,
    /// The labels of its series without `le`, in exposed order.
    pub labels: Vec<(String, String)>,
    /// Bounds, counts, count and sum.
    pub histogram: ClassicHistogram,
    /// The explicit timestamp of its samples, if they had one.
    pub timestamp_ms: Option<i64>,
}

/// The samples of one histogram while the scrape is read.
#[derive(Default)]
struct Parts {
    /// `(le, cumulative value)` of each bucket sample; `None` when `le` is not a number.
    buckets: Vec<Option<(f64, f64)>>,
    sum: Option<f64>,
    /// Every sample of the histogram, to send as they are if it cannot be converted.
    members: Vec<ParsedSample>,
}

/// Splits a scrape into the samples sent as series and the histograms put back together,
/// both in the order they were exposed.
pub fn group_histograms(parsed: Vec<ParsedSample>) -> (Vec<ParsedSample>, Vec<ScrapedHistogram>) {
    let mut series = Vec::with_capacity(parsed.len());
    let mut keys: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut groups: HashMap<(String, Vec<(String, String)>), Parts> = HashMap::new();
    for p in parsed {
        let Some(family) = p.histogram_family.clone() else {
            series.push(p);
            continue;
        };
        let mut labels = Vec::with_capacity(p.labels.len());
        let mut le = None;
        for (k, v) in &p.labels {
            if k == "le" {
                le = Some(v.as_str());
            } else {
                labels.push((k.clone(), v.clone()));
            }
        }
        let key = (family, labels);
        let parts = match groups.get_mut(&key) {
            Some(parts) => parts,
            None => {
                keys.push(key.clone());
                groups.entry(key).or_default()
            }
        };
        if p.name.ends_with("_bucket") {
            let bound = le.and_then(parse_le);
            parts.buckets.push(bound.map(|b| (b, p.value)));
        } else if p.name.ends_with("_sum") {
            parts.sum = Some(p.value);
        }
        parts.members.push(p);
    }
    let mut histograms = Vec::with_capacity(keys.len());
    for key in keys {
        let Some(parts) = groups.remove(&key) else {
            continue;
        };
        match convert(&parts) {
            Some(histogram) => histograms.push(ScrapedHistogram {
                timestamp_ms: parts.members.first().and_then(|m| m.timestamp_ms),
                name: key.0,
                labels: key.1,
                histogram,
            }),
            None => series.extend(parts.members),
        }
    }
    (series, histograms)
}

/// An `le` value: a number, `+Inf` in any of the spellings Prometheus accepts.
fn parse_le(text: &str) -> Option<f64> {
    match text.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        other => other.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

/// The histogram, or `None` when the buckets do not make one (see the module docs).
fn convert(parts: &Parts) -> Option<ClassicHistogram> {
    let mut buckets: Vec<(f64, f64)> = Vec::with_capacity(parts.buckets.len());
    for b in &parts.buckets {
        buckets.push((*b)?);
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (last_le, total) = *buckets.last()?;
    if last_le != f64::INFINITY {
        return None;
    }
    let mut bounds = Vec::with_capacity(buckets.len() - 1);
    let mut counts = Vec::with_capacity(buckets.len());
    let mut below: u64 = 0;
    for (i, (le, cumulative)) in buckets.iter().enumerate() {
        if i > 0 && *le == buckets[i - 1].0 {
            return None; // the same bucket twice
        }
        let whole = whole_count(*cumulative)?;
        let here = whole.checked_sub(below)?;
        below = whole;
        counts.push(here);
        if le.is_finite() {
            bounds.push(*le);
        }
    }
    Some(ClassicHistogram {
        bounds,
        counts,
        count: whole_count(total)?,
        sum: parts.sum,
    })
}

/// A bucket value as a count: finite, not negative, a whole number.
fn whole_count(v: f64) -> Option<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
        Some(v as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::collectors::scrape::parse::{parse, Format};

    const PAGE: &str = "\
# TYPE lat histogram
lat_bucket{path=\"/a\",le=\"0.1\"} 2
lat_bucket{path=\"/a\",le=\"0.5\"} 5
lat_bucket{path=\"/a\",le=\"+Inf\"} 6
lat_sum{path=\"/a\"} 1.75
lat_count{path=\"/a\"} 6
lat_bucket{path=\"/b\",le=\"0.1\"} 3
lat_bucket{path=\"/b\",le=\"0.5\"} 1
lat_bucket{path=\"/b\",le=\"+Inf\"} 4
lat_count{path=\"/b\"} 4
# TYPE up_total counter
up_total 7
";

    #[test]
    fn buckets_of_one_histogram_become_one_with_per_bucket_counts() {
        let (series, histograms) = group_histograms(parse(PAGE, Format::Text).unwrap());
        assert_eq!(histograms.len(), 1, "{histograms:?}");
        let h = &histograms[0];
        assert_eq!(h.name, "lat");
        assert_eq!(h.labels, vec![("path".to_string(), "/a".to_string())]);
        assert_eq!(
            h.histogram,
            ClassicHistogram {
                bounds: vec![0.1, 0.5],
                counts: vec![2, 3, 1],
                count: 6,
                sum: Some(1.75),
            }
        );
        // `/b` goes down from 3 to 1: sent as its classic series, all of them.
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["up_total", "lat_bucket", "lat_bucket", "lat_bucket", "lat_count"]
        );
    }

    #[test]
    fn histograms_that_are_not_whole_stay_classic() {
        let no_inf = "# TYPE x histogram\nx_bucket{le=\"1\"} 1\nx_count 1\n";
        let bad_le = "# TYPE x histogram\nx_bucket{le=\"one\"} 1\nx_bucket{le=\"+Inf\"} 1\n";
        let fraction = "# TYPE x histogram\nx_bucket{le=\"1\"} 0.5\nx_bucket{le=\"+Inf\"} 1\n";
        for page in [no_inf, bad_le, fraction] {
            let parsed = parse(page, Format::Text).unwrap();
            let n = parsed.len();
            let (series, histograms) = group_histograms(parsed);
            assert!(histograms.is_empty(), "{page}");
            assert_eq!(series.len(), n, "{page}");
        }
        // Gauge histograms are not histograms here.
        let gauge = "# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 1\ng_gcount 1\n";
        let (series, histograms) = group_histograms(parse(gauge, Format::Text).unwrap());
        assert!(histograms.is_empty());
        assert_eq!(series.len(), 2);
    }
}
