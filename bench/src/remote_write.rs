//! Prometheus remote_write 1.0 requests: protobuf `WriteRequest` (the message types of
//! Didban's own receiver, `didban_collector::ingest::remote_write`), snappy block format.

use bytes::Bytes;
use didban_collector::ingest::remote_write::{TimeSeries, WireLabel, WireSample, WriteRequest};
use prost::Message;

use crate::load::{Plan, Request};
use didban_demo::node::dataset::Dataset;

/// How to cut the data set into remote_write requests.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Hosts whose series go into one request (one "group"; a group is always sent by the
    /// same sender so every series' samples arrive in time order).
    pub hosts_per_request: usize,
    /// Consecutive samples of each series in one request.
    pub samples_per_series: usize,
}

/// Encodes the whole data set as remote_write requests, grouped so that
/// `plan.requests[chunk][group]` holds `samples_per_series` steps of one host group.
pub fn build_plan(d: &Dataset, b: Batching) -> anyhow::Result<Plan> {
    let hosts = d.shape.hosts;
    let hpr = b.hosts_per_request.max(1);
    let sps = b.samples_per_series.max(1);
    let groups: Vec<(usize, usize)> = (0..hosts)
        .step_by(hpr)
        .map(|s| (s, (s + hpr).min(hosts)))
        .collect();
    let labels: Vec<Vec<Vec<WireLabel>>> = (0..hosts)
        .map(|h| {
            d.host_series(h)
                .into_iter()
                .map(|ls| {
                    ls.into_iter()
                        .map(|(name, value)| WireLabel { name, value })
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut states: Vec<_> = (0..hosts).map(|h| d.host_state(h)).collect();
    let mut encoder = snap::raw::Encoder::new();
    let mut chunks = Vec::new();
    let mut k = 0;
    while k < d.shape.steps {
        let n = sps.min(d.shape.steps - k);
        // values[h][step][series]
        let mut values: Vec<Vec<Vec<f64>>> = vec![Vec::with_capacity(n); hosts];
        for (h, st) in states.iter_mut().enumerate() {
            for j in 0..n {
                d.step(st, k + j);
                values[h].push(st.values.clone());
            }
        }
        let mut chunk = Vec::with_capacity(groups.len());
        for &(g0, g1) in &groups {
            let mut req = WriteRequest {
                timeseries: Vec::with_capacity((g1 - g0) * d.per_host),
                ..Default::default()
            };
            for h in g0..g1 {
                for (s, ls) in labels[h].iter().enumerate() {
                    let samples = (0..n)
                        .map(|j| WireSample {
                            value: values[h][j][s],
                            timestamp: d.shape.ts(k + j),
                        })
                        .collect();
                    req.timeseries.push(TimeSeries {
                        labels: ls.clone(),
                        samples,
                        ..Default::default()
                    });
                }
            }
            let body = encoder.compress_vec(&req.encode_to_vec())?;
            chunk.push(Request {
                body: Bytes::from(body),
                samples: ((g1 - g0) * d.per_host * n) as u64,
            });
        }
        chunks.push(chunk);
        k += n;
    }
    Ok(Plan {
        requests: chunks,
        chunk_ms: sps as i64 * d.shape.interval_ms,
    })
}

/// Headers of a remote_write 1.0 request.
pub fn headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "snappy"),
        ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ("User-Agent", "didban-bench"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use didban_demo::node::dataset::Shape;

    #[test]
    fn plan_round_trips_through_snappy_and_protobuf() -> anyhow::Result<()> {
        let d = Dataset::new(Shape {
            hosts: 3,
            cpus: 1,
            interval_ms: 15_000,
            start_ms: 1_000,
            steps: 7,
        });
        let plan = build_plan(
            &d,
            Batching {
                hosts_per_request: 2,
                samples_per_series: 3,
            },
        )?;
        assert_eq!(plan.requests.len(), 3);
        assert_eq!(plan.requests[0].len(), 2);
        let total: u64 = plan.requests.iter().flatten().map(|r| r.samples).sum();
        assert_eq!(total, d.samples());
        let raw = snap::raw::Decoder::new().decompress_vec(&plan.requests[2][1].body)?;
        let req = WriteRequest::decode(raw.as_slice())?;
        assert_eq!(req.timeseries.len(), d.per_host);
        assert_eq!(req.timeseries[0].samples.len(), 1);
        assert_eq!(req.timeseries[0].samples[0].timestamp, 1_000 + 6 * 15_000);
        Ok(())
    }
}
