//! A bit stream written and read most significant bit first: the carrier of the XOR chunk
//! encoding, where most fields are a few bits wide and none is byte aligned.

/// Appends bits to a byte stream; the last byte is filled from its high bit down.
///
/// The stream is a boxed slice and a length rather than a `Vec` (8 bytes less in every
/// open chunk, one per series in the head); bytes past the length are zero.
#[derive(Debug, Default)]
pub(super) struct BitWriter {
    buf: Box<[u8]>,
    /// Bytes written (the last one possibly partly).
    len: u32,
    /// Bits of the last byte not written yet (0 when it is full or there is none).
    free: u8,
}

impl BitWriter {
    /// Writes the low `n` bits of `value` (`n` ≤ 64), highest first: into one word of the
    /// stream when eight bytes from the current one are allocated (the bytes past the
    /// length are zero, so an OR puts the bits in place), else byte by byte.
    #[inline]
    pub(super) fn write_bits(&mut self, value: u64, n: u32) {
        if (1..=56).contains(&n) && self.write_in_word(value, n) {
            return;
        }
        self.write_bits_slowly(value, n);
    }

    /// [`BitWriter::write_bits`] through one 8-byte load and store; false (nothing
    /// written) when the allocation ends within those eight bytes. `n` is 1 to 56, so the
    /// bits fit beside the up to 7 used bits of the current byte.
    #[inline]
    fn write_in_word(&mut self, value: u64, n: u32) -> bool {
        let len = self.len as usize;
        // The byte holding the next free bit, and the bits of it already written.
        let (start, used) = if self.free > 0 {
            (len - 1, 8 - u32::from(self.free))
        } else {
            (len, 0)
        };
        let Some(window) = self.buf.get_mut(start..start + 8) else {
            return false;
        };
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(window);
        let bits = value & ((1u64 << n) - 1);
        let word = u64::from_be_bytes(bytes) | (bits << (64 - used - n));
        window.copy_from_slice(&word.to_be_bytes());
        let total = used + n;
        self.len = (start + total.div_ceil(8) as usize) as u32;
        self.free = ((8 - total % 8) % 8) as u8;
        true
    }

    fn write_bits_slowly(&mut self, value: u64, n: u32) {
        let mut left = n.min(64);
        while left > 0 {
            if self.free == 0 {
                self.push_byte();
            }
            let free = u32::from(self.free);
            let take = left.min(free);
            let shift = left - take;
            let part = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.get_mut(self.len as usize - 1) {
                *last |= part << (free - take);
            }
            // `take` ≤ `free` ≤ 8.
            self.free -= take as u8;
            left -= take;
        }
    }

    /// Starts a new, zero byte.
    fn push_byte(&mut self) {
        if self.len as usize == self.buf.len() {
            self.grow();
        }
        self.len += 1;
        self.free = 8;
    }

    /// Makes room for more bytes: a quarter of the length (16 bytes at least) rather than
    /// doubling. A head holds one open stream per series, mostly part-grown, and doubling
    /// leaves a quarter of each allocation unused on average. Measured with 120 samples per
    /// series: the head's accounted bytes 917 → 831 per series, peak RSS at 1 M series
    /// 1,176 → 1,139 MiB, ingest CPU unchanged (`docs/benchmarks.md`).
    fn grow(&mut self) {
        let len = self.buf.len();
        self.reserve_total(len + (len / 4).max(16));
    }

    /// Makes the stream's allocation `total` bytes when it is smaller, in one move: for a
    /// stream whose final size is foreseen, instead of the steps of [`BitWriter::grow`].
    pub(super) fn reserve_total(&mut self, total: usize) {
        let len = self.buf.len();
        if total <= len {
            return;
        }
        let mut bytes = std::mem::take(&mut self.buf).into_vec();
        // Exact, so that the boxed slice below takes the allocation as it is.
        bytes.reserve_exact(total - len);
        bytes.resize(total, 0);
        self.buf = bytes.into_boxed_slice();
    }

    /// Writes one bit.
    pub(super) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes `value` as an unsigned LEB128 varint, 8 bits per group.
    pub(super) fn write_uvarint(&mut self, mut value: u64) {
        loop {
            let group = value & 0x7f;
            value >>= 7;
            if value == 0 {
                self.write_bits(group, 8);
                return;
            }
            self.write_bits(group | 0x80, 8);
        }
    }

    /// The bytes written so far (the last one possibly partly filled, low bits zero).
    pub(super) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len as usize).unwrap_or_default()
    }

    /// Bytes allocated for the stream (its capacity), for memory accounting.
    pub(super) fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// The written bytes in an allocation of exactly their size.
    pub(super) fn into_boxed(self) -> Box<[u8]> {
        let mut bytes = self.buf.into_vec();
        bytes.truncate(self.len as usize);
        bytes.into_boxed_slice()
    }
}

/// The stream's next bits at the top of a word, as [`BitReader::window`] gives them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    /// The bits, highest first; below the `valid` ones, zeros.
    pub word: u64,
    /// How many of the word's top bits are the stream's: 64 less the bits of the current
    /// byte already read, fewer within eight bytes of the end.
    pub valid: u32,
}

/// Reads bits back from a byte slice; every read past the end gives `None`.
#[derive(Debug, Clone)]
pub(super) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position of the next bit, counted from the high bit of the first byte.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> BitReader<'a> {
        BitReader { bytes, pos: 0 }
    }

    /// The stream's next bits in one word (`None` at its end). Reading fields from one
    /// load instead of byte by byte is what makes a query's decoding fast: decoding was
    /// ~45 % of a range query over the head (`docs/benchmarks.md`). Within eight bytes of
    /// the end the word is filled with zeros and says how many bits are real, so a
    /// chunk's last samples are read the same way as the others.
    #[inline]
    pub(super) fn window(&self) -> Option<Window> {
        let start = self.pos / 8;
        let used = (self.pos % 8) as u32;
        if let Some(bytes) = self.bytes.get(start..start.wrapping_add(8)) {
            if let Ok(bytes) = <[u8; 8]>::try_from(bytes) {
                return Some(Window {
                    word: u64::from_be_bytes(bytes) << used,
                    valid: 64 - used,
                });
            }
        }
        let rest = self.bytes.get(start..).filter(|r| !r.is_empty())?;
        let mut bytes = [0u8; 8];
        let n = rest.len().min(8);
        bytes.get_mut(..n)?.copy_from_slice(rest.get(..n)?);
        Some(Window {
            word: u64::from_be_bytes(bytes) << used,
            valid: n as u32 * 8 - used,
        })
    }

    /// Moves past `n` bits the caller read from one [`BitReader::window`] (at most its
    /// `valid` bits, so the position stays inside the stream).
    #[inline]
    pub(super) fn consume(&mut self, n: u32) {
        debug_assert!(n <= 64 - (self.pos % 8) as u32);
        debug_assert!(self.pos + n as usize <= self.bytes.len() * 8);
        self.pos += n as usize;
    }

    /// Reads `n` bits (`n` ≤ 64) as the low bits of the result, highest first.
    #[inline]
    pub(super) fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n >= 1 {
            if let Some(w) = self.window().filter(|w| n <= w.valid) {
                self.consume(n);
                return Some(w.word >> (64 - n));
            }
        }
        self.read_bits_slowly(n)
    }

    /// [`BitReader::read_bits`] a byte at a time: for 64 bits after the first bit of a byte,
    /// and past the stream's end (where it gives `None`).
    fn read_bits_slowly(&mut self, n: u32) -> Option<u64> {
        let mut left = n.min(64);
        let mut value = 0u64;
        while left > 0 {
            let byte = *self.bytes.get(self.pos / 8)?;
            let used = (self.pos % 8) as u32;
            let avail = 8 - used;
            let take = left.min(avail);
            let part = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            // `take` < 64 here, so the shift never drops the value it makes room for.
            value = (value << take) | part;
            self.pos += take as usize;
            left -= take;
        }
        Some(value)
    }

    /// Reads one bit.
    pub(super) fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    /// Reads an unsigned varint written by [`BitWriter::write_uvarint`]; `None` when the
    /// stream ends or the varint is longer than a `u64`.
    pub(super) fn read_uvarint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let group = self.read_bits(8)?;
            value |= (group & 0x7f) << (7 * i);
            if group & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_every_width_round_trip_across_byte_boundaries() {
        let mut w = BitWriter::default();
        let mut fields = Vec::new();
        for n in 1..=64u32 {
            let value = 0xdead_beef_cafe_f00d_u64.rotate_left(n) & (u64::MAX >> (64 - n));
            fields.push((value, n));
            w.write_bits(value, n);
        }
        w.write_bit(true);
        let total: u32 = (1..=64).sum::<u32>() + 1;
        assert_eq!(w.bytes().len(), total.div_ceil(8) as usize);
        let mut r = BitReader::new(w.bytes());
        for (value, n) in fields {
            assert_eq!(r.read_bits(n), Some(value), "{n} bits");
        }
        assert_eq!(r.read_bit(), Some(true));
    }

    #[test]
    fn varints_round_trip_and_reading_past_the_end_is_none() {
        let mut w = BitWriter::default();
        w.write_bit(true);
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            w.write_uvarint(v);
        }
        let mut r = BitReader::new(w.bytes());
        assert_eq!(r.read_bit(), Some(true));
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.read_uvarint(), Some(v));
        }
        assert_eq!(r.read_bits(8), None);
        assert_eq!(BitReader::new(&[0xff; 11]).read_uvarint(), None, "too long");
        assert_eq!(BitReader::new(&[0x80]).read_uvarint(), None, "cut off");
    }
}
