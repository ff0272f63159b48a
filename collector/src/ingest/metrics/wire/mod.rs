//! A borrowing decoder for protobuf `ExportMetricsServiceRequest`s, fused with the mapping.
//!
//! prost decodes every attribute key and value of every data point into its own `String`;
//! for node-exporter-like data that allocation was the largest cost of OTLP ingest. This
//! module walks the protobuf bytes itself and keeps, for gauge, sum and explicit-bucket
//! histogram points, the raw bytes of the point's attributes: the mapping's label cache is
//! keyed by those bytes, and a point's attributes are decoded (with prost, once per distinct
//! attribute list in the request) only when its labels are not cached yet.
//!
//! The result is the same as decoding with prost and calling
//! [`super::map::map_request`] (the tests check this on every request shape they
//! build):
//!
//! - the walk first checks and collects the whole request (phase 1), and maps only when all
//!   of it is well-formed (phase 2), so nothing (delta totals) is touched by a request that
//!   is then refused;
//! - anything the walk does not handle itself is left to prost: resources and scopes are
//!   decoded with prost from their bytes; a metric of another kind (exponential histogram,
//!   summary, none) or of an unusual shape (exemplars, metadata, unpacked or repeated
//!   fields, a data field twice, attributes interleaved with other fields) is decoded with
//!   prost from its bytes and mapped by the generic path;
//! - on any malformed input the whole body is decoded with prost, which then gives the
//!   error (the same error as before, for the 400 / `InvalidArgument` reply). The walk is
//!   never more lenient than prost: it checks wire types, lengths, varints and UTF-8.
//!
//! The module is split as the walk is: [`reader`] reads protobuf primitives (varints, wire
//! types, packed fields), [`walk`] is phase 1 (checking and collecting the request into the
//! views defined here), [`map`] is phase 2 (mapping the views as the generic mapping does).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use foldhash::HashMap;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    number_data_point, HistogramDataPoint, Metric, NumberDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::histograms;
use super::label_cache::Attrs;
use super::map::{
    add_scope_labels, check_temporality, describe, map_metric, map_request, ms, number_point, record_point,
    resource_labels, target_info, MapOptions, Mapped, PointAttrs, PointContext, PointError, SeriesSet,
};
use super::names::{metric_name, NameKind};

mod map;
mod reader;
#[cfg(test)]
mod tests;
mod walk;

use map::map_walked;
use walk::walk_request;

/// Decodes a protobuf `ExportMetricsServiceRequest` and maps it, as
/// `map_request(&ExportMetricsServiceRequest::decode(body)?, options)` does.
pub fn decode_and_map(body: &[u8], options: &MapOptions<'_>) -> Result<Mapped, prost::DecodeError> {
    match walk_request(body) {
        Ok(request) => Ok(map_walked(&request, options)),
        Err(Malformed) => {
            let request = ExportMetricsServiceRequest::decode(body)?;
            Ok(map_request(&request, options))
        }
    }
}

/// The walk found something it does not accept; prost decides (and names the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

type Walk<T> = Result<T, Malformed>;

pub(super) const VARINT: u8 = 0;
pub(super) const I64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const I32: u8 = 5;

/// A request as collected by phase 1.
#[derive(Default)]
pub(super) struct Request<'a> {
    resources: Vec<ResourceView<'a>>,
}

pub(super) struct ResourceView<'a> {
    resource: Option<Resource>,
    scopes: Vec<ScopeView<'a>>,
}

pub(super) struct ScopeView<'a> {
    scope: Option<InstrumentationScope>,
    metrics: Vec<MetricView<'a>>,
}

pub(super) enum MetricView<'a> {
    /// Decoded by prost, mapped by the generic path.
    Owned(Box<Metric>),
    /// Walked here.
    Fast {
        name: &'a str,
        description: &'a str,
        unit: &'a str,
        data: FastData<'a>,
    },
}

pub(super) enum FastData<'a> {
    Gauge(Vec<NumberView<'a>>),
    Sum {
        points: Vec<NumberView<'a>>,
        temporality: i32,
        monotonic: bool,
    },
    Histogram {
        points: Vec<HistogramView<'a>>,
        temporality: i32,
    },
}

/// A point's attributes: their raw bytes and the decoded list.
pub(super) struct AttrsView<'a> {
    raw: &'a [u8],
    decoded: Rc<[KeyValue]>,
}

pub(super) struct NumberView<'a> {
    attrs: AttrsView<'a>,
    point: NumberDataPoint,
}

pub(super) struct HistogramView<'a> {
    attrs: AttrsView<'a>,
    start: u64,
    time: u64,
    count: u64,
    sum: Option<f64>,
    /// Packed fixed64 / double payloads.
    bucket_counts: &'a [u8],
    explicit_bounds: &'a [u8],
    flags: u32,
}
