//! The nesting limit, checked on the query text before the parser sees it.
//!
//! The parser builds one boxed AST node per nesting level, and the parser's own checks, the
//! AST's `Display` and `Drop` and our evaluator all recurse over that tree: a query nested a few
//! thousand levels deep (`abs(abs(…))`, `1+1+1+…`, nested subqueries) overflows the thread's
//! stack and aborts the whole process. So the depth is bounded first, by a flat scan of the
//! tokens that needs no recursion and O(nesting) memory.

use super::error::PromqlError;

/// Nesting depth allowed by default: far beyond any real query, far below what overflows a
/// 2 MiB thread stack in a debug build.
pub const DEFAULT_MAX_DEPTH: usize = 200;

/// One open bracket (or the top level): its binary operators and its deepest child.
#[derive(Default, Clone, Copy)]
struct Frame {
    /// Operators seen directly at this level; each may add one level to the tree.
    ops: usize,
    /// Depth of the deepest bracket closed inside this one.
    deepest_child: usize,
    /// Inside `{…}`, where `=`, `!=`, `=~` and `or` are label matching, not operators.
    matchers: bool,
}

impl Frame {
    fn depth(&self) -> usize {
        1 + self.ops + self.deepest_child
    }
}

/// An upper bound of the AST depth of `expr`: every bracket, function call, aggregation and
/// subquery counts one level, every operator (binary or unary, `and`/`or`/`unless`/`atan2`
/// too) one more within its bracket. Strings and comments are skipped.
pub fn nesting_depth(expr: &str) -> usize {
    let bytes = expr.as_bytes();
    let mut stack: Vec<Frame> = vec![Frame::default()];
    let mut i = 0usize;
    while let Some(&c) = bytes.get(i) {
        i += 1;
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(bytes, i, c),
            b'#' => {
                while bytes.get(i).is_some_and(|&b| b != b'\n') {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                if c == b'[' {
                    // A range or subquery wraps the expression before it.
                    add_op(&mut stack);
                }
                stack.push(Frame {
                    matchers: c == b'{',
                    ..Frame::default()
                });
            }
            // An unmatched closer is the parser's to refuse; the top level stays.
            b')' | b']' | b'}' if stack.len() > 1 => {
                if let Some(closed) = stack.pop() {
                    let d = closed.depth();
                    if let Some(parent) = stack.last_mut() {
                        parent.deepest_child = parent.deepest_child.max(d);
                    }
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => add_op(&mut stack),
            b'<' | b'>' | b'=' | b'!' => {
                // `<=`, `==`, `!=`, `!~`, `=~` are one token of two bytes.
                let second = bytes.get(i).copied();
                if matches!(second, Some(b'=') | Some(b'~')) {
                    i += 1;
                }
                // A lone `=` or `=~` only matches labels; `!~` too, but counting it is harmless.
                if c != b'=' || second == Some(b'=') {
                    add_op(&mut stack);
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i - 1;
                while bytes
                    .get(i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
                {
                    i += 1;
                }
                let word = expr.get(start..i).unwrap_or_default();
                if ["and", "or", "unless", "atan2"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    add_op(&mut stack);
                }
            }
            _ => {}
        }
    }
    // Brackets left open count as closed at the end (the parser will refuse the query).
    let mut depth = 0usize;
    while let Some(mut f) = stack.pop() {
        f.deepest_child = f.deepest_child.max(depth);
        depth = f.depth();
    }
    depth
}

/// Counts one operator in the innermost bracket unless it is a label-matcher block.
fn add_op(stack: &mut [Frame]) {
    if let Some(f) = stack.last_mut() {
        if !f.matchers {
            f.ops += 1;
        }
    }
}

/// The index just after the string literal opened by `quote` (whose content starts at `i`).
/// Backslash escapes apply except in backtick (raw) strings.
fn skip_string(bytes: &[u8], mut i: usize, quote: u8) -> usize {
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b == quote {
            break;
        }
        if b == b'\\' && quote != b'`' {
            i += 1;
        }
    }
    i
}

/// Refuses `expr` when its nesting exceeds `max_depth`, naming both.
pub fn check_depth(expr: &str, max_depth: usize) -> Result<(), PromqlError> {
    let found = nesting_depth(expr);
    if found > max_depth {
        return Err(PromqlError::TooDeep {
            limit: max_depth,
            found,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shallow_queries_are_shallow() {
        assert_eq!(nesting_depth("up"), 1);
        assert_eq!(nesting_depth("1 + 1"), 2);
        assert_eq!(
            nesting_depth("sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))"),
            5
        );
        assert_eq!(nesting_depth("a or b or c"), 3);
        assert_eq!(nesting_depth("up{a=\"((((\", b!=\"x\"} # ((((("), 2);
    }

    #[test]
    fn each_shape_counts_its_nesting() {
        let n = 500;
        let chain = vec!["1"; n].join("+");
        assert!(nesting_depth(&chain) >= n - 1);
        let abs = format!("{}up{}", "abs(".repeat(n), ")".repeat(n));
        assert!(nesting_depth(&abs) >= n);
        let unclosed = "sum(".repeat(n);
        assert!(nesting_depth(&unclosed) >= n);
        let neg = format!("{}1", "-".repeat(n));
        assert!(nesting_depth(&neg) >= n);
        // A deep subtree before a long chain adds up, as in the tree.
        let mixed = format!("{abs}{}", "+1".repeat(n));
        assert!(nesting_depth(&mixed) >= 2 * n);
    }

    #[test]
    fn the_limit_names_both_numbers() {
        let e = check_depth(&"(".repeat(300), 200).unwrap_err().to_string();
        assert!(e.contains("limit of 200") && e.contains("depth 301"), "{e}");
        assert!(check_depth("rate(x[5m])", 200).is_ok());
    }
}
