//! The Tantivy schema of a day index and the document of a record.
//!
//! | field | type | use |
//! |---|---|---|
//! | `timestamp`, `observed_timestamp` | date (ns), fast + indexed | time range, sort, histogram |
//! | `severity_number` | u64, fast + indexed | `severity_number:>=17` |
//! | `severity_text`, `service`, `trace_id`, `span_id`, `scope` | raw string, fast | exact match, top values |
//! | `body` | text (default tokenizer) | full-text search, phrases |
//! | `attributes`, `resource` | JSON, text + fast (raw), dots expanded | `attributes.http.status_code:500` |
//! | `seq` | u64, fast + indexed | live tail (ingest order) |
//! | `source` | stored only | the record as JSON, returned by searches |

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, JsonObjectOptions, NumericOptions, Schema, TextFieldIndexing,
    TextOptions, FAST, STORED, STRING, TEXT,
};
use tantivy::{DateTime, TantivyDocument};

use std::path::Path;

use super::error::LogError;
use super::record::LogRecord;

/// The fields of the schema.
#[derive(Clone)]
pub(crate) struct Fields {
    pub schema: Schema,
    pub timestamp: Field,
    pub observed: Field,
    pub severity_number: Field,
    pub severity_text: Field,
    pub service: Field,
    pub body: Field,
    pub attributes: Field,
    pub resource: Field,
    pub trace_id: Field,
    pub span_id: Field,
    pub scope: Field,
    pub seq: Field,
    pub source: Field,
}

impl Fields {
    /// Builds the schema.
    pub(crate) fn new() -> Fields {
        let mut b = Schema::builder();
        let date = DateOptions::default()
            .set_indexed()
            .set_fast()
            .set_precision(DateTimePrecision::Nanoseconds);
        let timestamp = b.add_date_field("timestamp", date.clone());
        let observed = b.add_date_field("observed_timestamp", date);
        let number = NumericOptions::default().set_indexed().set_fast();
        let severity_number = b.add_u64_field("severity_number", number.clone());
        let seq = b.add_u64_field("seq", number);
        let raw = STRING | FAST;
        let severity_text = b.add_text_field("severity_text", raw.clone());
        let service = b.add_text_field("service", raw.clone());
        let trace_id = b.add_text_field("trace_id", raw.clone());
        let span_id = b.add_text_field("span_id", raw.clone());
        let scope = b.add_text_field("scope", raw);
        let body = b.add_text_field("body", TEXT);
        let json = JsonObjectOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(tantivy::schema::IndexRecordOption::WithFreqsAndPositions),
            )
            .set_expand_dots_enabled()
            .set_fast("raw");
        let attributes = b.add_json_field("attributes", json.clone());
        let resource = b.add_json_field("resource", json);
        let source = b.add_text_field("source", TextOptions::from(STORED));
        Fields {
            schema: b.build(),
            timestamp,
            observed,
            severity_number,
            severity_text,
            service,
            body,
            attributes,
            resource,
            trace_id,
            span_id,
            scope,
            seq,
            source,
        }
    }

    /// The document of a record.
    pub(crate) fn document(&self, r: &LogRecord, seq: u64) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_date(
            self.timestamp,
            DateTime::from_timestamp_nanos(r.timestamp_unix_nano),
        );
        doc.add_date(
            self.observed,
            DateTime::from_timestamp_nanos(r.observed_unix_nano),
        );
        doc.add_u64(
            self.severity_number,
            u64::try_from(r.severity_number).unwrap_or(0),
        );
        doc.add_u64(self.seq, seq);
        doc.add_text(self.severity_text, &r.severity_text);
        doc.add_text(self.service, &r.service);
        if !r.trace_id.is_empty() {
            doc.add_text(self.trace_id, &r.trace_id);
        }
        if !r.span_id.is_empty() {
            doc.add_text(self.span_id, &r.span_id);
        }
        if !r.scope_name.is_empty() {
            doc.add_text(self.scope, &r.scope_name);
        }
        doc.add_text(self.body, &r.body);
        doc.add_object(self.attributes, json_object(&r.attributes));
        doc.add_object(self.resource, json_object(&r.resource));
        let source = serde_json::to_string(r).unwrap_or_default();
        doc.add_text(self.source, source);
        doc
    }
}

fn json_object(
    map: &serde_json::Map<String, serde_json::Value>,
) -> std::collections::BTreeMap<String, tantivy::schema::OwnedValue> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in map {
        out.insert(k.clone(), tantivy::schema::OwnedValue::from(v.clone()));
    }
    out
}

/// The day indexes' Tantivy schema and the document of a record in it, for tools that
/// compare the store with bare Tantivy on the same documents (the log benchmark).
pub struct LogSchema(Fields);

impl LogSchema {
    /// The schema of every day index.
    pub fn new() -> LogSchema {
        LogSchema(Fields::new())
    }

    /// The Tantivy schema.
    pub fn schema(&self) -> tantivy::schema::Schema {
        self.0.schema.clone()
    }

    /// The document the store indexes for `record` (with ingest sequence number `seq`).
    pub fn document(&self, record: &LogRecord, seq: u64) -> tantivy::TantivyDocument {
        self.0.document(record, seq)
    }
}

/// Indexes `records` with bare Tantivy into a new index in `dir`: the store's schema and
/// documents, one writer with `memory` bytes, one commit. The benchmarks' baseline.
pub fn index_bare(dir: &Path, records: &[LogRecord], memory: usize) -> Result<(), LogError> {
    let fields = Fields::new();
    let err = |source| LogError::Tantivy {
        path: dir.to_path_buf(),
        source,
    };
    let index = tantivy::Index::create_in_dir(dir, fields.schema.clone()).map_err(err)?;
    let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, memory).map_err(err)?;
    for (i, r) in records.iter().enumerate() {
        writer.add_document(fields.document(r, i as u64)).map_err(err)?;
    }
    writer.commit().map_err(err)?;
    writer.wait_merging_threads().map_err(err)
}

impl Default for LogSchema {
    fn default() -> Self {
        LogSchema::new()
    }
}
