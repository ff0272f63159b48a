//! The messages of remote write 1.0 (`prometheus.WriteRequest` and its parts), as prost
//! decodes them; the walk (`walk`) and the conversion (`v1`) both use them.

use prost::Message;

use super::histogram::Histogram2;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (type, help, unit), served by `/api/v1/metadata`.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, including `__name__`.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<WireLabel>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<WireSample>,
    /// Exemplars of the series' samples, stored in the exemplar store.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<WireExemplar>,
    /// Native histograms, oldest first. `prometheus.Histogram` has the fields of
    /// `io.prometheus.write.v2.Histogram` under the same numbers, so one message serves both.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram2>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct WireLabel {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct WireSample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub struct WireExemplar {
    /// The exemplar's labels (`trace_id`, …), not the series'.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<WireLabel>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// The metric type enum.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The metric family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// HELP text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// UNIT.
    #[prost(string, tag = "5")]
    pub unit: String,
}
