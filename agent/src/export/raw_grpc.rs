//! A gRPC codec that sends an already-encoded protobuf request as it is and decodes the
//! answer with prost. The disk buffer holds encoded OTLP requests; decoding one into a
//! message only for tonic to encode it again cost as much CPU as building it (issue 12: a
//! 2,000-record log request is ~10,000 allocations each way), so the sender ships the bytes.

use std::marker::PhantomData;

use bytes::{BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Encodes [`Bytes`] (an encoded request) verbatim; decodes `M` with prost.
#[derive(Debug)]
pub struct RawCodec<M> {
    answer: PhantomData<fn() -> M>,
}

impl<M> Default for RawCodec<M> {
    fn default() -> Self {
        RawCodec { answer: PhantomData }
    }
}

impl<M: prost::Message + Default + Send + 'static> Codec for RawCodec<M> {
    type Encode = Bytes;
    type Decode = M;
    type Encoder = RawEncoder;
    type Decoder = ProstDecoder<M>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<M> {
        ProstDecoder { answer: PhantomData }
    }
}

/// Writes the request bytes into the gRPC frame.
#[derive(Debug)]
pub struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// Decodes the collector's answer.
#[derive(Debug)]
pub struct ProstDecoder<M> {
    answer: PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> Decoder for ProstDecoder<M> {
    type Item = M;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<M>, Status> {
        match M::decode(src) {
            Ok(m) => Ok(Some(m)),
            Err(e) => Err(Status::internal(format!("undecodable OTLP response: {e}"))),
        }
    }
}
