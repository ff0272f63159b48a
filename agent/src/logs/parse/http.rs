//! Access-log fields → OpenTelemetry HTTP semantic-convention attributes
//! (`http.request.method`, `url.path`, `url.query`, `http.response.status_code`,
//! `client.address`, `user_agent.original`, `http.server.request.duration` in seconds,
//! `http.response.body.size`, `network.protocol.version`), whatever format they came in:
//! nginx variable names (`$remote_addr`, JSON `escape=json` keys), Caddy's and Traefik's
//! JSON keys. The severity follows the status: 5xx error, 4xx warn, else info.

use std::borrow::Cow;
use std::ops::Range;

use super::fields::{Parsed, Value};

/// The HTTP facts of one access-log record; text borrowed from the record (`'a`) when the
/// parser read it there, owned when it came out of a JSON document.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Access<'a> {
    /// Request method (`GET`).
    pub method: Option<Cow<'a, str>>,
    /// Path without the query.
    pub path: Option<Cow<'a, str>>,
    /// Query without the `?`.
    pub query: Option<Cow<'a, str>>,
    /// Protocol version (`1.1`).
    pub protocol: Option<Cow<'a, str>>,
    /// Response status.
    pub status: Option<i64>,
    /// Client address.
    pub client: Option<Cow<'a, str>>,
    /// Authenticated user.
    pub user: Option<Cow<'a, str>>,
    /// `User-Agent`.
    pub user_agent: Option<Cow<'a, str>>,
    /// `Referer`.
    pub referer: Option<Cow<'a, str>>,
    /// `X-Forwarded-For`.
    pub forwarded_for: Option<Cow<'a, str>>,
    /// Request duration in seconds.
    pub duration_s: Option<f64>,
    /// Response body bytes.
    pub bytes: Option<i64>,
    /// The request's time as written (`$time_local`, `$time_iso8601`).
    pub time: Option<Cow<'a, str>>,
}

/// `range` of `text`, borrowed when `text` is.
fn slice<'a>(text: &Cow<'a, str>, range: Range<usize>) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(range).unwrap_or_default()),
        Cow::Owned(s) => Cow::Owned(s.get(range).unwrap_or_default().to_string()),
    }
}

/// `value` trimmed; `None` when that leaves nothing or `-` (nginx's "no value").
fn present(value: Cow<'_, str>) -> Option<Cow<'_, str>> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed == "-" {
        return None;
    }
    if trimmed.len() == value.len() {
        return Some(value);
    }
    let start = value.len() - value.trim_start().len();
    let end = start + trimmed.len();
    Some(slice(&value, start..end))
}

/// `1.1` of `HTTP/1.1`.
fn version(protocol: Cow<'_, str>) -> Cow<'_, str> {
    let cut = protocol.len() - protocol.trim_start_matches("HTTP/").len();
    if cut == 0 {
        return protocol;
    }
    let end = protocol.len();
    slice(&protocol, cut..end)
}

impl<'a> Access<'a> {
    /// Takes one named field (nginx variable without `$`, or a JSON key); returns whether the
    /// name is an HTTP field (the caller then does not keep it as a plain attribute).
    pub fn set(&mut self, name: &str, value: impl Into<Cow<'a, str>>) -> bool {
        let value = value.into();
        match name {
            "remote_addr" | "ClientHost" | "client_ip" | "remote_ip" => {
                if self.client.is_none() {
                    self.client = present(value);
                }
            }
            "remote_user" | "user_id" | "ClientUsername" => self.user = present(value),
            "time_local" | "time_iso8601" | "time" | "StartUTC" => self.time = present(value),
            "request" => self.request_line(value),
            "request_method" | "method" | "RequestMethod" => self.method = present(value),
            "request_uri" | "uri" | "RequestPath" => self.target(value),
            "server_protocol" | "proto" | "RequestProtocol" => {
                self.protocol = present(value).map(version);
            }
            "status" | "DownstreamStatus" => self.status = value.trim().parse().ok(),
            "body_bytes_sent" | "size" | "DownstreamContentSize" => self.bytes = value.trim().parse().ok(),
            "request_time" | "duration" => self.duration_s = value.trim().parse().ok(),
            // Traefik writes nanoseconds.
            "Duration" => self.duration_s = value.trim().parse::<f64>().ok().map(|ns| ns / 1e9),
            "http_user_agent" | "request_User-Agent" | "User-Agent" => self.user_agent = present(value),
            "http_referer" | "request_Referer" | "Referer" => self.referer = present(value),
            "http_x_forwarded_for" | "request_X-Forwarded-For" | "X-Forwarded-For" => {
                self.forwarded_for = present(value)
            }
            _ => return false,
        }
        true
    }

    /// `GET /a?b=1 HTTP/1.1`.
    pub fn request_line(&mut self, line: impl Into<Cow<'a, str>>) {
        let line = line.into();
        // Where the first three space-separated parts are.
        let mut parts: [Option<Range<usize>>; 3] = [None, None, None];
        let mut at = 0;
        for (slot, part) in parts.iter_mut().zip(line.split(' ')) {
            *slot = Some(at..at + part.len());
            at += part.len() + 1;
        }
        let [method, target, protocol] = parts;
        if let Some(m) = method.and_then(|r| present(slice(&line, r))) {
            self.method = Some(m);
        }
        if let Some(t) = target {
            self.target(slice(&line, t));
        }
        if let Some(p) = protocol.and_then(|r| present(slice(&line, r))) {
            self.protocol = Some(version(p));
        }
    }

    /// `/a?b=1` → path and query.
    pub fn target(&mut self, target: impl Into<Cow<'a, str>>) {
        let Some(target) = present(target.into()) else {
            return;
        };
        match target.find('?') {
            Some(q) => {
                self.path = Some(slice(&target, 0..q));
                self.query = Some(slice(&target, q + 1..target.len()));
            }
            None => self.path = Some(target),
        }
    }

    /// Whether enough was found to call the record an access-log record.
    pub fn is_access(&self) -> bool {
        self.status.is_some() && (self.method.is_some() || self.path.is_some())
    }

    /// Writes the attributes and the status-derived severity into `parsed`.
    pub fn apply(self, parsed: &mut Parsed<'a>) {
        // Room for every attribute below at once: one allocation per record.
        parsed.attributes.reserve(13);
        if let Some(v) = self.method {
            parsed.push_str("http.request.method", v);
        }
        if let Some(v) = self.path {
            parsed.push_str("url.path", v);
        }
        if let Some(v) = self.query {
            parsed.push_str("url.query", v);
        }
        if let Some(v) = self.protocol {
            parsed.push_str("network.protocol.version", v);
        }
        if let Some(v) = self.status {
            parsed.push("http.response.status_code", Value::Int(v));
            let level = if v >= 500 {
                "ERROR"
            } else if v >= 400 {
                "WARN"
            } else {
                "INFO"
            };
            parsed.set_level(Cow::Borrowed(level));
        }
        if let Some(v) = self.client {
            parsed.push_str("client.address", v);
        }
        if let Some(v) = self.user {
            parsed.push_str("user.name", v);
        }
        if let Some(v) = self.user_agent {
            parsed.push_str("user_agent.original", v);
        }
        if let Some(v) = self.referer {
            parsed.push_str("http.request.header.referer", v);
        }
        if let Some(v) = self.forwarded_for {
            parsed.push_str("http.request.header.x-forwarded-for", v);
        }
        if let Some(v) = self.duration_s {
            parsed.push("http.server.request.duration", Value::Double(v));
        }
        if let Some(v) = self.bytes {
            parsed.push("http.response.body.size", Value::Int(v));
        }
    }
}
