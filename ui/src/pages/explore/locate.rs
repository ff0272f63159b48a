//! Where in a PromQL expression a parse error is. The parser reports positions only for some
//! errors; for the rest this finds one: from the message (an unclosed or unexpected bracket,
//! a quoted character or name it complains about), else by walking the expression token by
//! token and taking the first token after the longest prefix that can still be completed
//! into a valid expression.

/// Tokens longer than this many are not walked (the error is then shown without a marker).
const MAX_TOKENS: usize = 400;

/// The byte offset (on a char boundary, at most `expr.len()`) of the error `message` the
/// parser gave for `expr`, using `position` when the parser had one.
pub(crate) fn locate(expr: &str, message: &str, position: Option<usize>) -> Option<usize> {
    let found = from_message(expr, message)
        .or(position)
        .or_else(|| by_prefix(expr));
    found.map(|p| floor_boundary(expr, p.min(expr.len())))
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte ranges of tokens: strings, names, numbers/durations, operators, brackets.
fn tokens(expr: &str) -> Vec<(usize, usize)> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b':' || c == b'.' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b':' | b'.') || b[i] >= 0x80)
            {
                i += 1;
            }
        } else if i + 1 < b.len() && matches!(&b[i..i + 2], b"==" | b"!=" | b">=" | b"<=" | b"=~" | b"!~") {
            i += 2;
        } else {
            i += 1;
        }
        out.push((start, i));
    }
    out
}

/// Brackets of `expr` outside string literals: `(offset, byte)`.
fn brackets(expr: &str) -> Vec<(usize, u8)> {
    let mut out = Vec::new();
    for (start, end) in tokens(expr) {
        let c = expr.as_bytes()[start];
        if end == start + 1 && b"([{)]}".contains(&c) {
            out.push((start, c));
        }
    }
    out
}

fn opener(close: u8) -> u8 {
    match close {
        b')' => b'(',
        b']' => b'[',
        _ => b'{',
    }
}

fn closer(open: u8) -> char {
    match open {
        b'(' => ')',
        b'[' => ']',
        _ => '}',
    }
}

/// Unmatched openers (in order) and the first unmatched closer.
fn balance(expr: &str) -> (Vec<(usize, u8)>, Option<usize>) {
    let mut stack: Vec<(usize, u8)> = Vec::new();
    for (pos, c) in brackets(expr) {
        if b"([{".contains(&c) {
            stack.push((pos, c));
        } else if stack.last().map(|o| o.1) == Some(opener(c)) {
            stack.pop();
        } else {
            return (stack, Some(pos));
        }
    }
    (stack, None)
}

fn from_message(expr: &str, message: &str) -> Option<usize> {
    let (open, stray) = balance(expr);
    if message.starts_with("unclosed left") {
        return open.last().map(|o| o.0).or(Some(expr.len()));
    }
    if message.starts_with("unexpected right") {
        return stray;
    }
    if message.contains("end of input") {
        return Some(expr.len());
    }
    if let Some(rest) = message.strip_prefix("bad number or duration syntax: ") {
        return expr.find(rest.trim());
    }
    // a quoted character or name: 'x'
    let quoted = {
        let parts: Vec<&str> = message.split('\'').collect();
        if parts.len() >= 3 {
            Some(parts[parts.len() - 2])
        } else {
            None
        }
    };
    if let Some(q) = quoted.filter(|q| !q.is_empty()) {
        for (start, end) in tokens(expr) {
            if &expr[start..end] == q || (q.len() == 1 && expr[start..end].starts_with(q)) {
                return Some(start);
            }
        }
        return expr.find(q);
    }
    None
}

fn parses(text: &str) -> bool {
    promql_parser::parser::parse(text).is_ok()
}

/// The first token after the longest prefix that some short completion makes valid.
fn by_prefix(expr: &str) -> Option<usize> {
    let toks = tokens(expr);
    if toks.is_empty() || toks.len() > MAX_TOKENS || parses(expr) {
        return None;
    }
    let completable = |end: usize| -> bool {
        let prefix = &expr[..end];
        let (open, _) = balance(prefix);
        let closers: String = open.iter().rev().map(|o| closer(o.1)).collect();
        for middle in ["", " 1", "\"x\"", " x", "=\"x\"", "[1m]", "(x)", " 1)"] {
            if parses(&format!("{prefix}{middle}{closers}")) {
                return true;
            }
        }
        false
    };
    if completable(expr.len()) {
        return Some(expr.len());
    }
    for i in (0..toks.len()).rev() {
        if completable(toks[i].1) {
            return Some(toks.get(i + 1).map(|t| t.0).unwrap_or(expr.len()));
        }
    }
    Some(toks[0].0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error of the real parser located, as (offset, text from there).
    fn at(expr: &str) -> (usize, String) {
        let message = promql_parser::parser::parse(expr).err().unwrap();
        let p = locate(expr, &message, None).unwrap();
        (p, expr[p..].to_string())
    }

    #[test]
    fn brackets() {
        assert_eq!(at("rate(up[5m]").0, 4);
        assert_eq!(at("sum(rate(x[1m])) by (job").1, "(job");
        assert_eq!(at("sum by (job) (up) )").1, ")");
        assert_eq!(at("up{job=\"a\"").0, "up{job=\"a\"".len());
    }

    #[test]
    fn quoted_characters_and_names() {
        assert_eq!(at("foo{a~\"b\"}").1, "~\"b\"}");
        assert_eq!(at("rate(up[5x])").1, "5x])");
        assert_eq!(at("up + nosuchfn(up)").1, "nosuchfn(up)");
        assert_eq!(at("1 + rate(up)").1, "rate(up)");
    }

    #[test]
    fn grammar_errors_by_prefix() {
        assert_eq!(at("foo bar").1, "bar");
        assert_eq!(at("sum(up) by").0, "sum(up) by".len());
        assert_eq!(at("up{job=}").1, "}");
        assert_eq!(at("up +").0, 4);
        assert_eq!(at("up @@").1, "@");
    }

    #[test]
    fn positions_stay_on_char_boundaries() {
        let expr = "up{job=\"é\"} é";
        let p = locate(expr, "invalid promql query", Some(expr.len() - 1)).unwrap();
        assert!(expr.is_char_boundary(p));
        assert_eq!(locate("", "x", None), None);
    }
}
