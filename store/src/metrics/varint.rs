//! The byte-level primitives of the metric WAL record and the head's histogram chunks:
//! LEB128 varints (signed ones zig-zag encoded), little-endian `f64` bits and
//! length-prefixed bytes, with a reader that reports where a payload ends early instead
//! of panicking.

/// Why bytes could not be decoded; the position names where.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VarintError {
    #[error("record ends early at byte {0}")]
    Truncated(usize),
    #[error("label text at byte {0} is not UTF-8")]
    Utf8(usize),
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends `v` zig-zag encoded as a varint.
pub(crate) fn put_ivarint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends the bits of `v`, little-endian, so every NaN payload survives.
pub(crate) fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_bits().to_le_bytes());
}

/// Appends `b` with its length in front.
pub(crate) fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// Reads what the `put_` functions wrote, front to back.
pub(crate) struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl Reader<'_> {
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn byte(&mut self) -> Result<u8, VarintError> {
        let b = *self.buf.get(self.pos).ok_or(VarintError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, VarintError> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(VarintError::Truncated(self.pos));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    pub(crate) fn ivarint(&mut self) -> Result<i64, VarintError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, VarintError> {
        let end = self.pos.saturating_add(8);
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(VarintError::Truncated(self.pos))?;
        let mut arr = [0u8; 8];
        arr.copy_from_slice(bytes);
        self.pos = end;
        Ok(u64::from_le_bytes(arr))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, VarintError> {
        Ok(f64::from_bits(self.u64_le()?))
    }

    /// A count read from the input, bounded by the bytes left (each counted item takes at
    /// least one byte), so a corrupt count cannot make the caller reserve huge buffers.
    pub(crate) fn count(&mut self) -> Result<usize, VarintError> {
        let n = self.uvarint()?;
        let left = self.buf.len().saturating_sub(self.pos) as u64;
        if n > left {
            return Err(VarintError::Truncated(self.pos));
        }
        Ok(n as usize)
    }

    pub(crate) fn string(&mut self) -> Result<String, VarintError> {
        let start = self.pos;
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| VarintError::Utf8(start))
    }
}

impl<'a> Reader<'a> {
    /// What [`put_bytes`] wrote, borrowed from the input.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], VarintError> {
        let len = self.uvarint()? as usize;
        let start = self.pos;
        let end = start.checked_add(len).ok_or(VarintError::Truncated(start))?;
        let bytes = self.buf.get(start..end).ok_or(VarintError::Truncated(start))?;
        self.pos = end;
        Ok(bytes)
    }
}
