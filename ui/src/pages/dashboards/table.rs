//! The HTML of a table panel: one row per instant-query result, largest value first (a
//! native histogram shows its count and sum and sorts by its count), and the
//! value where it is seen without scrolling — first by default, or where the panel's
//! `columns` put it. By default label columns whose value is the same on every row are left
//! out (they say nothing about a row); long text is clamped to two lines with the full text
//! in the cell's `title`.

use std::fmt::Write as _;
use std::sync::Arc;

use didban_store::model::{FloatHistogram, Labels, METRIC_NAME_LABEL};

use crate::chart::{escape, histogram_text};

/// Characters above which a text cell is clamped, with its full text as a tooltip.
const LONG_TEXT_CHARS: usize = 48;

/// `A`, `B`, … as Grafana names queries.
pub(super) fn query_letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

/// One result row: which query it came from, its legend text (when the panel has legend
/// formats), its labels and value.
pub(super) struct TableRow {
    /// Index of the query.
    pub query: usize,
    /// Legend text, if the panel has legend formats.
    pub name: Option<String>,
    /// The series' labels.
    pub labels: Labels,
    /// The value at the evaluation time (`NaN` for a histogram row).
    pub value: f64,
    /// The native histogram, when the row is one: shown as its count and sum.
    pub histogram: Option<Arc<FloatHistogram>>,
}

/// A column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Column {
    /// The value, in the panel's unit.
    Value,
    /// The query letter.
    Query,
    /// The legend text.
    Series,
    /// A label's value.
    Label(String),
}

impl Column {
    /// The column a `columns:` entry names.
    fn parse(name: &str) -> Column {
        match name.trim() {
            "Value" => Column::Value,
            "Query" => Column::Query,
            "Series" => Column::Series,
            other => Column::Label(other.to_string()),
        }
    }

    fn heading(&self) -> &str {
        match self {
            Column::Value => "Value",
            Column::Query => "Query",
            Column::Series => "Series",
            Column::Label(name) => name,
        }
    }
}

/// The columns to show: the panel's `columns` when given, else the value, the query letter
/// (several queries), the legend text (legend formats) or the labels (no legend formats)
/// whose values differ between rows (all of them when there is one row).
pub(super) fn columns(rows: &[TableRow], chosen: &[String], several: bool) -> Vec<Column> {
    if !chosen.is_empty() {
        return chosen.iter().map(|c| Column::parse(c)).collect();
    }
    let mut out = vec![Column::Value];
    if several {
        out.push(Column::Query);
    }
    if rows.iter().any(|r| r.name.is_some()) {
        out.push(Column::Series);
        return out;
    }
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for l in r.labels.iter() {
            if l.name != METRIC_NAME_LABEL && !names.iter().any(|n| n == l.name) {
                names.push(l.name.to_string());
            }
        }
    }
    names.sort();
    for name in names {
        let first = rows.first().and_then(|r| r.labels.get(&name));
        let same = rows.len() > 1 && rows.iter().all(|r| r.labels.get(&name) == first);
        if !same {
            out.push(Column::Label(name));
        }
    }
    out
}

/// A text cell, clamped with a tooltip when long.
fn text_cell(html: &mut String, text: &str) {
    if text.chars().count() > LONG_TEXT_CHARS {
        let t = escape(text);
        let _ = write!(
            html,
            r#"<td class="long" title="{t}"><div class="cell-clip">{t}</div></td>"#
        );
    } else {
        let _ = write!(html, "<td>{}</td>", escape(text));
    }
}

/// The `<table>` of `rows` (already ordered) with `columns`; values formatted by `format`.
pub(super) fn render(rows: &[TableRow], columns: &[Column], format: &dyn Fn(f64) -> String) -> String {
    let mut html = String::from(r#"<div class="table-wrap"><table class="panel-table"><thead><tr>"#);
    for c in columns {
        let class = if *c == Column::Value {
            r#" class="num""#
        } else {
            ""
        };
        let _ = write!(html, r#"<th scope="col"{class}>{}</th>"#, escape(c.heading()));
    }
    html.push_str("</tr></thead><tbody>");
    for r in rows {
        html.push_str("<tr>");
        for c in columns {
            match c {
                Column::Value => {
                    let text = match &r.histogram {
                        Some(h) => histogram_text(h, format),
                        None => format(r.value),
                    };
                    let _ = write!(html, r#"<td class="num">{}</td>"#, escape(&text));
                }
                Column::Query => {
                    let _ = write!(html, "<td>{}</td>", query_letter(r.query));
                }
                Column::Series => {
                    let name = r.name.clone().unwrap_or_else(|| r.labels.to_string());
                    text_cell(&mut html, &name);
                }
                Column::Label(name) => text_cell(&mut html, r.labels.get(name).unwrap_or("")),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: f64, pairs: &[(&str, &str)]) -> TableRow {
        TableRow {
            query: 0,
            name: None,
            labels: Labels::from_pairs(pairs.iter().copied()),
            value,
            histogram: None,
        }
    }

    #[test]
    fn value_first_and_constant_labels_hidden() {
        let rows = [
            row(
                3.0,
                &[
                    ("__name__", "m"),
                    ("job", "pg"),
                    ("datname", "app"),
                    ("queryid", "1"),
                ],
            ),
            row(
                1.0,
                &[
                    ("__name__", "m"),
                    ("job", "pg"),
                    ("datname", "app"),
                    ("queryid", "2"),
                ],
            ),
        ];
        let cols = columns(&rows, &[], false);
        assert_eq!(cols, vec![Column::Value, Column::Label("queryid".into())]);
        // One row: nothing to compare, every label shows.
        let cols = columns(&rows[..1], &[], true);
        assert_eq!(
            cols,
            vec![
                Column::Value,
                Column::Query,
                Column::Label("datname".into()),
                Column::Label("job".into()),
                Column::Label("queryid".into()),
            ]
        );
    }

    #[test]
    fn chosen_columns_keep_their_order_and_long_text_has_a_tooltip() {
        let long = format!("SELECT {} FROM t", "a, ".repeat(30));
        let rows = [row(
            0.25,
            &[("query", &long), ("datname", "app"), ("queryid", "7")],
        )];
        let chosen = ["Value".to_string(), "query".into(), "datname".into()];
        let cols = columns(&rows, &chosen, false);
        let html = render(&rows, &cols, &|v| format!("{v} s"));
        let heads: Vec<&str> = html.match_indices("<th ").map(|(i, _)| &html[i..]).collect();
        assert!(
            heads[0].starts_with(r#"<th scope="col" class="num">Value"#),
            "{html}"
        );
        assert!(heads[1].starts_with(r#"<th scope="col">query"#));
        assert!(heads[2].starts_with(r#"<th scope="col">datname"#));
        assert!(!html.contains("queryid"));
        assert!(
            html.contains(&format!(r#"<td class="long" title="{long}">"#)),
            "{html}"
        );
        assert!(html.contains("<td>app</td>"));
        assert!(html.find("0.25 s").unwrap() < html.find("SELECT").unwrap());
    }

    #[test]
    fn text_is_escaped() {
        let rows = [row(1.0, &[("a", "<b>x</b>")])];
        let html = render(&rows, &columns(&rows, &[], false), &|v| v.to_string());
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>"));
    }
}
