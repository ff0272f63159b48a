//! The trace waterfall: spans ordered depth-first (children by start time) with their depth,
//! and the critical path — the chain of work the trace's end waited on — computed as Jaeger
//! does: from the root, repeatedly descend into the child that finished last; when a span
//! has no child left that finished before the point we came from, that span itself was the
//! work, and we step back up to its parent, looking for the child that finished before this
//! one started. Unlike Jaeger, a child that finished exactly when the next one started counts
//! (Jaeger requires it to finish strictly earlier, which drops back-to-back sequential calls
//! from the path).

use std::collections::HashMap;

use didban_store::traces::Span;

/// One row of the waterfall: a span (index into the trace's spans) and its depth (roots 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Index into the spans.
    pub index: usize,
    /// Nesting depth, 0 for a root.
    pub depth: usize,
}

/// A stretch of time during which the trace was waiting on `span` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index into the spans.
    pub span: usize,
    /// Start, nanoseconds since the epoch.
    pub start: i64,
    /// End, nanoseconds since the epoch.
    pub end: i64,
}

/// Parent index per span (`None` for roots: no parent id, or the parent is not in the
/// trace) and children per span sorted by start time.
struct Tree {
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
}

fn tree(spans: &[Span]) -> Tree {
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        by_id.entry(s.span_id.as_str()).or_insert(i);
    }
    let mut parent = vec![None; spans.len()];
    let mut children = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match by_id.get(s.parent_span_id.as_str()) {
            Some(&p) if p != i && !s.parent_span_id.is_empty() => {
                parent[i] = Some(p);
                children[p].push(i);
            }
            _ => roots.push(i),
        }
    }
    let key = |i: &usize| (spans[*i].start_unix_nano, spans[*i].span_id.clone());
    for list in &mut children {
        list.sort_by_key(key);
    }
    roots.sort_by_key(key);
    Tree {
        parent,
        children,
        roots,
    }
}

/// The waterfall rows: depth-first from each root (earliest root first), children by
/// start time. Spans caught in a parent cycle (malformed input) follow as extra roots, so
/// every span appears exactly once.
pub fn rows(spans: &[Span]) -> Vec<Row> {
    let t = tree(spans);
    let mut out = Vec::with_capacity(spans.len());
    let mut seen = vec![false; spans.len()];
    let mut starts = t.roots.clone();
    for i in 0..spans.len() {
        starts.push(i);
    }
    for root in starts {
        if seen[root] {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            out.push(Row { index: i, depth });
            for &c in t.children[i].iter().rev() {
                if !seen[c] {
                    stack.push((c, depth + 1));
                }
            }
        }
    }
    out
}

/// The critical path from the first root, as segments sorted by start. Children are first
/// clipped to their parent's time (a child that starts after its parent ended is ignored),
/// as Jaeger does, so clock skew cannot make the path leave its parent.
pub fn critical_path(spans: &[Span]) -> Vec<Segment> {
    let t = tree(spans);
    let Some(&root) = t.roots.first() else {
        return Vec::new();
    };
    // Clipped bounds and the kept children, top-down from the root.
    let n = spans.len();
    let mut bounds: Vec<Option<(i64, i64)>> = vec![None; n];
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); n];
    bounds[root] = Some((spans[root].start_unix_nano, spans[root].end_unix_nano()));
    let mut queue = vec![root];
    while let Some(i) = queue.pop() {
        let Some((ps, pe)) = bounds[i] else { continue };
        for &c in &t.children[i] {
            if bounds[c].is_some() {
                continue;
            }
            let (cs, ce) = (spans[c].start_unix_nano, spans[c].end_unix_nano());
            if cs > pe || ce < ps {
                continue;
            }
            bounds[c] = Some((cs.max(ps), ce.min(pe)));
            kids[i].push(c);
            queue.push(c);
        }
    }
    for list in &mut kids {
        // Latest end first; ties by later start, so the shortest wait is taken.
        list.sort_by(|a, b| {
            let (sa, ea) = bounds[*a].unwrap_or_default();
            let (sb, eb) = bounds[*b].unwrap_or_default();
            eb.cmp(&ea).then(sb.cmp(&sa))
        });
    }
    let mut path = Vec::new();
    let mut cur = root;
    let mut returning: Option<i64> = None;
    // Per span, how far into its children (latest end first) the search has moved: the time
    // we come back with only decreases, so a child skipped or taken once is never looked at
    // again. This keeps a span with many sequential children linear instead of quadratic,
    // and a zero-length child cannot be taken twice.
    let mut next = vec![0usize; n];
    for _ in 0..(4 * n + 4) {
        let Some((start, end)) = bounds[cur] else { break };
        let section_end = returning.unwrap_or(end);
        let list = &kids[cur];
        if let Some(t) = returning {
            while next[cur] < list.len() && bounds[list[next[cur]]].is_none_or(|(_, e)| e > t) {
                next[cur] += 1;
            }
        }
        let last = list.get(next[cur]).copied();
        if last.is_some() {
            next[cur] += 1;
        }
        match last {
            Some(c) => {
                let child_end = bounds[c].map(|(_, e)| e).unwrap_or(start);
                if child_end < section_end {
                    path.push(Segment {
                        span: cur,
                        start: child_end,
                        end: section_end,
                    });
                }
                cur = c;
                returning = None;
            }
            None => {
                if start < section_end {
                    path.push(Segment {
                        span: cur,
                        start,
                        end: section_end,
                    });
                }
                match t.parent[cur].filter(|p| bounds[*p].is_some() && *p != cur) {
                    Some(p) if cur != root => {
                        returning = Some(start);
                        cur = p;
                    }
                    _ => break,
                }
            }
        }
    }
    path.sort_by_key(|s| (s.start, s.end));
    path
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::Map;

    use super::*;

    /// A span with hex-ish ids from small numbers (0 = no parent), start and end in ns.
    pub(crate) fn span(id: u8, parent: u8, service: &str, start: i64, end: i64) -> Span {
        Span {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: format!("{id:016x}"),
            parent_span_id: if parent == 0 {
                String::new()
            } else {
                format!("{parent:016x}")
            },
            trace_state: String::new(),
            name: format!("op{id}"),
            kind: 2,
            service: service.into(),
            start_unix_nano: start,
            duration_nano: end - start,
            status_code: 0,
            status_message: String::new(),
            attributes: Map::new(),
            resource: Default::default(),
            scope_name: String::new(),
            scope_version: String::new(),
            events: Vec::new(),
            links: Vec::new(),
        }
    }

    fn ids(spans: &[Span], rows: &[Row]) -> Vec<(u8, usize)> {
        rows.iter()
            .map(|r| (u8::from_str_radix(&spans[r.index].span_id, 16).unwrap(), r.depth))
            .collect()
    }

    #[test]
    fn rows_are_depth_first_by_start_time() {
        // given out of order on purpose
        let spans = vec![
            span(4, 2, "b", 30, 40),
            span(3, 1, "a", 50, 90),
            span(1, 0, "a", 0, 100),
            span(2, 1, "b", 10, 45),
            span(5, 2, "b", 15, 20),
            span(6, 9, "c", 5, 6), // parent missing: a second root
        ];
        let rows = rows(&spans);
        assert_eq!(
            ids(&spans, &rows),
            vec![(1, 0), (2, 1), (5, 2), (4, 2), (3, 1), (6, 0)]
        );
    }

    #[test]
    fn rows_survive_parent_cycles() {
        let spans = vec![
            span(1, 2, "a", 0, 10),
            span(2, 1, "a", 1, 5),
            span(3, 0, "a", 0, 20),
        ];
        let rows = rows(&spans);
        assert_eq!(rows.len(), 3);
        assert_eq!(ids(&spans, &rows)[0], (3, 0));
    }

    #[test]
    fn critical_path_follows_the_last_finishing_children() {
        // A [0,100] ─ B [10,40], B2 [20,45], C [50,90] ─ D [55,70]
        let spans = vec![
            span(1, 0, "a", 0, 100),
            span(2, 1, "b", 10, 40),
            span(3, 1, "b", 20, 45),
            span(4, 1, "c", 50, 90),
            span(5, 4, "d", 55, 70),
        ];
        let path = critical_path(&spans);
        let got: Vec<(u8, i64, i64)> = path
            .iter()
            .map(|s| {
                (
                    u8::from_str_radix(&spans[s.span].span_id, 16).unwrap(),
                    s.start,
                    s.end,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 0, 20),
                (3, 20, 45),
                (1, 45, 50),
                (4, 50, 55),
                (5, 55, 70),
                (4, 70, 90),
                (1, 90, 100),
            ]
        );
        // B finished before B2 and is not waited on
        assert!(!path.iter().any(|s| s.span == 1));
        // the segments tile the root's whole duration
        let total: i64 = path.iter().map(|s| s.end - s.start).sum();
        assert_eq!(total, 100);
    }

    #[test]
    fn critical_path_clips_children_to_their_parent() {
        // the child overruns its parent (clock skew) and a late child starts after it ended
        let spans = vec![
            span(1, 0, "a", 0, 100),
            span(2, 1, "b", 60, 130),
            span(3, 1, "b", 150, 160),
        ];
        let path = critical_path(&spans);
        let got: Vec<(usize, i64, i64)> = path.iter().map(|s| (s.span, s.start, s.end)).collect();
        assert_eq!(got, vec![(0, 0, 60), (1, 60, 100)]);
    }

    #[test]
    fn many_sequential_children_are_walked_once() {
        // a root with 20 000 back-to-back children: every child is on the path
        let n = 20_000;
        let mut spans = vec![span(1, 0, "a", 0, 10 * n)];
        for i in 0..n {
            let mut s = span(2, 1, "b", 10 * i, 10 * i + 10);
            s.span_id = format!("{:016x}", 1000 + i);
            spans.push(s);
        }
        let started = std::time::Instant::now();
        let path = critical_path(&spans);
        eprintln!(
            "critical path over {} spans: {:?}",
            spans.len(),
            started.elapsed()
        );
        assert_eq!(path.len(), n as usize);
        assert!(path.iter().all(|s| s.span != 0), "the root never waits on itself");
    }

    #[test]
    fn zero_length_children_are_taken_once() {
        let spans = vec![
            span(1, 0, "a", 0, 10),
            span(2, 1, "b", 5, 5),
            span(3, 1, "b", 0, 5),
        ];
        let got: Vec<(usize, i64, i64)> = critical_path(&spans)
            .iter()
            .map(|s| (s.span, s.start, s.end))
            .collect();
        assert_eq!(got, vec![(2, 0, 5), (0, 5, 10)]);
    }

    #[test]
    fn single_span_is_its_own_critical_path() {
        let spans = vec![span(1, 0, "a", 5, 25)];
        assert_eq!(
            critical_path(&spans),
            vec![Segment {
                span: 0,
                start: 5,
                end: 25
            }]
        );
        assert!(critical_path(&[]).is_empty());
    }
}
