//! Protobuf primitives for the borrowing decoders (OTLP metrics' `metrics::wire`, remote
//! write 1.0's `remote_write::walk`): a cursor over bytes, wire types, UTF-8.
//!
//! The decoders built on it are never more lenient than prost: anything this reader does
//! not accept is [`Malformed`], and the caller then decodes with prost, which names the
//! error.

/// The walk found something it does not accept; prost decides (and names the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// A walk's result.
pub(crate) type Walk<T> = Result<T, Malformed>;

/// Wire type of varints.
pub(crate) const VARINT: u8 = 0;
/// Wire type of fixed 64-bit fields.
pub(crate) const I64: u8 = 1;
/// Wire type of length-delimited fields.
pub(crate) const LEN: u8 = 2;
/// Wire type of fixed 32-bit fields.
pub(crate) const I32: u8 = 5;

/// A cursor over protobuf bytes.
pub(crate) struct Reader<'a> {
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
        // Most varints (keys, lengths of labels and samples) are one byte.
        if let Some((&b, rest)) = self.buf.split_first() {
            if b < 0x80 {
                self.buf = rest;
                return Ok(u64::from(b));
            }
        }
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

    pub fn take(&mut self, n: usize) -> Walk<&'a [u8]> {
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

pub(crate) fn expect(wire: u8, want: u8) -> Walk<()> {
    if wire == want {
        Ok(())
    } else {
        Err(Malformed)
    }
}

pub(crate) fn utf8(b: &[u8]) -> Walk<&str> {
    std::str::from_utf8(b).map_err(|_| Malformed)
}

/// Protobuf bytes of field `n` of wire type `wire` with `payload` (a length prefix added
/// for [`LEN`]): hand-built messages for the decoders' tests.
#[cfg(test)]
pub(crate) fn field(n: u32, wire: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(u64::from(n) << 3 | u64::from(wire), &mut out);
    if wire == LEN {
        prost::encoding::encode_varint(payload.len() as u64, &mut out);
    }
    out.extend_from_slice(payload);
    out
}
