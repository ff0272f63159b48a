//! Where rules read series from and write their output to: the live [`Db`], or an
//! in-memory store for tests.

use std::future::Future;
use std::pin::Pin;

use didban_store::promql::MemStorage;
use didban_store::{Db, LabelMatcher, Labels, Queryable, ReadError, SeriesSamples};
use parking_lot::RwLock;

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Storage the rule engine queries and appends to. Appends must be visible to queries as
/// soon as they return, so a later rule of a group sees an earlier rule's output.
pub trait RuleStorage: Send + Sync + 'static {
    /// The storage as something PromQL can query.
    fn queryable(&self) -> &dyn Queryable;
    /// Stores samples (rule output, `ALERTS`, stale markers). Samples the storage refuses
    /// individually (out of order, duplicates) are not an error; only a failed write is.
    fn append(&self, batch: Vec<SeriesSamples>) -> BoxFuture<'_, Result<(), String>>;
}

impl RuleStorage for Db {
    fn queryable(&self) -> &dyn Queryable {
        self
    }

    fn append(&self, batch: Vec<SeriesSamples>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let report = Db::append(self, batch).await.map_err(|e| e.to_string())?;
            if let Some(first) = &report.first_error {
                tracing::debug!(rejected = report.rejected_total(), first = %first, "rule output partly refused");
            }
            Ok(())
        })
    }
}

/// Counts log records, for log rules. The server implements it over the log store; without
/// one, log rules fail with a clear error and the other rules keep working.
pub trait LogSource: Send + Sync + 'static {
    /// Records matching `query` with timestamps in `[start_ms, end_ms]`.
    fn count(&self, query: &str, start_ms: i64, end_ms: i64) -> Result<u64, String>;

    /// Those records counted per value of `field`, the most frequent `limit` values.
    fn count_by(
        &self,
        query: &str,
        field: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String> {
        let _ = (query, start_ms, end_ms, limit);
        Err(format!(
            "counting by {field:?} is not supported by this log source"
        ))
    }
}

/// An in-memory [`RuleStorage`] for tests and `promqltest`-style rule tests.
#[derive(Debug, Default)]
pub struct MemRuleStorage {
    inner: RwLock<MemStorage>,
}

impl MemRuleStorage {
    /// Wraps existing series.
    pub fn new(storage: MemStorage) -> Self {
        MemRuleStorage {
            inner: RwLock::new(storage),
        }
    }

    /// Adds series (e.g. from promqltest `load` notation) after creation.
    pub fn with(&self, f: impl FnOnce(&mut MemStorage)) {
        f(&mut self.inner.write());
    }
}

impl Queryable for MemRuleStorage {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        self.inner.read().select(matchers, start_ms, end_ms)
    }

    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, ReadError> {
        self.inner.read().series(matchers, start_ms, end_ms)
    }
}

impl RuleStorage for MemRuleStorage {
    fn queryable(&self) -> &dyn Queryable {
        self
    }

    fn append(&self, batch: Vec<SeriesSamples>) -> BoxFuture<'_, Result<(), String>> {
        let mut inner = self.inner.write();
        for s in batch {
            for sample in s.samples {
                inner.add(&s.labels, sample);
            }
        }
        Box::pin(async { Ok(()) })
    }
}

/// The log query a log rule's `query` makes over `[start_ms, end_ms]` (milliseconds,
/// inclusive), for every [`LogSource`] over a log store.
pub fn log_query(query: &str, start_ms: i64, end_ms: i64) -> didban_store::logs::LogQuery {
    didban_store::logs::LogQuery {
        query: query.to_string(),
        trace_id: None,
        start_unix_nano: start_ms.saturating_mul(1_000_000),
        end_unix_nano: end_ms.saturating_mul(1_000_000).saturating_add(999_999),
        limit: 0,
        cursor: None,
    }
}

impl LogSource for didban_store::logs::LogStore {
    /// One histogram bucket spanning the window (at most two after alignment), summed.
    fn count(&self, query: &str, start_ms: i64, end_ms: i64) -> Result<u64, String> {
        let q = log_query(query, start_ms, end_ms);
        let interval = end_ms.saturating_sub(start_ms).saturating_add(1).max(1);
        let buckets = self.histogram(&q, interval).map_err(|e| e.to_string())?;
        let mut n = 0u64;
        for b in buckets {
            n += b.count;
        }
        Ok(n)
    }

    /// The store's top values of `field`.
    fn count_by(
        &self,
        query: &str,
        field: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String> {
        self.top_values(&log_query(query, start_ms, end_ms), field, limit)
            .map_err(|e| e.to_string())
    }
}

/// Log records in memory, for rule unit tests (`input_logs`). Matching approximates the log
/// store's query syntax: every word and `"quoted phrase"` must occur in the body (ignoring
/// case), every `field:value` and `field:[lo TO hi]` must hold for the record's fields,
/// `a OR b` needs either, parentheses group; `*` or an empty query matches everything.
#[derive(Debug, Default)]
pub struct MemLogSource {
    records: Vec<MemLogRecord>,
}

/// One record of a [`MemLogSource`].
#[derive(Debug, Clone, Default)]
pub struct MemLogRecord {
    /// Timestamp, ms.
    pub t_ms: i64,
    /// The text matched by queries.
    pub body: String,
    /// Fields `count_by` can split by, named as in the log store (`service`,
    /// `attributes.<key>`).
    pub fields: std::collections::BTreeMap<String, String>,
}

impl MemLogSource {
    /// These records.
    pub fn new(records: Vec<MemLogRecord>) -> Self {
        MemLogSource { records }
    }

    fn matching<'a>(&'a self, query: &str, start_ms: i64, end_ms: i64) -> Vec<&'a MemLogRecord> {
        let cond = parse_query(query);
        let mut out = Vec::new();
        for r in &self.records {
            if r.t_ms < start_ms || r.t_ms > end_ms {
                continue;
            }
            let lower = r.body.to_lowercase();
            if cond.matches(r, &lower) {
                out.push(r);
            }
        }
        out
    }
}

/// One condition of a query, as [`MemLogSource`] understands it.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    /// A word or `"phrase"` that must occur in the body (lower-cased).
    Text(String),
    /// `field:value`: the field equals the value.
    Field(String, String),
    /// `field:[lo TO hi]`: the field is a number in the range.
    Range(String, f64, f64),
}

/// A query: terms joined by `AND` (or nothing) and `OR`, grouped with parentheses.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Term(Term),
    All(Vec<Cond>),
    Any(Vec<Cond>),
}

impl Cond {
    fn matches(&self, r: &MemLogRecord, body_lower: &str) -> bool {
        match self {
            Cond::Term(t) => t.matches(r, body_lower),
            Cond::All(v) => v.iter().all(|c| c.matches(r, body_lower)),
            Cond::Any(v) => v.iter().any(|c| c.matches(r, body_lower)),
        }
    }
}

/// A token of a query: a term, `(`, `)` or `OR`.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Term(Term),
    Open,
    Close,
    Or,
}

/// The tokens of a query: words, `"quoted phrases"`, `field:value`, `field:[lo TO hi]`,
/// parentheses and `OR` (`AND` and `*` are dropped: terms are joined by AND anyway).
fn tokens(query: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut rest = query.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('(') {
            out.push(Token::Open);
            rest = after.trim_start();
            continue;
        }
        if let Some(after) = rest.strip_prefix(')') {
            out.push(Token::Close);
            rest = after.trim_start();
            continue;
        }
        if let Some(after) = rest.strip_prefix('"') {
            let (phrase, tail) = after.split_once('"').unwrap_or((after, ""));
            out.push(Token::Term(Term::Text(phrase.to_lowercase())));
            rest = tail.trim_start();
            continue;
        }
        let word_end = rest.find([' ', '"', '(', ')']).unwrap_or(rest.len());
        if let Some((field, tail)) = rest.split_once(":[") {
            if field.len() < word_end && !field.contains([' ', '"', '(', ')']) {
                let (range, after) = tail.split_once(']').unwrap_or((tail, ""));
                let mut bounds = range.split(" TO ");
                let lo = bounds
                    .next()
                    .and_then(|b| b.trim().parse().ok())
                    .unwrap_or(f64::NEG_INFINITY);
                let hi = bounds
                    .next()
                    .and_then(|b| b.trim().parse().ok())
                    .unwrap_or(f64::INFINITY);
                out.push(Token::Term(Term::Range(field.to_string(), lo, hi)));
                rest = after.trim_start();
                continue;
            }
        }
        let word = rest.get(..word_end).unwrap_or("");
        if word == "OR" {
            out.push(Token::Or);
        } else if word != "AND" && word != "*" && !word.is_empty() {
            match word.split_once(':') {
                Some((f, v)) if !f.is_empty() && !v.is_empty() => out.push(Token::Term(Term::Field(
                    f.to_string(),
                    v.trim_matches('"').to_string(),
                ))),
                _ => out.push(Token::Term(Term::Text(word.to_lowercase()))),
            }
        }
        rest = rest.get(word_end..).unwrap_or("").trim_start();
    }
    out
}

/// Parses a query (OR binds weaker than the implicit AND, as in the log store's syntax).
fn parse_query(query: &str) -> Cond {
    let toks = tokens(query);
    let mut pos = 0;
    parse_or(&toks, &mut pos)
}

fn parse_or(toks: &[Token], pos: &mut usize) -> Cond {
    let mut alts = vec![parse_and(toks, pos)];
    while toks.get(*pos) == Some(&Token::Or) {
        *pos += 1;
        alts.push(parse_and(toks, pos));
    }
    if alts.len() == 1 {
        alts.pop().unwrap_or(Cond::All(Vec::new()))
    } else {
        Cond::Any(alts)
    }
}

fn parse_and(toks: &[Token], pos: &mut usize) -> Cond {
    let mut all = Vec::new();
    while let Some(t) = toks.get(*pos) {
        match t {
            Token::Or | Token::Close => break,
            Token::Open => {
                *pos += 1;
                all.push(parse_or(toks, pos));
                if toks.get(*pos) == Some(&Token::Close) {
                    *pos += 1;
                }
            }
            Token::Term(term) => {
                *pos += 1;
                all.push(Cond::Term(term.clone()));
            }
        }
    }
    Cond::All(all)
}

impl Term {
    fn matches(&self, r: &MemLogRecord, body_lower: &str) -> bool {
        match self {
            Term::Text(t) => body_lower.contains(t.as_str()),
            Term::Field(f, v) => r.fields.get(f).is_some_and(|x| x == v),
            Term::Range(f, lo, hi) => r
                .fields
                .get(f)
                .and_then(|x| x.parse::<f64>().ok())
                .is_some_and(|x| x >= *lo && x <= *hi),
        }
    }
}

impl LogSource for MemLogSource {
    fn count(&self, query: &str, start_ms: i64, end_ms: i64) -> Result<u64, String> {
        Ok(self.matching(query, start_ms, end_ms).len() as u64)
    }

    fn count_by(
        &self,
        query: &str,
        field: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String> {
        let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        for r in self.matching(query, start_ms, end_ms) {
            if let Some(v) = r.fields.get(field) {
                *counts.entry(v.clone()).or_default() += 1;
            }
        }
        let mut list: Vec<(String, u64)> = counts.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list.truncate(limit.max(1));
        Ok(list)
    }
}
