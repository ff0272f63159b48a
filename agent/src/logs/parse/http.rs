//! Access-log fields → OpenTelemetry HTTP semantic-convention attributes
//! (`http.request.method`, `url.path`, `url.query`, `http.response.status_code`,
//! `client.address`, `user_agent.original`, `http.server.request.duration` in seconds,
//! `http.response.body.size`, `network.protocol.version`), whatever format they came in:
//! nginx variable names (`$remote_addr`, JSON `escape=json` keys), Caddy's and Traefik's
//! JSON keys. The severity follows the status: 5xx error, 4xx warn, else info.

use super::fields::{double_value, int_value, Parsed};

/// The HTTP facts of one access-log record.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Access {
    /// Request method (`GET`).
    pub method: Option<String>,
    /// Path without the query.
    pub path: Option<String>,
    /// Query without the `?`.
    pub query: Option<String>,
    /// Protocol version (`1.1`).
    pub protocol: Option<String>,
    /// Response status.
    pub status: Option<i64>,
    /// Client address.
    pub client: Option<String>,
    /// Authenticated user.
    pub user: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Referer`.
    pub referer: Option<String>,
    /// `X-Forwarded-For`.
    pub forwarded_for: Option<String>,
    /// Request duration in seconds.
    pub duration_s: Option<f64>,
    /// Response body bytes.
    pub bytes: Option<i64>,
    /// The request's time as written (`$time_local`, `$time_iso8601`).
    pub time: Option<String>,
}

fn present(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() || v == "-" {
        None
    } else {
        Some(v.to_string())
    }
}

impl Access {
    /// Takes one named field (nginx variable without `$`, or a JSON key); returns whether the
    /// name is an HTTP field (the caller then does not keep it as a plain attribute).
    pub fn set(&mut self, name: &str, value: &str) -> bool {
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
                self.protocol = present(value).map(|p| p.trim_start_matches("HTTP/").to_string());
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
    pub fn request_line(&mut self, line: &str) {
        let mut parts = line.split(' ');
        if let Some(m) = parts.next().and_then(present) {
            self.method = Some(m);
        }
        if let Some(t) = parts.next() {
            self.target(t);
        }
        if let Some(p) = parts.next().and_then(present) {
            self.protocol = Some(p.trim_start_matches("HTTP/").to_string());
        }
    }

    /// `/a?b=1` → path and query.
    pub fn target(&mut self, target: &str) {
        let Some(target) = present(target) else {
            return;
        };
        match target.split_once('?') {
            Some((path, query)) => {
                self.path = Some(path.to_string());
                self.query = Some(query.to_string());
            }
            None => self.path = Some(target),
        }
    }

    /// Whether enough was found to call the record an access-log record.
    pub fn is_access(&self) -> bool {
        self.status.is_some() && (self.method.is_some() || self.path.is_some())
    }

    /// Writes the attributes and the status-derived severity into `parsed`.
    pub fn apply(self, parsed: &mut Parsed) {
        if let Some(v) = &self.method {
            parsed.push_str("http.request.method", v);
        }
        if let Some(v) = &self.path {
            parsed.push_str("url.path", v);
        }
        if let Some(v) = &self.query {
            parsed.push_str("url.query", v);
        }
        if let Some(v) = &self.protocol {
            parsed.push_str("network.protocol.version", v);
        }
        if let Some(v) = self.status {
            parsed.push("http.response.status_code", int_value(v));
            let level = if v >= 500 {
                "ERROR"
            } else if v >= 400 {
                "WARN"
            } else {
                "INFO"
            };
            parsed.set_level(level);
        }
        if let Some(v) = &self.client {
            parsed.push_str("client.address", v);
        }
        if let Some(v) = &self.user {
            parsed.push_str("user.name", v);
        }
        if let Some(v) = &self.user_agent {
            parsed.push_str("user_agent.original", v);
        }
        if let Some(v) = &self.referer {
            parsed.push_str("http.request.header.referer", v);
        }
        if let Some(v) = &self.forwarded_for {
            parsed.push_str("http.request.header.x-forwarded-for", v);
        }
        if let Some(v) = self.duration_s {
            parsed.push("http.server.request.duration", double_value(v));
        }
        if let Some(v) = self.bytes {
            parsed.push("http.response.body.size", int_value(v));
        }
    }
}
