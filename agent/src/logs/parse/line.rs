//! Where in a record its severity and timestamp are looked for: the first line, bounded.

/// The first line of `text`, cut to at most `max_bytes` (at a character boundary): where a
/// record's severity and timestamp are looked for. Only the first `max_bytes` are searched for
/// the line's end (a memchr), not the whole record.
pub fn first_line(text: &str, max_bytes: usize) -> &str {
    let limit = text.len().min(max_bytes);
    let searched = text.as_bytes().get(..limit).unwrap_or_default();
    let mut end = memchr::memchr(b'\n', searched).unwrap_or(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}
