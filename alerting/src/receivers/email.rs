//! The e-mail integration: SMTP through lettre with STARTTLS, implicit TLS or no TLS,
//! optional authentication, and a multipart message with a plain-text and an HTML body that
//! list every alert with its labels, annotations, value and links.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Integration, Notification, ReceiverError};
use crate::eval::storage::BoxFuture;
use crate::notify::config::{opt_duration, ConfigError, EmailConfig, GlobalConfig};
use crate::notify::{rfc3339, Alert};
use crate::rules::template::go_float;

/// A configured e-mail receiver.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    send_resolved: bool,
    subject: Option<String>,
    headers: Vec<(String, String)>,
}

impl Email {
    /// Builds the SMTP transport from the receiver's settings and the global defaults.
    pub fn new(cfg: &EmailConfig, global: &GlobalConfig) -> Result<Email, ConfigError> {
        let bad = |what: String| ConfigError::Invalid(format!("email to {:?}: {what}", cfg.to));
        let smarthost = cfg
            .smarthost
            .clone()
            .or_else(|| global.smtp_smarthost.clone())
            .ok_or_else(|| bad("no smarthost".into()))?;
        let (host, port) = smarthost
            .rsplit_once(':')
            .and_then(|(h, p)| {
                p.parse::<u16>()
                    .ok()
                    .map(|p| (h.trim_matches(['[', ']']).to_string(), p))
            })
            .ok_or_else(|| bad(format!("smarthost {smarthost:?} is not host:port")))?;
        let require_tls = cfg.require_tls.or(global.smtp_require_tls).unwrap_or(true);
        let mode = match cfg.tls.as_deref() {
            Some(m) => m.to_string(),
            None if port == 465 => "tls".into(),
            None if require_tls => "starttls".into(),
            None => "none".into(),
        };
        let tls_params = || -> Result<TlsParameters, ConfigError> {
            let mut tp = TlsParameters::builder(host.clone());
            if let Some(ca) = &cfg.tls_ca_file {
                let pem = std::fs::read(ca).map_err(|e| bad(format!("tls_ca_file {}: {e}", ca.display())))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| bad(format!("tls_ca_file {}: {e}", ca.display())))?;
                tp = tp.add_root_certificate(cert);
            }
            if cfg.tls_insecure_skip_verify {
                tp = tp.dangerous_accept_invalid_certs(true);
            }
            tp.build().map_err(|e| bad(format!("TLS settings: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host);
        builder = match mode.as_str() {
            "tls" => builder.tls(Tls::Wrapper(tls_params()?)),
            "starttls" => builder.tls(Tls::Required(tls_params()?)),
            "none" => builder,
            other => return Err(bad(format!("tls {other:?} is not one of starttls, tls, none"))),
        };
        builder = builder.port(port);
        let timeout = opt_duration(&cfg.timeout, "email timeout")?.unwrap_or(Duration::from_secs(30));
        builder = builder.timeout(Some(timeout));
        if let Some(h) = cfg.hello.clone().or_else(|| global.smtp_hello.clone()) {
            builder = builder.hello_name(ClientId::Domain(h));
        }
        let user = cfg
            .auth_username
            .clone()
            .or_else(|| global.smtp_auth_username.clone());
        let pass = cfg
            .auth_password
            .clone()
            .or_else(|| global.smtp_auth_password.clone());
        if let Some(user) = user {
            builder = builder.credentials(Credentials::new(user, pass.map(|p| p.0).unwrap_or_default()));
        }
        let from_text = cfg
            .from
            .clone()
            .or_else(|| global.smtp_from.clone())
            .ok_or_else(|| bad("no from address".into()))?;
        let from: Mailbox = from_text
            .parse()
            .map_err(|e| bad(format!("from {from_text:?}: {e}")))?;
        let mut to = Vec::new();
        for addr in cfg.to.split(',') {
            let addr = addr.trim();
            if addr.is_empty() {
                continue;
            }
            to.push(addr.parse().map_err(|e| bad(format!("to {addr:?}: {e}")))?);
        }
        let mut subject = None;
        let mut headers = Vec::new();
        for (k, v) in &cfg.headers {
            if k.eq_ignore_ascii_case("subject") {
                subject = Some(v.clone());
            } else if !k.eq_ignore_ascii_case("to") && !k.eq_ignore_ascii_case("from") {
                headers.push((k.clone(), v.clone()));
            }
        }
        Ok(Email {
            transport: builder.build(),
            from,
            to,
            send_resolved: cfg.send_resolved.unwrap_or(false),
            subject,
            headers,
        })
    }

    /// The message for a notification.
    pub fn message(&self, n: &Notification) -> Result<Message, ReceiverError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(self.subject.clone().unwrap_or_else(|| subject(n)));
        for t in &self.to {
            b = b.to(t.clone());
        }
        for (k, v) in &self.headers {
            let name = lettre::message::header::HeaderName::new_from_ascii(k.clone())
                .map_err(|e| ReceiverError::Build(format!("header {k:?}: {e}")))?;
            b = b.raw_header(lettre::message::header::HeaderValue::new(name, v.clone()));
        }
        b.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text_body(n)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html_body(n)),
                ),
        )
        .map_err(|e| ReceiverError::Build(format!("building message: {e}")))
    }
}

impl Integration for Email {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), ReceiverError>> {
        Box::pin(async move {
            let msg = self.message(n)?;
            self.transport
                .send(msg)
                .await
                .map_err(|e| ReceiverError::Transport(format!("SMTP: {e}")))?;
            Ok(())
        })
    }
}

/// Alertmanager's default subject: `[FIRING:2] GroupValues (other common values)`.
pub fn subject(n: &Notification) -> String {
    let status = n.status();
    let mut s = if status == "firing" {
        format!("[FIRING:{}]", n.firing().len())
    } else {
        "[RESOLVED]".to_string()
    };
    let group: Vec<&str> = n.group_labels.iter().map(|l| l.value).collect();
    if !group.is_empty() {
        s.push(' ');
        s.push_str(&group.join(" "));
    }
    let mut rest = Vec::new();
    for (k, v) in n.common_labels() {
        if n.group_labels.get(&k).is_none() {
            rest.push(v);
        }
    }
    if !rest.is_empty() {
        s.push_str(&format!(" ({})", rest.join(" ")));
    }
    s
}

fn alerts_link(n: &Notification) -> String {
    format!("{}/alerts", n.external_url.trim_end_matches('/'))
}

fn text_alert(out: &mut String, a: &Alert, now_ms: i64) {
    let status = if a.resolved_at(now_ms) {
        "RESOLVED"
    } else {
        "FIRING"
    };
    let name = a.labels.get("alertname").unwrap_or("alert");
    out.push_str(&format!("\n[{status}] {name}\n"));
    out.push_str(&format!("  Value: {}\n", go_float(a.value)));
    out.push_str(&format!("  Started: {}\n", rfc3339(a.starts_at_ms)));
    if a.resolved_at(now_ms) {
        out.push_str(&format!("  Ended: {}\n", rfc3339(a.ends_at_ms)));
    }
    out.push_str("  Labels:\n");
    for l in a.labels.iter() {
        out.push_str(&format!("    {} = {}\n", l.name, l.value));
    }
    if !a.annotations.is_empty() {
        out.push_str("  Annotations:\n");
        for (k, v) in &a.annotations {
            out.push_str(&format!("    {k} = {v}\n"));
        }
    }
    out.push_str(&format!("  Source: {}\n", a.generator_url));
}

/// The plain-text body.
pub fn text_body(n: &Notification) -> String {
    let mut out = format!("{}\n", subject(n));
    let firing = n.firing();
    let resolved = n.resolved();
    if !firing.is_empty() {
        out.push_str(&format!("\n{} firing:\n", firing.len()));
        for a in firing {
            text_alert(&mut out, a, n.now_ms);
        }
    }
    if !resolved.is_empty() {
        out.push_str(&format!("\n{} resolved:\n", resolved.len()));
        for a in resolved {
            text_alert(&mut out, a, n.now_ms);
        }
    }
    out.push_str(&format!("\nAll alerts: {}\n", alerts_link(n)));
    out
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_alert(out: &mut String, a: &Alert, now_ms: i64) {
    let resolved = a.resolved_at(now_ms);
    let (status, color) = if resolved {
        ("RESOLVED", "#2e7d32")
    } else {
        ("FIRING", "#c62828")
    };
    let name = a.labels.get("alertname").unwrap_or("alert");
    out.push_str(&format!(
        "<div style=\"border-left:4px solid {color};padding:4px 12px;margin:12px 0\">\n<h3 style=\"margin:0\"><span style=\"color:{color}\">{status}</span> {}</h3>\n",
        esc(name)
    ));
    out.push_str(&format!(
        "<p>Value: <b>{}</b> &middot; started {}",
        esc(&go_float(a.value)),
        esc(&rfc3339(a.starts_at_ms))
    ));
    if resolved {
        out.push_str(&format!(" &middot; ended {}", esc(&rfc3339(a.ends_at_ms))));
    }
    out.push_str("</p>\n<table>\n");
    for l in a.labels.iter() {
        out.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td></tr>\n",
            esc(l.name),
            esc(l.value)
        ));
    }
    out.push_str("</table>\n");
    if !a.annotations.is_empty() {
        out.push_str("<dl>\n");
        for (k, v) in &a.annotations {
            out.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(v)));
        }
        out.push_str("</dl>\n");
    }
    out.push_str(&format!(
        "<p><a href=\"{}\">Source</a></p>\n</div>\n",
        esc(&a.generator_url)
    ));
}

/// The HTML body.
pub fn html_body(n: &Notification) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n");
    out.push_str(&format!("<h2>{}</h2>\n", esc(&subject(n))));
    let firing = n.firing();
    let resolved = n.resolved();
    if !firing.is_empty() {
        out.push_str(&format!("<h3>{} firing</h3>\n", firing.len()));
        for a in firing {
            html_alert(&mut out, a, n.now_ms);
        }
    }
    if !resolved.is_empty() {
        out.push_str(&format!("<h3>{} resolved</h3>\n", resolved.len()));
        for a in resolved {
            html_alert(&mut out, a, n.now_ms);
        }
    }
    out.push_str(&format!(
        "<p><a href=\"{}\">All alerts in Didban</a></p>\n</body></html>\n",
        esc(&alerts_link(n))
    ));
    out
}
