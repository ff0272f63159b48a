//! Phase 1: the whole request checked and collected into views, keeping each point's raw
//! attribute bytes; shapes the walk does not handle are left to prost.

use crate::ingest::protowire::*;
use std::rc::Rc;

use foldhash::HashMap;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{number_data_point, Metric, NumberDataPoint};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::view::*;

/// Decoded attribute lists of one request by their raw bytes: a series' points usually
/// come one after another with the same bytes.
#[derive(Default)]
pub(super) struct AttrDecoder<'a> {
    last: Option<(&'a [u8], Rc<[KeyValue]>)>,
    seen: HashMap<&'a [u8], Rc<[KeyValue]>>,
    empty: Option<Rc<[KeyValue]>>,
}

impl<'a> AttrDecoder<'a> {
    /// The attributes in `raw` (a run of `KeyValue` fields with number `field`).
    pub(super) fn decode(&mut self, raw: &'a [u8], field: u32) -> Walk<AttrsView<'a>> {
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
pub(super) struct AttrSpan {
    start: usize,
    end: usize,
    closed: bool,
    contiguous: bool,
}

impl AttrSpan {
    pub(super) fn new() -> Self {
        AttrSpan {
            start: 0,
            end: 0,
            closed: false,
            contiguous: true,
        }
    }

    /// An attribute field occupying `[from, to)` of the message.
    pub(super) fn attribute(&mut self, from: usize, to: usize) {
        if self.start == self.end {
            self.start = from;
        } else if self.closed || from != self.end {
            self.contiguous = false;
        }
        self.end = to;
    }

    /// Any other field.
    pub(super) fn other(&mut self) {
        if self.start != self.end {
            self.closed = true;
        }
    }

    pub(super) fn slice<'a>(&self, msg: &'a [u8]) -> Option<&'a [u8]> {
        if !self.contiguous {
            return None;
        }
        msg.get(self.start..self.end)
    }
}

/// Phase 1: the whole request, checked.
pub(super) fn walk_request(body: &[u8]) -> Walk<Request<'_>> {
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

pub(super) fn walk_resource_metrics<'a>(
    msg: &'a [u8],
    attrs: &mut AttrDecoder<'a>,
) -> Walk<ResourceView<'a>> {
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

pub(super) fn walk_scope_metrics<'a>(msg: &'a [u8], attrs: &mut AttrDecoder<'a>) -> Walk<ScopeView<'a>> {
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
pub(super) enum Unhandled {
    Shape,
    Malformed,
}

impl From<Malformed> for Unhandled {
    fn from(_: Malformed) -> Self {
        Unhandled::Malformed
    }
}

pub(super) fn walk_metric<'a>(msg: &'a [u8], attrs: &mut AttrDecoder<'a>) -> Walk<MetricView<'a>> {
    match walk_fast_metric(msg, attrs) {
        Ok(view) => Ok(view),
        Err(Unhandled::Malformed) => Err(Malformed),
        Err(Unhandled::Shape) => {
            let metric = Metric::decode(msg).map_err(|_| Malformed)?;
            Ok(MetricView::Owned(Box::new(metric)))
        }
    }
}

pub(super) fn walk_fast_metric<'a>(
    msg: &'a [u8],
    attrs: &mut AttrDecoder<'a>,
) -> Result<MetricView<'a>, Unhandled> {
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
pub(super) fn walk_numbers<'a>(
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

pub(super) fn walk_number_point<'a>(
    msg: &'a [u8],
    attrs: &mut AttrDecoder<'a>,
) -> Result<NumberView<'a>, Unhandled> {
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

pub(super) fn walk_histogram<'a>(
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

pub(super) fn walk_histogram_point<'a>(
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
pub(super) struct HistogramFields<'a> {
    start: u64,
    time: u64,
    count: u64,
    sum: Option<f64>,
    bucket_counts: &'a [u8],
    explicit_bounds: &'a [u8],
    flags: u32,
}

pub(super) fn fill_u64(packed: &[u8], out: &mut Vec<u64>) {
    out.clear();
    for chunk in packed.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        out.push(u64::from_le_bytes(a));
    }
}

pub(super) fn fill_f64(packed: &[u8], out: &mut Vec<f64>) {
    out.clear();
    for chunk in packed.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        out.push(f64::from_le_bytes(a));
    }
}
