//! The security pack's log queries against the real log store (Tantivy), with realistic
//! records: Django apps logging failed logins in their usual wordings, django-axes,
//! Django's security loggers and nginx access-log records with OpenTelemetry's HTTP
//! attributes. The unit tests (`security.test.yaml`) use an approximation of the query
//! syntax; this proves the real store counts the same.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use didban_alerting::eval::LogSource;
use didban_alerting::rules::packs::pack;
use didban_alerting::rules::{LogCondition, Rule};
use didban_store::logs::{LogOptions, LogRecord, LogStore};
use serde_json::{json, Map, Value};

const T_MS: i64 = 1_764_000_000_000;

fn record(body: &str, attributes: Value) -> LogRecord {
    let t = T_MS * 1_000_000;
    LogRecord {
        timestamp_unix_nano: t,
        observed_unix_nano: t,
        severity_number: 13,
        severity_text: "WARN".into(),
        service: "shop".into(),
        body: body.into(),
        attributes: attributes.as_object().cloned().unwrap_or_else(Map::new),
        resource: Map::new(),
        trace_id: String::new(),
        span_id: String::new(),
        scope_name: String::new(),
    }
}

fn access(method: &str, path: &str, status: u16, client: &str) -> LogRecord {
    record(
        &format!("{client} - - \"{method} {path} HTTP/1.1\" {status} 512 \"-\" \"curl/8.5.0\""),
        json!({
            "http.request.method": method,
            "url.path": path,
            "http.response.status_code": status,
            "client.address": client,
            "user_agent.original": "curl/8.5.0",
            "http.server.request.duration": 0.012,
        }),
    )
}

fn condition(alert: &str) -> LogCondition {
    for g in pack("security").unwrap().groups().unwrap() {
        for r in g.rules {
            if let Rule::Alerting(a) = r {
                if a.name == alert {
                    return a.logs.unwrap();
                }
            }
        }
    }
    panic!("no log rule {alert}");
}

#[tokio::test]
async fn security_pack_queries_count_realistic_records_in_the_real_log_store() {
    let dir = tempfile::tempdir().unwrap();
    let logs = Arc::new(LogStore::open(LogOptions::new(dir.path())).unwrap());
    let mut batch = Vec::new();
    let failed = [
        "Login failed for user 'admin' from 203.0.113.9",
        "login failed: username=root",
        "user_login_failed credentials={'username': 'ana'} request=<WSGIRequest: POST '/accounts/login/'>",
        "AXES: Repeated login failure by {username: 'admin', ip_address: '203.0.113.9', user_agent: 'curl/8.5.0', path_info: '/admin/login/'}. Count = 2 of 3.",
        "Authentication failed for user bob",
        "AUTHENTICATION FAILURE for carol",
        "Failed login attempt for dave@example.com",
        "Invalid password for user erin",
        "Incorrect password supplied for frank",
        "Invalid credentials given for grace",
    ];
    for body in failed {
        for _ in 0..3 {
            batch.push(record(body, json!({})));
        }
    }
    for body in [
        "User admin logged in",
        "Password changed for user dave",
        "GET /accounts/login/ 200",
        "Login page rendered",
    ] {
        for _ in 0..10 {
            batch.push(record(body, json!({})));
        }
    }
    for _ in 0..4 {
        batch.push(record(
            "Forbidden (CSRF token missing.): /accounts/login/",
            json!({"code.namespace": "django.security.csrf"}),
        ));
        batch.push(record(
            "Invalid HTTP_HOST header: 'evil.example'. You may need to add 'evil.example' to ALLOWED_HOSTS.",
            json!({}),
        ));
        batch.push(record(
            "django.security.SuspiciousFileOperation: Detected path traversal attempt",
            json!({}),
        ));
    }
    for _ in 0..40 {
        batch.push(access("POST", "/api/token/", 401, "203.0.113.9"));
    }
    for _ in 0..5 {
        batch.push(access("GET", "/admin/", 403, "198.51.100.7"));
    }
    for _ in 0..50 {
        batch.push(access("GET", "/missing", 404, "198.51.100.7"));
        batch.push(access("GET", "/", 200, "198.51.100.7"));
    }
    logs.append(batch).await.unwrap();
    let committer = logs.clone();
    tokio::task::spawn_blocking(move || committer.commit())
        .await
        .unwrap()
        .unwrap();

    let (start, end) = (T_MS - 60_000, T_MS + 60_000);
    let failed_logins = condition("FailedLoginsBurst");
    assert_eq!(logs.count(&failed_logins.query, start, end).unwrap(), 30);
    let django = condition("DjangoSecurityEvents");
    assert_eq!(logs.count(&django.query, start, end).unwrap(), 12);
    let lockouts = condition("AccountLockouts");
    assert_eq!(logs.count(&lockouts.query, start, end).unwrap(), 0);
    let auth = condition("AuthFailuresBurst");
    let by = auth.by.clone().unwrap();
    let per_client = logs.count_by(&auth.query, &by, start, end, 1000).unwrap();
    assert_eq!(
        per_client,
        vec![("203.0.113.9".to_string(), 40), ("198.51.100.7".to_string(), 5)]
    );
    let errors = condition("ClientErrorBurst");
    let per_client = logs.count_by(&errors.query, &by, start, end, 1000).unwrap();
    assert_eq!(
        per_client,
        vec![("198.51.100.7".to_string(), 55), ("203.0.113.9".to_string(), 40)]
    );
}
