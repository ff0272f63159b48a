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

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// A cursor over protobuf bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// A base-128 varint of at most 10 bytes (the 10th at most 1, as prost requires).
    pub fn varint(&mut self) -> Walk<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(Malformed)?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(Malformed);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    /// A field key: (field number, wire type).
    pub fn key(&mut self) -> Walk<(u32, u8)> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(Malformed);
        }
        let wire = (key & 7) as u8;
        let field = (key >> 3) as u32;
        if field == 0 || wire > 5 {
            return Err(Malformed);
        }
        Ok((field, wire))
    }

    fn take(&mut self, n: usize) -> Walk<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A length-delimited payload.
    pub fn bytes(&mut self) -> Walk<&'a [u8]> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| Malformed)?;
        self.take(n)
    }

    /// Eight little-endian bytes.
    pub fn fixed64(&mut self) -> Walk<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips a field of wire type `wire` (groups are left to prost).
    pub fn skip(&mut self, wire: u8) -> Walk<()> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            I64 => self.take(8).map(|_| ()),
            LEN => self.bytes().map(|_| ()),
            I32 => self.take(4).map(|_| ()),
            _ => Err(Malformed),
        }
    }
}

fn expect(wire: u8, want: u8) -> Walk<()> {
    if wire == want {
        Ok(())
    } else {
        Err(Malformed)
    }
}

fn utf8(b: &[u8]) -> Walk<&str> {
    std::str::from_utf8(b).map_err(|_| Malformed)
}

/// A request as collected by phase 1.
#[derive(Default)]
struct Request<'a> {
    resources: Vec<ResourceView<'a>>,
}

struct ResourceView<'a> {
    resource: Option<Resource>,
    scopes: Vec<ScopeView<'a>>,
}

struct ScopeView<'a> {
    scope: Option<InstrumentationScope>,
    metrics: Vec<MetricView<'a>>,
}

enum MetricView<'a> {
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

enum FastData<'a> {
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
struct AttrsView<'a> {
    raw: &'a [u8],
    decoded: Rc<[KeyValue]>,
}

struct NumberView<'a> {
    attrs: AttrsView<'a>,
    point: NumberDataPoint,
}

struct HistogramView<'a> {
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

/// Decoded attribute lists of one request by their raw bytes: a series' points usually
/// come one after another with the same bytes.
#[derive(Default)]
struct AttrDecoder<'a> {
    last: Option<(&'a [u8], Rc<[KeyValue]>)>,
    seen: HashMap<&'a [u8], Rc<[KeyValue]>>,
    empty: Option<Rc<[KeyValue]>>,
}

impl<'a> AttrDecoder<'a> {
    /// The attributes in `raw` (a run of `KeyValue` fields with number `field`).
    fn decode(&mut self, raw: &'a [u8], field: u32) -> Walk<AttrsView<'a>> {
        if raw.is_empty() {
            let empty = self.empty.get_or_insert_with(|| Rc::from(Vec::new())).clone();
            return Ok(AttrsView { raw, decoded: empty });
        }
        if let Some((last_raw, decoded)) = &self.last {
            if *last_raw == raw {
                return Ok(AttrsView {
                    raw,
                    decoded: decoded.clone(),
                });
            }
        }
        let decoded = match self.seen.get(raw) {
            Some(d) => d.clone(),
            None => {
                let mut list = Vec::new();
                let mut r = Reader::new(raw);
                while !r.is_empty() {
                    let (f, wire) = r.key()?;
                    if f != field || wire != LEN {
                        return Err(Malformed);
                    }
                    list.push(KeyValue::decode(r.bytes()?).map_err(|_| Malformed)?);
                }
                let d: Rc<[KeyValue]> = Rc::from(list);
                self.seen.insert(raw, d.clone());
                d
            }
        };
        self.last = Some((raw, decoded.clone()));
        Ok(AttrsView { raw, decoded })
    }
}

/// Tracks the span of a repeated attribute field inside a message; `None` when the
/// attribute fields are not one contiguous run.
struct AttrSpan {
    start: usize,
    end: usize,
    closed: bool,
    contiguous: bool,
}

impl AttrSpan {
    fn new() -> Self {
        AttrSpan {
            start: 0,
            end: 0,
            closed: false,
            contiguous: true,
        }
    }

    /// An attribute field occupying `[from, to)` of the message.
    fn attribute(&mut self, from: usize, to: usize) {
        if self.start == self.end {
            self.start = from;
        } else if self.closed || from != self.end {
            self.contiguous = false;
        }
        self.end = to;
    }

    /// Any other field.
    fn other(&mut self) {
        if self.start != self.end {
            self.closed = true;
        }
    }

    fn slice<'a>(&self, msg: &'a [u8]) -> Option<&'a [u8]> {
        if !self.contiguous {
            return None;
        }
        msg.get(self.start..self.end)
    }
}

/// Phase 1: the whole request, checked.
fn walk_request(body: &[u8]) -> Walk<Request<'_>> {
    let mut out = Request::default();
    let mut attrs = AttrDecoder::default();
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        if field == 1 {
            expect(wire, LEN)?;
            out.resources.push(walk_resource_metrics(r.bytes()?, &mut attrs)?);
        } else {
            r.skip(wire)?;
        }
    }
    Ok(out)
}

fn walk_resource_metrics<'a>(msg: &'a [u8], attrs: &mut AttrDecoder<'a>) -> Walk<ResourceView<'a>> {
    let mut resource: Option<&[u8]> = None;
    let mut scopes = Vec::new();
    let mut r = Reader::new(msg);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                if resource.replace(r.bytes()?).is_some() {
                    return Err(Malformed); // prost would merge the two
                }
            }
            2 => {
                expect(wire, LEN)?;
                scopes.push(walk_scope_metrics(r.bytes()?, attrs)?);
            }
            3 => {
                expect(wire, LEN)?;
                utf8(r.bytes()?)?;
            }
            _ => r.skip(wire)?,
        }
    }
    let resource = match resource {
        Some(b) => Some(Resource::decode(b).map_err(|_| Malformed)?),
        None => None,
    };
    Ok(ResourceView { resource, scopes })
}

fn walk_scope_metrics<'a>(msg: &'a [u8], attrs: &mut AttrDecoder<'a>) -> Walk<ScopeView<'a>> {
    let mut scope: Option<&[u8]> = None;
    let mut metrics = Vec::new();
    let mut r = Reader::new(msg);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                if scope.replace(r.bytes()?).is_some() {
                    return Err(Malformed);
                }
            }
            2 => {
                expect(wire, LEN)?;
                metrics.push(walk_metric(r.bytes()?, attrs)?);
            }
            3 => {
                expect(wire, LEN)?;
                utf8(r.bytes()?)?;
            }
            _ => r.skip(wire)?,
        }
    }
    let scope = match scope {
        Some(b) => Some(InstrumentationScope::decode(b).map_err(|_| Malformed)?),
        None => None,
    };
    Ok(ScopeView { scope, metrics })
}

/// A metric shape the walk leaves to prost (the bytes may still be well-formed).
enum Unhandled {
    Shape,
    Malformed,
}

impl From<Malformed> for Unhandled {
    fn from(_: Malformed) -> Self {
        Unhandled::Malformed
    }
}

fn walk_metric<'a>(msg: &'a [u8], attrs: &mut AttrDecoder<'a>) -> Walk<MetricView<'a>> {
    match walk_fast_metric(msg, attrs) {
        Ok(view) => Ok(view),
        Err(Unhandled::Malformed) => Err(Malformed),
        Err(Unhandled::Shape) => {
            let metric = Metric::decode(msg).map_err(|_| Malformed)?;
            Ok(MetricView::Owned(Box::new(metric)))
        }
    }
}

fn walk_fast_metric<'a>(msg: &'a [u8], attrs: &mut AttrDecoder<'a>) -> Result<MetricView<'a>, Unhandled> {
    let mut name = "";
    let mut description = "";
    let mut unit = "";
    let mut data: Option<(u32, &[u8])> = None;
    let mut r = Reader::new(msg);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1..=3 => {
                expect(wire, LEN)?;
                let s = utf8(r.bytes()?)?;
                match field {
                    1 => name = s,
                    2 => description = s,
                    _ => unit = s,
                }
            }
            5 | 7 | 9 => {
                expect(wire, LEN)?;
                if data.replace((field, r.bytes()?)).is_some() {
                    return Err(Unhandled::Shape);
                }
            }
            10..=12 => return Err(Unhandled::Shape),
            _ => r.skip(wire)?,
        }
    }
    let data = match data {
        Some((5, b)) => {
            let (points, _, _) = walk_numbers(b, false, attrs)?;
            FastData::Gauge(points)
        }
        Some((7, b)) => {
            let (points, temporality, monotonic) = walk_numbers(b, true, attrs)?;
            FastData::Sum {
                points,
                temporality,
                monotonic,
            }
        }
        Some((_, b)) => {
            let (points, temporality) = walk_histogram(b, attrs)?;
            FastData::Histogram { points, temporality }
        }
        None => return Err(Unhandled::Shape),
    };
    Ok(MetricView::Fast {
        name,
        description,
        unit,
        data,
    })
}

/// A `Sum` (points, temporality, monotonicity) or, with `sum` false, a `Gauge` (points
/// only: its fields 2 and 3 are unknown fields).
fn walk_numbers<'a>(
    msg: &'a [u8],
    sum: bool,
    attrs: &mut AttrDecoder<'a>,
) -> Result<(Vec<NumberView<'a>>, i32, bool), Unhandled> {
    let mut points = Vec::new();
    let mut temporality = 0i32;
    let mut monotonic = false;
    let mut r = Reader::new(msg);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                points.push(walk_number_point(r.bytes()?, attrs)?);
            }
            2 if sum => {
                expect(wire, VARINT)?;
                temporality = r.varint()? as i32;
            }
            3 if sum => {
                expect(wire, VARINT)?;
                monotonic = r.varint()? != 0;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((points, temporality, monotonic))
}

fn walk_number_point<'a>(msg: &'a [u8], attrs: &mut AttrDecoder<'a>) -> Result<NumberView<'a>, Unhandled> {
    let mut point = NumberDataPoint::default();
    let mut span = AttrSpan::new();
    let mut r = Reader::new(msg);
    while !r.is_empty() {
        let from = msg.len() - r.rest().len();
        let (field, wire) = r.key()?;
        match field {
            7 => {
                expect(wire, LEN)?;
                r.bytes()?;
                span.attribute(from, msg.len() - r.rest().len());
                continue;
            }
            2 => {
                expect(wire, I64)?;
                point.start_time_unix_nano = r.fixed64()?;
            }
            3 => {
                expect(wire, I64)?;
                point.time_unix_nano = r.fixed64()?;
            }
            4 => {
                expect(wire, I64)?;
                point.value = Some(number_data_point::Value::AsDouble(f64::from_bits(r.fixed64()?)));
            }
            6 => {
                expect(wire, I64)?;
                point.value = Some(number_data_point::Value::AsInt(r.fixed64()? as i64));
            }
            8 => {
                expect(wire, VARINT)?;
                point.flags = r.varint()? as u32;
            }
            5 => return Err(Unhandled::Shape), // exemplars
            _ => r.skip(wire)?,
        }
        span.other();
    }
    let raw = span.slice(msg).ok_or(Unhandled::Shape)?;
    Ok(NumberView {
        attrs: attrs.decode(raw, 7)?,
        point,
    })
}

fn walk_histogram<'a>(
    msg: &'a [u8],
    attrs: &mut AttrDecoder<'a>,
) -> Result<(Vec<HistogramView<'a>>, i32), Unhandled> {
    let mut points = Vec::new();
    let mut temporality = 0i32;
    let mut r = Reader::new(msg);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                points.push(walk_histogram_point(r.bytes()?, attrs)?);
            }
            2 => {
                expect(wire, VARINT)?;
                temporality = r.varint()? as i32;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((points, temporality))
}

fn walk_histogram_point<'a>(
    msg: &'a [u8],
    attrs: &mut AttrDecoder<'a>,
) -> Result<HistogramView<'a>, Unhandled> {
    let mut view = HistogramFields::default();
    let mut seen_counts = false;
    let mut seen_bounds = false;
    let mut span = AttrSpan::new();
    let mut r = Reader::new(msg);
    while !r.is_empty() {
        let from = msg.len() - r.rest().len();
        let (field, wire) = r.key()?;
        match field {
            9 => {
                expect(wire, LEN)?;
                r.bytes()?;
                span.attribute(from, msg.len() - r.rest().len());
                continue;
            }
            2 | 3 | 4 | 5 | 11 | 12 => {
                expect(wire, I64)?;
                let v = r.fixed64()?;
                match field {
                    2 => view.start = v,
                    3 => view.time = v,
                    4 => view.count = v,
                    5 => view.sum = Some(f64::from_bits(v)),
                    _ => {} // min, max: not mapped
                }
            }
            6 | 7 => {
                if wire != LEN {
                    return Err(Unhandled::Shape); // unpacked: prost reads it, we do not
                }
                let packed = r.bytes()?;
                if packed.len() % 8 != 0 {
                    return Err(Unhandled::Malformed);
                }
                let seen = if field == 6 {
                    &mut seen_counts
                } else {
                    &mut seen_bounds
                };
                if std::mem::replace(seen, true) {
                    return Err(Unhandled::Shape); // prost would append
                }
                if field == 6 {
                    view.bucket_counts = packed;
                } else {
                    view.explicit_bounds = packed;
                }
            }
            10 => {
                expect(wire, VARINT)?;
                view.flags = r.varint()? as u32;
            }
            8 => return Err(Unhandled::Shape), // exemplars
            _ => r.skip(wire)?,
        }
        span.other();
    }
    let raw = span.slice(msg).ok_or(Unhandled::Shape)?;
    Ok(HistogramView {
        attrs: attrs.decode(raw, 9)?,
        start: view.start,
        time: view.time,
        count: view.count,
        sum: view.sum,
        bucket_counts: view.bucket_counts,
        explicit_bounds: view.explicit_bounds,
        flags: view.flags,
    })
}

/// A histogram point's fields other than its attributes, while walking it.
#[derive(Default)]
struct HistogramFields<'a> {
    start: u64,
    time: u64,
    count: u64,
    sum: Option<f64>,
    bucket_counts: &'a [u8],
    explicit_bounds: &'a [u8],
    flags: u32,
}

fn fill_u64(packed: &[u8], out: &mut Vec<u64>) {
    out.clear();
    for chunk in packed.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        out.push(u64::from_le_bytes(a));
    }
}

fn fill_f64(packed: &[u8], out: &mut Vec<f64>) {
    out.clear();
    for chunk in packed.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        out.push(f64::from_le_bytes(a));
    }
}

/// Phase 2: the mapping, as [`map_request`] does it.
fn map_walked(request: &Request<'_>, options: &MapOptions<'_>) -> Mapped {
    let mut mapped = Mapped::default();
    let set = RefCell::new(SeriesSet::default());
    let mut scratch = HistogramDataPoint::default();
    for rm in &request.resources {
        let resource_common = resource_labels(rm.resource.as_ref());
        let mut newest_ms: Option<i64> = None;
        for sm in &rm.scopes {
            let mut common: BTreeMap<String, String> = resource_common.clone();
            add_scope_labels(&mut common, sm.scope.as_ref());
            let ctx = PointContext::new(&common, options, &set);
            for metric in &sm.metrics {
                match metric {
                    MetricView::Owned(m) => map_metric(m, &ctx, &mut mapped, &mut newest_ms),
                    MetricView::Fast {
                        name,
                        description,
                        unit,
                        data,
                    } => {
                        let head = Head {
                            otlp_name: name,
                            help: description,
                            unit,
                        };
                        map_fast(&head, data, &ctx, &mut mapped, &mut newest_ms, &mut scratch);
                    }
                }
            }
        }
        if let Some(ts) = newest_ms {
            target_info(
                rm.resource.as_ref(),
                &resource_common,
                ts,
                options,
                &mut mapped,
                &set,
            );
        }
    }
    mapped.series = set.into_inner().finish();
    mapped
}

struct Head<'a> {
    otlp_name: &'a str,
    help: &'a str,
    unit: &'a str,
}

fn point_attrs<'a>(a: &'a AttrsView<'_>) -> PointAttrs<'a> {
    PointAttrs {
        key: Attrs::Raw(a.raw),
        decoded: &a.decoded,
    }
}

fn map_fast(
    head: &Head<'_>,
    data: &FastData<'_>,
    ctx: &PointContext<'_>,
    mapped: &mut Mapped,
    newest_ms: &mut Option<i64>,
    scratch: &mut HistogramDataPoint,
) {
    match data {
        FastData::Gauge(points) => {
            let name = metric_name(head.otlp_name, head.unit, NameKind::Gauge);
            describe(mapped, &name, "gauge", head.help, head.unit);
            for p in points {
                let result = number_point(head.otlp_name, &name, &p.point, point_attrs(&p.attrs), None, ctx);
                record_point(mapped, ctx, ms(p.point.time_unix_nano), result, newest_ms);
            }
        }
        FastData::Sum {
            points,
            temporality,
            monotonic,
        } => {
            let kind = if *monotonic {
                NameKind::Counter
            } else {
                NameKind::Other
            };
            let name = metric_name(head.otlp_name, head.unit, kind);
            let kind_name = if *monotonic { "counter" } else { "gauge" };
            describe(mapped, &name, kind_name, head.help, head.unit);
            let temporality = check_temporality(head.otlp_name, *temporality);
            for p in points {
                let result: Result<_, PointError> = match &temporality {
                    Ok(t) => number_point(
                        head.otlp_name,
                        &name,
                        &p.point,
                        point_attrs(&p.attrs),
                        Some(*t),
                        ctx,
                    ),
                    Err(e) => Err(e.clone()),
                };
                record_point(mapped, ctx, ms(p.point.time_unix_nano), result, newest_ms);
            }
        }
        FastData::Histogram { points, temporality } => {
            let name = metric_name(head.otlp_name, head.unit, NameKind::Other);
            describe(mapped, &name, "histogram", head.help, head.unit);
            let temporality = check_temporality(head.otlp_name, *temporality);
            for p in points {
                let result = match &temporality {
                    Ok(t) => {
                        scratch.start_time_unix_nano = p.start;
                        scratch.time_unix_nano = p.time;
                        scratch.count = p.count;
                        scratch.sum = p.sum;
                        scratch.flags = p.flags;
                        fill_u64(p.bucket_counts, &mut scratch.bucket_counts);
                        fill_f64(p.explicit_bounds, &mut scratch.explicit_bounds);
                        histograms::histogram_point(
                            head.otlp_name,
                            &name,
                            scratch,
                            point_attrs(&p.attrs),
                            *t,
                            ctx,
                        )
                    }
                    Err(e) => Err(e.clone()),
                };
                record_point(mapped, ctx, ms(p.time), result, newest_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ingest::metrics::delta::DeltaTracker;
    use didban_store::SeriesLimits;

    use opentelemetry_proto::tonic::metrics::v1::{
        metric, Exemplar, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum,
    };

    use didban_testkit::kv;

    const T: u64 = 1_700_000_000_000_000_000;

    fn number(t: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attrs,
            time_unix_nano: t,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn hist(t: u64, attrs: Vec<KeyValue>) -> HistogramDataPoint {
        HistogramDataPoint {
            attributes: attrs,
            time_unix_nano: t,
            count: 6,
            sum: Some(2.5),
            bucket_counts: vec![1, 2, 3],
            explicit_bounds: vec![0.1, 1.0],
            ..Default::default()
        }
    }

    fn sample_request() -> ExportMetricsServiceRequest {
        let a = || vec![kv("cpu", "0"), kv("mode", "idle")];
        let b = || vec![kv("cpu", "1"), kv("mode", "idle")];
        let metrics = vec![
            Metric {
                name: "node_cpu_seconds".into(),
                unit: "s".into(),
                data: Some(metric::Data::Sum(Sum {
                    data_points: vec![
                        number(T, 1.0, a()),
                        number(T + 15_000_000_000, 2.0, a()),
                        number(T, 3.0, b()),
                        number(T + 15_000_000_000, 4.0, b()),
                    ],
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })),
                ..Default::default()
            },
            Metric {
                name: "load1".into(),
                description: "load".into(),
                data: Some(metric::Data::Gauge(Gauge {
                    data_points: vec![number(T, 0.5, vec![]), number(T + 1_000_000_000, 0.7, vec![])],
                })),
                ..Default::default()
            },
            Metric {
                name: "http.duration".into(),
                unit: "s".into(),
                data: Some(metric::Data::Histogram(Histogram {
                    data_points: vec![
                        hist(T, vec![kv("handler", "/a")]),
                        hist(T + 15_000_000_000, vec![kv("handler", "/a")]),
                        // Other bounds for the same series: not from the cache.
                        HistogramDataPoint {
                            explicit_bounds: vec![0.2, 1.0],
                            ..hist(T + 30_000_000_000, vec![kv("handler", "/a")])
                        },
                        // Stale, then bad counts.
                        HistogramDataPoint {
                            flags: 1,
                            ..hist(T + 45_000_000_000, vec![kv("handler", "/a")])
                        },
                        HistogramDataPoint {
                            count: 7,
                            ..hist(T + 60_000_000_000, vec![kv("handler", "/a")])
                        },
                    ],
                    aggregation_temporality: 2,
                })),
                ..Default::default()
            },
        ];
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "node"),
                        kv("service.instance.id", "h1"),
                        kv("os", "linux"),
                    ],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn both(body: &[u8]) -> (Result<String, String>, Result<String, String>) {
        let limits = SeriesLimits::default();
        let (d1, d2) = (DeltaTracker::new(0), DeltaTracker::new(0));
        let fused = decode_and_map(
            body,
            &MapOptions {
                limits: &limits,
                delta: &d1,
                shared: None,
            },
        )
        .map(|m| format!("{m:?}"))
        .map_err(|e| e.to_string());
        let generic = ExportMetricsServiceRequest::decode(body)
            .map(|r| {
                let m = map_request(
                    &r,
                    &MapOptions {
                        limits: &limits,
                        delta: &d2,
                        shared: None,
                    },
                );
                format!("{m:?}")
            })
            .map_err(|e| e.to_string());
        (fused, generic)
    }

    fn same(body: &[u8]) -> Result<String, String> {
        let (fused, generic) = both(body);
        assert_eq!(fused, generic);
        fused
    }

    #[test]
    fn maps_like_prost_and_map_request() {
        let body = sample_request().encode_to_vec();
        assert!(
            walk_request(&body).is_ok(),
            "the sample is walked, not left to prost"
        );
        let out = same(&body).unwrap();
        assert!(out.contains("node_cpu_seconds_total"), "{out}");
        assert!(out.contains("http_duration_seconds_bucket"), "{out}");
        assert!(out.contains("target_info"), "{out}");
    }

    #[test]
    fn labels_shared_across_requests_give_the_same_result() {
        let limits = SeriesLimits::default();
        let shared = crate::ingest::metrics::map::SharedLabels::default();
        let body = sample_request().encode_to_vec();
        let generic = map_request(
            &sample_request(),
            &MapOptions {
                limits: &limits,
                delta: &DeltaTracker::new(0),
                shared: None,
            },
        );
        for _ in 0..3 {
            let options = MapOptions {
                limits: &limits,
                delta: &DeltaTracker::new(0),
                shared: Some(&shared),
            };
            let fused = decode_and_map(&body, &options).unwrap();
            assert_eq!(format!("{fused:?}"), format!("{generic:?}"));
        }
        assert!(!shared.series.is_empty() && !shared.histograms.is_empty());
    }

    #[test]
    fn unusual_shapes_fall_back_to_prost_per_metric() {
        let mut req = sample_request();
        let metrics = &mut req.resource_metrics[0].scope_metrics[0].metrics;
        if let Some(metric::Data::Sum(s)) = &mut metrics[0].data {
            s.data_points[1].exemplars.push(Exemplar {
                filtered_attributes: vec![kv("trace", "x")],
                ..Default::default()
            });
        }
        metrics[1].metadata.push(kv("m", "1"));
        let body = req.encode_to_vec();
        let walked = walk_request(&body).unwrap();
        let owned = walked.resources[0].scopes[0]
            .metrics
            .iter()
            .filter(|m| matches!(m, MetricView::Owned(_)))
            .count();
        assert_eq!(owned, 2);
        same(&body).unwrap();
    }

    /// Protobuf bytes of a field.
    fn field(n: u32, wire: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_varint(u64::from(n) << 3 | u64::from(wire), &mut out);
        if wire == LEN {
            prost::encoding::encode_varint(payload.len() as u64, &mut out);
        }
        out.extend_from_slice(payload);
        out
    }

    fn kv_bytes(k: &str, v: &str) -> Vec<u8> {
        kv(k, v).encode_to_vec()
    }

    /// A request with one gauge whose only point is `point` (raw bytes).
    fn gauge_request(point: &[u8]) -> Vec<u8> {
        let gauge = field(1, LEN, point);
        let mut metric = field(1, LEN, b"g");
        metric.extend(field(5, LEN, &gauge));
        let scope = field(2, LEN, &metric);
        let rm = field(2, LEN, &scope);
        field(1, LEN, &rm)
    }

    fn point(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn hand_written_points_match_prost() {
        let time = field(3, I64, &T.to_le_bytes());
        let value = field(4, I64, &1.5f64.to_le_bytes());
        let a = field(7, LEN, &kv_bytes("a", "1"));
        let b = field(7, LEN, &kv_bytes("b", "2"));
        // Attributes before, after, and split around other fields (the last is left to prost).
        for p in [
            point(&[a.clone(), b.clone(), time.clone(), value.clone()]),
            point(&[time.clone(), value.clone(), a.clone(), b.clone()]),
            point(&[a.clone(), time.clone(), b.clone(), value.clone()]),
        ] {
            let out = same(&gauge_request(&p)).unwrap();
            assert!(out.contains("\"a\"") && out.contains("\"b\""), "{out}");
        }
        // Unknown fields of every wire type are skipped, at every level.
        let unknown = [
            field(99, VARINT, &[0x96, 0x01]),
            field(98, I64, &[0; 8]),
            field(97, LEN, b"xyz"),
            field(96, I32, &[0; 4]),
        ]
        .concat();
        let p = point(&[unknown.clone(), time.clone(), value.clone(), a.clone()]);
        let mut body = gauge_request(&p);
        body.extend_from_slice(&unknown);
        assert!(walk_request(&body).is_ok());
        let out = same(&body).unwrap();
        assert!(out.contains("1.5"), "{out}");
        // as_int after as_double: the last one wins.
        let p = point(&[time.clone(), value.clone(), field(6, I64, &7i64.to_le_bytes())]);
        assert!(same(&gauge_request(&p)).unwrap().contains("value: 7.0"));
    }

    #[test]
    fn malformed_bodies_give_prosts_error() {
        let time = field(3, I64, &T.to_le_bytes());
        let value = field(4, I64, &1.5f64.to_le_bytes());
        let good = gauge_request(&point(&[time.clone(), value.clone()]));
        let mut cases: Vec<Vec<u8>> = vec![
            // Truncated varint (a key with the continuation bit and nothing after).
            vec![0x8a],
            // A varint of 11 bytes.
            [vec![0x08], vec![0xff; 10], vec![0x01]].concat(),
            // Wrong wire type for resource_metrics.
            field(1, VARINT, &[1]),
            // Wrong wire type for a point's time.
            gauge_request(&field(3, VARINT, &[1])),
            // Length past the end.
            vec![0x0a, 0x05, 0x01],
            gauge_request(&[0x3a, 0x09, 0x0a, 0x01]),
            // Field number 0, wire type 7, a group.
            vec![0x02, 0x00],
            vec![0x0f],
            vec![0x0b],
            // Invalid UTF-8 in an attribute key and in a metric name.
            gauge_request(&field(7, LEN, &field(1, LEN, &[0xff, 0xfe]))),
            field(1, LEN, &field(2, LEN, &field(2, LEN, &field(1, LEN, &[0xc0])))),
            // Packed bucket counts that are not a multiple of 8 bytes.
            field(
                1,
                LEN,
                &field(
                    2,
                    LEN,
                    &field(2, LEN, &field(9, LEN, &field(1, LEN, &field(6, LEN, &[0; 7])))),
                ),
            ),
        ];
        // Every truncation of a good body.
        for n in 1..good.len() {
            cases.push(good[..n].to_vec());
        }
        for body in cases {
            let (fused, generic) = both(&body);
            assert_eq!(fused, generic, "body {body:02x?}");
            if body.len() < 8 {
                assert!(fused.is_err(), "body {body:02x?} accepted: {fused:?}");
            }
        }
        assert!(same(&good).is_ok());
    }

    #[test]
    fn reader_primitives() {
        let mut r = Reader::new(&[0xac, 0x02, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]);
        assert_eq!(r.varint(), Ok(300));
        assert_eq!(r.fixed64(), Ok(0x0807060504030201));
        assert!(r.is_empty());
        assert_eq!(r.varint(), Err(Malformed));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Reader::new(&over).varint(), Err(Malformed));
        assert_eq!(Reader::new(&[0x05, 0x01]).bytes(), Err(Malformed));
        assert_eq!(Reader::new(&[0x08 | 6]).key(), Err(Malformed));
        assert_eq!(Reader::new(&[0x0b]).skip(3), Err(Malformed));
    }
}
