//! A borrowing decoder for remote write 1.0 (`prometheus.WriteRequest`).
//!
//! prost decodes every label name and value of every series into its own `String`, on
//! every request, though a sender sends the same series again and again: for
//! node-exporter-like data that decoding and the labels built from it were the largest
//! cost of remote-write ingest. The walk reads the protobuf bytes itself and keeps, for a
//! series of labels and float samples only, the position of its label fields in the body:
//! the conversion looks those bytes up in the receiver's [`super::labels::WireLabelCache`]
//! and decodes the labels only on a miss.
//!
//! The result is what prost would give ([`walk_request`]'s callers check it in tests):
//!
//! - a series with exemplars or native histograms, or whose label fields are not one run
//!   (another field between two labels), is decoded with prost from its bytes;
//! - metadata entries are decoded with prost;
//! - on any malformed input the caller decodes the whole body with prost, which then gives
//!   the error (for the 400 reply). The walk is never more lenient than prost: it checks
//!   wire types, lengths and varints of the series and samples, and the conversion reads
//!   the label messages of every series it does not find in the cache, checking their
//!   fields and UTF-8, before it converts anything (those found there are byte for byte
//!   the wire form of valid labels), so a body prost refuses is refused whole.

use std::ops::Range;

use didban_store::Sample;
use prost::Message;

use super::labels::CachedSeries;
use super::messages_v1::{MetricMetadata, TimeSeries};
use crate::ingest::protowire::{expect, Malformed, Reader, Walk, I64, LEN, VARINT};

/// A request as the walk collected it. Positions are into the walked body.
#[derive(Debug, Default)]
pub(super) struct WalkedRequest {
    pub series: Vec<WalkedSeries>,
    pub metadata: Vec<MetricMetadata>,
}

/// One `prometheus.TimeSeries`.
#[derive(Debug)]
pub(super) enum WalkedSeries {
    /// Labels and float samples only: where its label fields are (keys included), its
    /// samples in the order sent, and the labels the receiver's cache holds for those
    /// fields (looked up by the conversion; `None` until then, or when not cached).
    Plain {
        labels: Range<usize>,
        samples: Vec<Sample>,
        cached: Option<CachedSeries>,
    },
    /// Any other shape, decoded by prost.
    Decoded(Box<TimeSeries>),
}

/// Walks a whole `WriteRequest`; `Err` when anything in it is not accepted (decode the
/// body with prost then).
pub(super) fn walk_request(body: &[u8]) -> Walk<WalkedRequest> {
    let mut out = WalkedRequest::default();
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                let msg = r.bytes()?;
                let start = body.len() - r.rest().len() - msg.len();
                out.series.push(walk_series(msg, start)?);
            }
            3 => {
                expect(wire, LEN)?;
                let msg = r.bytes()?;
                out.metadata
                    .push(MetricMetadata::decode(msg).map_err(|_| Malformed)?);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(out)
}

/// Walks one `TimeSeries` message `msg`, found at `start` in the body.
fn walk_series(msg: &[u8], start: usize) -> Walk<WalkedSeries> {
    let mut r = Reader::new(msg);
    // The run of label fields: where it starts and ends in `msg`, and whether it ended.
    let mut labels: Option<Range<usize>> = None;
    let mut labels_ended = false;
    let mut samples = Vec::new();
    while !r.is_empty() {
        let field_start = msg.len() - r.rest().len();
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                // The label message itself is checked after the cache lookup: a hit is
                // exactly the wire form of valid labels, a miss is read by `label_pairs`.
                r.bytes()?;
                let field_end = msg.len() - r.rest().len();
                match &mut labels {
                    Some(run) if !labels_ended => run.end = field_end,
                    None => labels = Some(field_start..field_end),
                    // Labels interleaved with other fields: not one run of bytes.
                    Some(_) => return decoded(msg),
                }
            }
            2 => {
                expect(wire, LEN)?;
                samples.push(sample(r.bytes()?)?);
                labels_ended = labels.is_some();
            }
            3 | 4 => return decoded(msg),
            _ => {
                r.skip(wire)?;
                labels_ended = labels.is_some();
            }
        }
    }
    let local = labels.unwrap_or(0..0);
    Ok(WalkedSeries::Plain {
        labels: start + local.start..start + local.end,
        samples,
        cached: None,
    })
}

fn decoded(msg: &[u8]) -> Walk<WalkedSeries> {
    let series = TimeSeries::decode(msg).map_err(|_| Malformed)?;
    Ok(WalkedSeries::Decoded(Box::new(series)))
}

/// One `prometheus.Sample` message.
fn sample(msg: &[u8]) -> Walk<Sample> {
    let mut r = Reader::new(msg);
    let (mut value, mut timestamp) = (0.0, 0i64);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, I64)?;
                value = f64::from_bits(r.fixed64()?);
            }
            2 => {
                expect(wire, VARINT)?;
                timestamp = r.varint()? as i64;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(Sample::new(timestamp, value))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ingest::protowire::{field, I32};
    use crate::ingest::remote_write::histogram::Histogram2;
    use crate::ingest::remote_write::labels::label_pairs;
    use crate::ingest::remote_write::{WireExemplar, WireLabel, WireSample, WriteRequest};

    fn label(name: &str, value: &str) -> Vec<u8> {
        WireLabel {
            name: name.into(),
            value: value.into(),
        }
        .encode_to_vec()
    }

    fn sample_bytes(t: i64, v: f64) -> Vec<u8> {
        WireSample {
            value: v,
            timestamp: t,
        }
        .encode_to_vec()
    }

    /// Checks that the walk of `body` says what prost decodes from it.
    fn same_as_prost(body: &[u8]) -> WalkedRequest {
        let walked = walk_request(body).expect("the walk accepts the body");
        let decoded = WriteRequest::decode(body).expect("prost accepts the body");
        assert_eq!(walked.series.len(), decoded.timeseries.len());
        assert_eq!(walked.metadata, decoded.metadata);
        for (w, d) in walked.series.iter().zip(&decoded.timeseries) {
            match w {
                WalkedSeries::Plain { labels, samples, .. } => {
                    let pairs = label_pairs(&body[labels.clone()]).unwrap();
                    let want: Vec<(&str, &str)> = d
                        .labels
                        .iter()
                        .map(|l| (l.name.as_str(), l.value.as_str()))
                        .collect();
                    assert_eq!(pairs, want);
                    let want: Vec<(i64, u64)> = d
                        .samples
                        .iter()
                        .map(|s| (s.timestamp, s.value.to_bits()))
                        .collect();
                    let got: Vec<(i64, u64)> = samples
                        .iter()
                        .map(|s| (s.timestamp_ms, s.value.to_bits()))
                        .collect();
                    assert_eq!(got, want);
                    assert!(d.exemplars.is_empty() && d.histograms.is_empty());
                }
                WalkedSeries::Decoded(ts) => assert_eq!(**ts, *d),
            }
        }
        walked
    }

    fn is_plain(s: &WalkedSeries) -> bool {
        matches!(s, WalkedSeries::Plain { .. })
    }

    #[test]
    fn the_walk_reads_what_prost_reads_and_leaves_other_shapes_to_it() {
        let mut series = Vec::new();
        // Labels then samples, with a NaN and a negative timestamp.
        let mut s = field(1, LEN, &label("__name__", "up"));
        s.extend(field(1, LEN, &label("job", "node")));
        s.extend(field(2, LEN, &sample_bytes(1000, 1.5)));
        s.extend(field(2, LEN, &sample_bytes(-5, f64::NAN)));
        series.push(s);
        // Samples first, then one run of labels; an unknown field before them.
        let mut s = field(9, VARINT, &[7]);
        s.extend(field(2, LEN, &sample_bytes(3, 2.0)));
        s.extend(field(1, LEN, &label("a", "1")));
        s.extend(field(1, LEN, &label("b", "")));
        series.push(s);
        // A label with its name twice (the last counts), unknown fields inside label and
        // sample, a sample with no fields (0 at 0).
        let mut l = field(1, LEN, b"first");
        l.extend(field(2, LEN, b"v"));
        l.extend(field(1, LEN, b"name"));
        l.extend(field(7, I32, &[0; 4]));
        let mut sm = field(2, VARINT, &[0x80, 0x01]);
        sm.extend(field(8, I64, &[0; 8]));
        let mut s = field(1, LEN, &l);
        s.extend(field(2, LEN, &sm));
        s.extend(field(2, LEN, &[]));
        series.push(s);
        // Labels interleaved with samples: decoded by prost.
        let mut s = field(1, LEN, &label("__name__", "x"));
        s.extend(field(2, LEN, &sample_bytes(1, 1.0)));
        s.extend(field(1, LEN, &label("job", "j")));
        series.push(s);
        // An exemplar, a native histogram: decoded by prost.
        let exemplar = WireExemplar {
            labels: vec![WireLabel {
                name: "trace_id".into(),
                value: "ab".into(),
            }],
            value: 1.0,
            timestamp: 9,
        };
        let mut s = field(1, LEN, &label("__name__", "e"));
        s.extend(field(3, LEN, &exemplar.encode_to_vec()));
        series.push(s);
        let mut s = field(1, LEN, &label("__name__", "h"));
        s.extend(field(4, LEN, &Histogram2::default().encode_to_vec()));
        series.push(s);
        // No labels at all.
        series.push(field(2, LEN, &sample_bytes(1, 1.0)));
        let mut body = Vec::new();
        for s in &series {
            body.extend(field(1, LEN, s));
        }
        let metadata = crate::ingest::remote_write::MetricMetadata {
            r#type: 1,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: String::new(),
        };
        body.extend(field(3, LEN, &metadata.encode_to_vec()));
        body.extend(field(15, VARINT, &[1]));

        let walked = same_as_prost(&body);
        let kinds: Vec<bool> = walked.series.iter().map(is_plain).collect();
        assert_eq!(kinds, [true, true, true, false, false, false, true]);
        assert_eq!(same_as_prost(&[]).series.len(), 0);
    }

    #[test]
    fn malformed_bodies_are_refused_by_the_walk_and_prost_alike() {
        let good = field(1, LEN, &field(1, LEN, &label("__name__", "up")));
        let mut cases: Vec<Vec<u8>> = vec![
            // Cut short inside a series.
            good[..good.len() - 2].to_vec(),
            // A series field of the wrong wire type.
            field(1, VARINT, &[1]),
            // A sample value of the wrong wire type.
            field(1, LEN, &field(2, LEN, &field(1, VARINT, &[1]))),
            // A varint of eleven bytes.
            field(
                1,
                LEN,
                &field(
                    2,
                    LEN,
                    &[
                        0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                    ],
                ),
            ),
        ];
        // A length past the end.
        cases.push(vec![0x0a, 0x05, 0x0a]);
        for body in cases {
            assert!(walk_request(&body).is_err(), "{body:?}");
            assert!(WriteRequest::decode(body.as_slice()).is_err(), "{body:?}");
        }
        // A label name that is not UTF-8: the walk keeps the run, whose pairs are refused
        // (the conversion checks them before converting anything).
        let body = field(1, LEN, &field(1, LEN, &field(1, LEN, &[0xff, 0xfe])));
        assert!(WriteRequest::decode(body.as_slice()).is_err());
        let walked = walk_request(&body).unwrap();
        let Some(WalkedSeries::Plain { labels, .. }) = walked.series.first() else {
            panic!("a plain series: {walked:?}");
        };
        assert!(label_pairs(&body[labels.clone()]).is_err());
        // A label message whose own field runs past its end: the walk does not read label
        // messages (the run is kept), their reading refuses it, as prost does.
        let body = field(1, LEN, &field(1, LEN, &[0x0a, 0x05, b'a']));
        assert!(WriteRequest::decode(body.as_slice()).is_err());
        let walked = walk_request(&body).unwrap();
        let Some(WalkedSeries::Plain { labels, .. }) = walked.series.first() else {
            panic!("a plain series: {walked:?}");
        };
        assert!(label_pairs(&body[labels.clone()]).is_err());
        // A group (wire type 3/4) prost skips: the walk leaves the body to prost.
        let mut body = good.clone();
        body.extend([0x2b, 0x2c]);
        assert!(walk_request(&body).is_err());
        assert_eq!(WriteRequest::decode(body.as_slice()).unwrap().timeseries.len(), 1);
    }
}
