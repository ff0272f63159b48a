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
//! The module is split as the walk is: `crate::ingest::protowire` reads protobuf primitives
//! (varints, wire types), [`walk`] is phase 1 (checking and collecting the request into the
//! views defined here), [`mapping`] is phase 2 (mapping the views as the generic mapping does).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

use super::map::{map_request, MapOptions, Mapped};

mod mapping;
#[cfg(test)]
mod tests;
mod view;
mod walk;

use view::Malformed;

/// Decodes a protobuf `ExportMetricsServiceRequest` and maps it, as
/// `map_request(&ExportMetricsServiceRequest::decode(body)?, options)` does.
pub fn decode_and_map(body: &[u8], options: &MapOptions<'_>) -> Result<Mapped, prost::DecodeError> {
    match walk::walk_request(body) {
        Ok(request) => Ok(mapping::map_walked(&request, options)),
        Err(Malformed) => {
            let request = ExportMetricsServiceRequest::decode(body)?;
            Ok(map_request(&request, options))
        }
    }
}
