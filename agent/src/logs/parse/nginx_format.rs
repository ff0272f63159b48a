//! A configured nginx `log_format` string (`$remote_addr - $remote_user [$time_local]
//! "$request" $status …`) turned into a line parser: each `$variable` (or `${variable}`)
//! matches up to the literal character that follows it in the format; the HTTP variables
//! become [`super::http`] attributes, others attributes under their own name.

use regex::Regex;

use super::fields::Parsed;
use super::http::Access;
use super::timestamp;
use super::trace;

/// A compiled `log_format`.
#[derive(Debug, Clone)]
pub struct NginxFormat {
    regex: Regex,
    names: Vec<String>,
}

/// Why a `log_format` string cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// It names no variable.
    #[error("log_format {0:?} has no $variable")]
    NoVariable(String),
    /// The pattern built from it did not compile.
    #[error("log_format {format:?}: {source}")]
    Regex {
        /// The format string.
        format: String,
        /// The regex error.
        source: regex::Error,
    },
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl NginxFormat {
    /// Compiles `format`.
    pub fn compile(format: &str) -> Result<NginxFormat, FormatError> {
        let chars: Vec<char> = format.chars().collect();
        let mut pattern = String::from("^");
        let mut names = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars.get(i).copied().unwrap_or(' ');
            if c != '$' {
                pattern.push_str(&regex::escape(&c.to_string()));
                i += 1;
                continue;
            }
            i += 1;
            let braced = chars.get(i) == Some(&'{');
            if braced {
                i += 1;
            }
            let mut name = String::new();
            while let Some(&n) = chars.get(i) {
                if !is_name_char(n) {
                    break;
                }
                name.push(n);
                i += 1;
            }
            if braced && chars.get(i) == Some(&'}') {
                i += 1;
            }
            if name.is_empty() {
                pattern.push_str(r"\$");
                continue;
            }
            let capture = match chars.get(i) {
                Some(next) => format!("([^{}]*)", regex::escape(&next.to_string())),
                None => "(.*)".to_string(),
            };
            pattern.push_str(&capture);
            names.push(name);
        }
        pattern.push('$');
        if names.is_empty() {
            return Err(FormatError::NoVariable(format.to_string()));
        }
        let regex = Regex::new(&pattern).map_err(|source| FormatError::Regex {
            format: format.to_string(),
            source,
        })?;
        Ok(NginxFormat { regex, names })
    }

    /// The fields of `text`; `None` when it does not match the format.
    pub fn parse<'a>(&'a self, text: &'a str, now_ns: u64) -> Option<Parsed<'a>> {
        let caps = self.regex.captures(text)?;
        let mut parsed = Parsed::default();
        let mut access = Access::default();
        for (i, name) in self.names.iter().enumerate() {
            let value = caps.get(i + 1).map(|m| m.as_str()).unwrap_or_default();
            if access.set(name, value) || value.is_empty() || value == "-" {
                continue;
            }
            parsed.push_str(name.as_str(), value);
        }
        if let Some(time) = access.time.take() {
            parsed.time_ns = timestamp::from_string(&time, "", now_ns)
                .or_else(|| timestamp::find(&format!("[{time}]"), "", now_ns));
        }
        access.apply(&mut parsed);
        let (trace_id, span_id) = trace::find(text);
        parsed.trace_id = trace_id;
        parsed.span_id = span_id;
        Some(parsed)
    }
}
