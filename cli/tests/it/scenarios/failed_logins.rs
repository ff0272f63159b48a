//! 30 failed logins in a minute, logged by the application (the usual `user_login_failed`
//! wording) and tailed by the agent → `FailedLoginsBurst`.

use std::time::Instant;

use super::stack::{Row, Stack};

pub fn run(stack: &Stack) -> Row {
    let since = stack.delivered().len();
    let now = chrono::Utc::now();
    let mut lines = String::new();
    for i in 0..30 {
        let t = now + chrono::Duration::milliseconds(i * 20);
        lines.push_str(&format!(
            "{} WARNING [accounts.signals] Login failed for user 'admin' from 203.0.113.5\n",
            t.format("%Y-%m-%d %H:%M:%S,%3f")
        ));
    }
    let t0 = Instant::now();
    stack.append_log("app.log", &lines);
    let d = stack.wait_delivery("FailedLoginsBurst", "firing", since);
    let took = d.at - t0;
    let summary = d.annotations["summary"].as_str().unwrap_or_default().to_string();
    assert!(
        summary.ends_with("failed logins in the last 5 minutes"),
        "{summary}"
    );
    let count: f64 = summary.split(' ').next().unwrap_or("0").parse().unwrap_or(0.0);
    assert!((21.0..=30.0).contains(&count), "{summary}");
    stack.assert_once("FailedLoginsBurst", "firing");
    let unexpected = stack.unexpected_since(since, &["FailedLoginsBurst"]);
    assert!(unexpected.is_empty(), "{unexpected:?}");
    Row {
        scenario: "30 failed logins (app log, agent tail)",
        expected: "FailedLoginsBurst".to_string(),
        fired: format!("FailedLoginsBurst \"{summary}\" ({took:.1?})"),
        verdict: "ok",
    }
}
