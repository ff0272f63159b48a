//! What the two phases share: the views of a request that phase 1 collects and phase 2
//! maps, the wire types, and the "not for the walk" signal.

use std::rc::Rc;

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint};
use opentelemetry_proto::tonic::resource::v1::Resource;

pub(super) use crate::ingest::protowire::Malformed;

/// A request as collected by phase 1.
#[derive(Default)]
pub(super) struct Request<'a> {
    pub(super) resources: Vec<ResourceView<'a>>,
}

pub(super) struct ResourceView<'a> {
    pub(super) resource: Option<Resource>,
    pub(super) scopes: Vec<ScopeView<'a>>,
}

pub(super) struct ScopeView<'a> {
    pub(super) scope: Option<InstrumentationScope>,
    pub(super) metrics: Vec<MetricView<'a>>,
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
    pub(super) raw: &'a [u8],
    pub(super) decoded: Rc<[KeyValue]>,
}

pub(super) struct NumberView<'a> {
    pub(super) attrs: AttrsView<'a>,
    pub(super) point: NumberDataPoint,
}

pub(super) struct HistogramView<'a> {
    pub(super) attrs: AttrsView<'a>,
    pub(super) start: u64,
    pub(super) time: u64,
    pub(super) count: u64,
    pub(super) sum: Option<f64>,
    /// Packed fixed64 / double payloads.
    pub(super) bucket_counts: &'a [u8],
    pub(super) explicit_bounds: &'a [u8],
    pub(super) flags: u32,
}
