//! Parsing a record's text into OTLP log-record fields, by the section's `format`: JSON
//! objects, nginx/apache access logs (`combined`/`common` or a configured `log_format`),
//! plain text (severity, timestamp and trace context read from the line). A line the
//! configured format does not match is parsed as plain text. See docs/agent.md, "Log parsing".

pub mod access;
pub mod fields;
pub mod http;
pub mod json;
pub mod line;
pub mod multiline;
pub mod nginx_format;
pub mod severity;
pub mod text;
pub mod timestamp;
pub mod trace;

use crate::config::{LogFormat, LogsConfig};
use fields::Parsed;
use nginx_format::{FormatError, NginxFormat};

/// A timestamp read from a record further ahead of the read time than this is not believed
/// (a wrong clock or zone): the read time is used. The server refuses records more than
/// `limits.max_future` (10 min by default) ahead.
pub const MAX_AHEAD_NS: u64 = 5 * 60 * 1_000_000_000;

/// The parser of one `[[logs]]` section.
#[derive(Debug, Clone)]
pub struct Parser {
    format: LogFormat,
    nginx: Option<NginxFormat>,
    timestamp_format: String,
}

impl Parser {
    /// The parser `config` asks for (`json = true` is `format = "json"`).
    pub fn new(config: &LogsConfig) -> Result<Parser, FormatError> {
        let format = if config.json {
            LogFormat::Json
        } else {
            config.format
        };
        let nginx = if format == LogFormat::Nginx {
            Some(NginxFormat::compile(&config.log_format)?)
        } else {
            None
        };
        Ok(Parser {
            format,
            nginx,
            timestamp_format: config.timestamp_format.clone(),
        })
    }

    /// A parser of one format with no custom timestamp.
    pub fn of(format: LogFormat) -> Parser {
        Parser {
            format,
            nginx: None,
            timestamp_format: String::new(),
        }
    }

    /// The fields of `text` read at `now_ns`.
    pub fn parse<'a>(&'a self, text: &'a str, now_ns: u64) -> Parsed<'a> {
        let custom = self.timestamp_format.as_str();
        let looks_json = text.trim_start().starts_with('{');
        let structured = match self.format {
            LogFormat::Text => None,
            LogFormat::Json => json::parse(text, custom, now_ns),
            LogFormat::NginxCombined => access::parse(text, now_ns),
            LogFormat::Nginx => self.nginx.as_ref().and_then(|f| f.parse(text, now_ns)),
            LogFormat::Auto if looks_json => json::parse(text, custom, now_ns),
            LogFormat::Auto if access::looks_like(text) => access::parse(text, now_ns),
            LogFormat::Auto => None,
        };
        let mut parsed = match structured {
            Some(p) => p,
            None => text::parse(text, custom, now_ns),
        };
        if parsed
            .time_ns
            .is_some_and(|t| t > now_ns.saturating_add(MAX_AHEAD_NS))
        {
            parsed.time_ns = None;
        }
        parsed
    }
}
