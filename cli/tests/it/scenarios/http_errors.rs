//! The HTTP app's error ratio above 1%: its users, at steady traffic since the stack started
//! (0.2% errors through the quiet run: no alert), now get a 500 on one request in
//! [`FAIL_ONE_IN`] → `HttpErrorRateHigh` for the app's `service_name`, once by mail and
//! webhook. Then back to normal traffic: the alert resolves once the ratio over the rule's
//! 5-minute window (not scaled by `time_scale`) is under 1% again, which takes minutes at
//! any time scale; the rest of the suite runs meanwhile and [`Recovery::finish`] checks the
//! resolved notification at its end.

use std::time::Instant;

use super::stack::{Row, Stack};
use super::traffic::{NORMAL_ERROR_EVERY, SERVICE};

/// During the outage one request in this many fails (4%).
pub const FAIL_ONE_IN: u64 = 25;

/// The firing half done; the resolution is awaited at the end of the suite.
pub struct Recovery {
    since: usize,
    stopped: Instant,
    fired: String,
    errors: u64,
    requests: u64,
}

/// The ratio the rule computes, for the row.
fn ratio(stack: &Stack) -> String {
    let expr = format!(
        r#"sum(rate(traces_span_metrics_errors_total{{service_name="{SERVICE}",span_kind="SPAN_KIND_SERVER"}}[5m])) / sum(rate(traces_span_metrics_calls_total{{service_name="{SERVICE}",span_kind="SPAN_KIND_SERVER"}}[5m]))"#
    );
    let now = crate::process::now_ms() as f64 / 1000.0;
    let body = stack.server.query(&expr, now);
    let value = body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok());
    match value {
        Some(v) => format!("{:.2}%", v * 100.0),
        None => "none".to_string(),
    }
}

pub fn run(stack: &Stack) -> Recovery {
    let since = stack.delivered().len();
    let quiet_ratio = ratio(stack);
    let (sent0, failed0) = stack.traffic.counts();
    assert!(sent0 > 0, "the users have been sending since the stack started");
    let t0 = Instant::now();
    stack.traffic.fail_one_in(FAIL_ONE_IN);
    let d = stack.wait_delivery("HttpErrorRateHigh", "firing", since);
    let took = d.at - t0;
    stack.traffic.fail_one_in(NORMAL_ERROR_EVERY);
    let stopped = Instant::now();
    let (sent1, failed1) = stack.traffic.counts();
    assert_eq!(d.labels["service_name"], SERVICE, "{:?}", d.labels);
    stack.assert_once("HttpErrorRateHigh", "firing");
    let unexpected = stack.unexpected_since(since, &["HttpErrorRateHigh"]);
    assert!(unexpected.is_empty(), "{unexpected:?}");
    Recovery {
        since,
        stopped,
        fired: format!(
            "service_name={SERVICE} \"{}\" ({took:.1?}; ratio before {quiet_ratio}); ",
            d.annotations["summary"].as_str().unwrap_or_default()
        ),
        errors: failed1 - failed0,
        requests: sent1 - sent0,
    }
}

impl Recovery {
    /// Waits for the resolved notification (once by mail and webhook) and makes the row.
    pub fn finish(self, stack: &Stack) -> Row {
        let r = stack.wait_delivery("HttpErrorRateHigh", "resolved", self.since);
        stack.assert_once("HttpErrorRateHigh", "resolved");
        let (sent, failed) = stack.traffic.counts();
        Row {
            scenario: "HTTP app (gunicorn, OpenTelemetry WSGI) at 4% errors, then back to 0.2%",
            expected: format!("HttpErrorRateHigh service_name={SERVICE}, resolves"),
            fired: format!(
                "{}{} of {} requests failed while it built up; resolved {:.1?} after the errors stopped ({sent} requests, {failed} failed in all)",
                self.fired,
                self.errors,
                self.requests,
                r.at - self.stopped,
            ),
            verdict: "ok",
        }
    }
}
