//! The log parser over a corpus of real-format lines (`agent/tests/data/logs/*.txt`): each file
//! is tailed as the agent tails it (stack traces joined) and parsed with the format its
//! `*.expected.json` names; every record's severity, timestamp, trace context, attributes and
//! line count must be what the expectations say.
//!
//! Expected times are `utc:<RFC 3339>`, `local:<YYYY-mm-dd HH:MM:SS[.f]>` (a time written
//! without a zone is local time) or `read` (the line has no time: the read time is used).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, NaiveDateTime, TimeZone};
use didban_agent::config::LogsConfig;
use didban_agent::logs::checkpoint::FileId;
use didban_agent::logs::file::TailedFile;
use didban_agent::logs::parse::multiline::Joiner;
use didban_agent::logs::parse::Parser;
use didban_agent::logs::record;
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::Value;

/// The read time of the corpus: 2026-12-03T12:00:00Z.
const READ_NS: u64 = 1_796_299_200_000_000_000;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/logs")
}

/// The records of `file` as the tailer cuts them (automatic multiline), parsed by `parser`.
pub fn records_of(file: &Path, parser: &Parser) -> Vec<LogRecord> {
    let path = file.to_str().unwrap();
    let mut tailed = TailedFile::open(path, FileId { dev: 0, ino: 0 }, 0, 500).unwrap();
    let mut texts = tailed.poll(&Joiner::Auto).unwrap().records;
    // Idle: the last record is complete.
    texts.extend(tailed.poll(&Joiner::Auto).unwrap().records);
    let mut out = Vec::new();
    for text in texts {
        let parsed = parser.parse(&text, READ_NS);
        out.push(record::assemble(&text, path, parsed, READ_NS));
    }
    out
}

fn expected_time(spec: &str) -> u64 {
    if spec == "read" {
        return READ_NS;
    }
    if let Some(t) = spec.strip_prefix("utc:") {
        let t = DateTime::parse_from_rfc3339(t).unwrap();
        return u64::try_from(t.timestamp_nanos_opt().unwrap()).unwrap();
    }
    let t = spec.strip_prefix("local:").unwrap();
    let naive = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let local = Local.from_local_datetime(&naive).earliest().unwrap();
    u64::try_from(local.timestamp_nanos_opt().unwrap()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn body(r: &LogRecord) -> String {
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(V::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn attribute(r: &LogRecord, key: &str) -> Option<Value> {
    let value = r
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        V::StringValue(s) => Value::from(s.clone()),
        V::IntValue(i) => Value::from(*i),
        V::DoubleValue(f) => Value::from(*f),
        V::BoolValue(b) => Value::from(*b),
        other => Value::from(format!("{other:?}")),
    })
}

/// Every mismatch between `got` and `want` (one expected record).
fn compare(name: &str, i: usize, got: &LogRecord, want: &Value, errors: &mut Vec<String>) {
    let text = body(got);
    let mut check = |what: &str, ok: bool, detail: String| {
        if !ok {
            errors.push(format!("{name} record {i} {what}: {detail}\n  body: {text:?}"));
        }
    };
    if let Some(s) = want.get("starts").and_then(Value::as_str) {
        check("start", text.starts_with(s), format!("want {s:?}"));
    }
    if let Some(s) = want.get("body").and_then(Value::as_str) {
        check("body", text == s, format!("want {s:?}"));
    }
    if let Some(s) = want.get("ends").and_then(Value::as_str) {
        check("end", text.ends_with(s), format!("want {s:?}"));
    }
    let lines = want.get("lines").and_then(Value::as_u64).unwrap_or(1);
    let got_lines = text.split('\n').count() as u64;
    check("lines", got_lines == lines, format!("{got_lines}, want {lines}"));
    if let Some(n) = want.get("severity_number").and_then(Value::as_i64) {
        check(
            "severity_number",
            i64::from(got.severity_number) == n,
            format!("{}, want {n}", got.severity_number),
        );
    }
    if let Some(s) = want.get("severity_text").and_then(Value::as_str) {
        check(
            "severity_text",
            got.severity_text == s,
            format!("{:?}, want {s:?}", got.severity_text),
        );
    }
    let time = want.get("time").and_then(Value::as_str).unwrap_or("read");
    let want_ns = expected_time(time);
    check(
        "time",
        got.time_unix_nano == want_ns,
        format!("{}, want {want_ns} ({time})", got.time_unix_nano),
    );
    let trace = want.get("trace_id").and_then(Value::as_str).unwrap_or("");
    check(
        "trace_id",
        hex(&got.trace_id) == trace,
        format!("{:?}, want {trace:?}", hex(&got.trace_id)),
    );
    let span = want.get("span_id").and_then(Value::as_str).unwrap_or("");
    check(
        "span_id",
        hex(&got.span_id) == span,
        format!("{:?}, want {span:?}", hex(&got.span_id)),
    );
    if let Some(Value::Object(attrs)) = want.get("attributes") {
        for (key, value) in attrs {
            let got_value = attribute(got, key);
            let same = match (&got_value, value) {
                (Some(Value::Number(a)), Value::Number(b)) => {
                    a.as_f64() == b.as_f64() && a.is_f64() == b.is_f64()
                }
                (Some(a), b) => a == b,
                (None, _) => false,
            };
            check(
                &format!("attribute {key}"),
                same,
                format!("{got_value:?}, want {value}"),
            );
        }
    }
    if let Some(Value::Array(absent)) = want.get("absent") {
        for key in absent.iter().filter_map(Value::as_str) {
            let got_value = attribute(got, key);
            check(
                &format!("attribute {key}"),
                got_value.is_none(),
                format!("{got_value:?}, want none"),
            );
        }
    }
    check(
        "observed time",
        got.observed_time_unix_nano == READ_NS,
        String::new(),
    );
}

/// The parser an expectations file asks for.
pub fn parser_for(want: &Value) -> Parser {
    let format = want.get("format").and_then(Value::as_str).unwrap_or("auto");
    let log_format = want.get("log_format").and_then(Value::as_str).unwrap_or("");
    let text =
        format!("paths = [\"x\"]\nservice = \"x\"\nformat = {format:?}\nlog_format = {log_format:?}\n");
    let config: LogsConfig = toml::from_str(&text).unwrap();
    Parser::new(&config).unwrap()
}

#[test]
fn every_expected_field_of_the_corpus() {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            files.push(path);
        }
    }
    files.sort();
    assert!(files.len() >= 7, "corpus files: {files:?}");
    let mut errors = Vec::new();
    let mut checked = 0;
    for file in &files {
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        let expected = file.with_file_name(format!("{name}.expected.json"));
        let want: Value = serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
        let got = records_of(file, &parser_for(&want));
        let want_records = want["records"].as_array().unwrap();
        if got.len() != want_records.len() {
            let bodies: Vec<String> = got.iter().map(body).collect();
            errors.push(format!(
                "{name}: {} records, want {}: {bodies:#?}",
                got.len(),
                want_records.len()
            ));
            continue;
        }
        for (i, (g, w)) in got.iter().zip(want_records).enumerate() {
            compare(&name, i, g, w, &mut errors);
            checked += 1;
        }
    }
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert!(checked >= 30, "only {checked} records checked");
}

#[test]
fn bad_parsing_keys_are_config_errors_naming_the_value() {
    let section = |extra: &str| format!("[[logs]]\npaths = [\"/tmp/*.log\"]\nservice = \"x\"\n{extra}\n");
    let cases = [
        ("format = \"nginx\"\nlog_format = \"plain text\"", "plain text"),
        ("timestamp_format = \"%Q\"", "%Q"),
        ("multiline_max_lines = 0", "multiline_max_lines"),
        ("format = \"apache\"", "apache"),
    ];
    for (extra, named) in cases {
        let err = didban_agent::config::Config::parse(&section(extra))
            .unwrap_err()
            .to_string();
        assert!(err.contains(named), "{extra}: {err}");
    }
    let ok = section("format = \"nginx\"\nlog_format = '$remote_addr [$time_local] \"$request\" $status'");
    assert!(didban_agent::config::Config::parse(&ok).is_ok());
}
