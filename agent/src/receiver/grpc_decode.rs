//! OTLP/gRPC unary methods over a codec of our own: requests decoded by prost, malformed
//! protobuf answered `INVALID_ARGUMENT`. tonic's generated servers answer it `INTERNAL`,
//! which OTLP clients take for a server fault and so retry the same bad batch for ever.
//! Gzip and the body limit are as the generated servers have them.
//!
//! The agent's local receiver uses it; it is public so the collector (which depends on the
//! agent) serves its OTLP/gRPC receiver through this one too (`ingest::grpc`).

use std::sync::Arc;

use prost::Message;
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

/// One unary export method: its names, message types and what it does with a request.
pub trait UnaryExport: Send + Sync + 'static {
    /// The gRPC service name, e.g. `opentelemetry.proto.collector.trace.v1.TraceService`.
    const SERVICE: &'static str;
    /// The method's path, e.g. `/opentelemetry.proto.collector.trace.v1.TraceService/Export`.
    const PATH: &'static str;
    /// The request message.
    type Request: Message + Default + Send + 'static;
    /// The reply message.
    type Response: Message + Send + 'static;

    /// Handles one decoded request.
    fn export(self: Arc<Self>, request: Self::Request) -> BoxFuture<Response<Self::Response>, Status>;

    /// Told when a request could not be decoded (and was answered `INVALID_ARGUMENT`
    /// before reaching [`UnaryExport::export`]), to count it.
    fn undecodable(&self);
}

/// A gRPC service with the one method of `E`; other paths get `UNIMPLEMENTED`.
pub struct DecodingService<E> {
    handler: Arc<E>,
    limit: usize,
}

impl<E> DecodingService<E> {
    /// Serves `handler`, refusing messages over `limit` bytes (raw or decompressed).
    pub fn new(handler: Arc<E>, limit: usize) -> Self {
        DecodingService { handler, limit }
    }
}

impl<E> Clone for DecodingService<E> {
    fn clone(&self) -> Self {
        DecodingService {
            handler: self.handler.clone(),
            limit: self.limit,
        }
    }
}

impl<E: UnaryExport> NamedService for DecodingService<E> {
    const NAME: &'static str = E::SERVICE;
}

impl<E, B> Service<http::Request<B>> for DecodingService<E>
where
    E: UnaryExport,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != E::PATH {
            return Box::pin(async move { Ok(unimplemented()) });
        }
        let method = Method(self.handler.clone());
        let limit = self.limit;
        Box::pin(async move {
            let mut encodings = EnabledCompressionEncodings::default();
            encodings.enable(CompressionEncoding::Gzip);
            let codec = ArgCodec::<E>(method.0.clone());
            let mut grpc = tonic::server::Grpc::new(codec)
                .apply_compression_config(encodings, encodings)
                .apply_max_message_size_config(Some(limit), None);
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// The answer to a path this service does not have.
pub fn unimplemented() -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::default());
    let headers = response.headers_mut();
    headers.insert(
        Status::GRPC_STATUS,
        http::HeaderValue::from(tonic::Code::Unimplemented as i32),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

struct Method<E>(Arc<E>);

impl<E: UnaryExport> UnaryService<E::Request> for Method<E> {
    type Response = E::Response;
    type Future = BoxFuture<Response<E::Response>, Status>;

    fn call(&mut self, request: Request<E::Request>) -> Self::Future {
        self.0.clone().export(request.into_inner())
    }
}

/// Requests of `E` decoded by prost (`INVALID_ARGUMENT` when malformed, told to the
/// handler), replies encoded by prost.
struct ArgCodec<E>(Arc<E>);

impl<E: UnaryExport> Codec for ArgCodec<E> {
    type Encode = E::Response;
    type Decode = E::Request;
    type Encoder = ArgCodec<E>;
    type Decoder = ArgCodec<E>;

    fn encoder(&mut self) -> Self::Encoder {
        ArgCodec(self.0.clone())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ArgCodec(self.0.clone())
    }
}

impl<E: UnaryExport> Encoder for ArgCodec<E> {
    type Item = E::Response;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the reply: {e}")))
    }
}

impl<E: UnaryExport> Decoder for ArgCodec<E> {
    type Item = E::Request;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        match E::Request::decode(src) {
            Ok(request) => Ok(Some(request)),
            Err(e) => {
                self.0.undecodable();
                Err(Status::invalid_argument(format!("invalid protobuf: {e}")))
            }
        }
    }
}
