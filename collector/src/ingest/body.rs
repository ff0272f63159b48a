//! Reading request bodies under a hard size limit, and decompressing them without letting a
//! small compressed body grow past that limit (a "zip bomb" costs at most the limit).

use std::io::Read;

use axum::body::Body;
use futures::StreamExt;

/// Why a body could not be read or decompressed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body as sent is over the limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body grows past the limit when decompressed.
    #[error("request body decompresses to more than the limit of {limit} bytes ({encoding})")]
    DecompressedTooLarge { limit: usize, encoding: &'static str },
    /// A `Content-Encoding` we do not speak.
    #[error("unsupported Content-Encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The compressed data is corrupt.
    #[error("invalid {encoding} data: {message}")]
    Corrupt { encoding: &'static str, message: String },
    /// The connection failed while the body was read.
    #[error("reading the request body failed: {0}")]
    Read(String),
}

/// A `Content-Encoding` accepted by the OTLP/HTTP receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952); concatenated members are read as one stream.
    Gzip,
    /// HTTP `deflate`, which is zlib (RFC 1950).
    Deflate,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value (absent means identity).
    pub fn parse(header: Option<&str>) -> Result<Encoding, BodyError> {
        let value = header.map(|h| h.trim().to_ascii_lowercase()).unwrap_or_default();
        match value.as_str() {
            "" | "identity" => Ok(Encoding::Identity),
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            "deflate" => Ok(Encoding::Deflate),
            _ => Err(BodyError::UnsupportedEncoding(value)),
        }
    }
}

/// Reads the whole body, failing as soon as more than `limit` bytes arrive; a
/// `Content-Length` over the limit fails before anything is read.
pub async fn read_limited(
    body: Body,
    content_length: Option<u64>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if let Some(len) = content_length {
        if len > limit as u64 {
            return Err(BodyError::TooLarge { limit });
        }
    }
    let capacity = content_length.map(|l| l as usize).unwrap_or(0).min(limit);
    let mut out = Vec::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Decompresses `raw` per `encoding`, reading at most `limit + 1` bytes of output so a
/// body that expands past the limit is refused without being expanded further.
pub fn decompress(raw: Vec<u8>, encoding: Encoding, limit: usize) -> Result<Vec<u8>, BodyError> {
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => read_capped(flate2::read::MultiGzDecoder::new(raw.as_slice()), "gzip", limit),
        Encoding::Deflate => read_capped(flate2::read::ZlibDecoder::new(raw.as_slice()), "deflate", limit),
    }
}

fn read_capped(reader: impl Read, encoding: &'static str, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let cap = (limit as u64).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Corrupt {
            encoding,
            message: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(BodyError::DecompressedTooLarge { limit, encoding });
    }
    Ok(out)
}

/// Decompresses a snappy block (remote_write), checking the size the header announces
/// before allocating anything.
pub fn decompress_snappy(raw: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let len = snap::raw::decompress_len(raw).map_err(|e| BodyError::Corrupt {
        encoding: "snappy",
        message: e.to_string(),
    })?;
    if len > limit {
        return Err(BodyError::DecompressedTooLarge {
            limit,
            encoding: "snappy",
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(raw)
        .map_err(|e| BodyError::Corrupt {
            encoding: "snappy",
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            enc.write_all(&zeros).unwrap();
        }
        let small = enc.finish().unwrap();
        let err = decompress(small.clone(), Encoding::Gzip, 1 << 20).unwrap_err();
        assert!(matches!(err, BodyError::DecompressedTooLarge { .. }), "{err}");
        assert_eq!(
            decompress(small, Encoding::Gzip, 16 << 20).unwrap().len(),
            16 << 20
        );
    }

    #[test]
    fn corrupt_and_unknown_encodings_are_named() {
        let err = decompress(b"not gzip".to_vec(), Encoding::Gzip, 100).unwrap_err();
        assert!(err.to_string().starts_with("invalid gzip data"), "{err}");
        let err = Encoding::parse(Some("br")).unwrap_err();
        assert_eq!(err.to_string(), "unsupported Content-Encoding \"br\"");
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello").unwrap();
        let z = enc.finish().unwrap();
        assert_eq!(decompress(z, Encoding::Deflate, 100).unwrap(), b"hello");
    }

    #[test]
    fn snappy_length_is_checked_before_decompressing() {
        let data = vec![7u8; 10_000];
        let compressed = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress_snappy(&compressed, 10_000).unwrap(), data);
        let err = decompress_snappy(&compressed, 9_999).unwrap_err();
        assert!(matches!(err, BodyError::DecompressedTooLarge { .. }));
        assert!(decompress_snappy(b"\xff\xff\xff\xff\xff\xff", 100).is_err());
    }
}
